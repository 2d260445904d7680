//! `channel_memberships`.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::unreadable;
use crate::domain::Channel;
use crate::domain::channel::ChannelMembership;

/// Adds the membership; `false` when the user already was a member.
pub async fn join(
    connection: &mut PgConnection,
    user_id: Uuid,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO channel_memberships (user_id, channel, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(channel.as_str())
    .bind(now)
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes the membership; `false` when the user was not a member.
pub async fn leave(
    connection: &mut PgConnection,
    user_id: Uuid,
    channel: Channel,
) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM channel_memberships WHERE user_id = $1 AND channel = $2")
        .bind(user_id)
        .bind(channel.as_str())
        .execute(connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn of_user(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<ChannelMembership>, Error> {
    let rows = sqlx::query(
        "SELECT channel, joined_at FROM channel_memberships WHERE user_id = $1 ORDER BY channel",
    )
    .bind(user_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let channel: String = row.try_get("channel")?;
            Ok(ChannelMembership {
                user_id,
                channel: Channel::parse(&channel)
                    .ok_or_else(|| unreadable("channel_memberships.channel", &channel))?,
                joined_at: row.try_get("joined_at")?,
            })
        })
        .collect()
}

/// Users with VIP access at `now` who are not in the VIP channel, at most `limit` (the
/// auditor's check), and how many there are in all.
pub async fn vips_outside_vip_channel(
    executor: impl sqlx::PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<Uuid>, i64), Error> {
    // VIP access: the rule of `Membership::status_at` (trial or active, before the end).
    let rows = sqlx::query(
        "SELECT m.user_id, count(*) OVER () AS total FROM vip_memberships m
         WHERE m.status IN ('trial', 'active') AND m.period_end > $1
           AND NOT EXISTS (SELECT 1 FROM channel_memberships c
                           WHERE c.user_id = m.user_id AND c.channel = 'vip')
         ORDER BY m.user_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    let total = rows
        .first()
        .map(|r| r.try_get::<i64, _>("total"))
        .transpose()?
        .unwrap_or(0);
    let ids = rows
        .iter()
        .map(|r| r.try_get("user_id"))
        .collect::<Result<_, _>>()?;
    Ok((ids, total))
}
