//! `vip_memberships` (the current membership) and `vip_history` (every change, append-only).

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::unreadable;
use crate::domain::vip::{Membership, Stored, VipChange};

/// Writes the membership after a change and its history entry.
pub async fn record(
    connection: &mut PgConnection,
    membership: &Membership,
    change: VipChange,
    reason: &str,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "WITH current AS (
             INSERT INTO vip_memberships (user_id, status, period_start, period_end, version,
                                          updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status,
                 period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
                 version = EXCLUDED.version, updated_at = EXCLUDED.updated_at)
         INSERT INTO vip_history (user_id, version, change, status, period_start, period_end,
                                  changed_at, reason, idempotency_key)
         VALUES ($1, $5, $7, $2, $3, $4, $6, $8, $9)",
    )
    .bind(membership.user_id)
    .bind(membership.stored.as_str())
    .bind(membership.period_start)
    .bind(membership.period_end)
    .bind(membership.version)
    .bind(now)
    .bind(change.name())
    .bind(reason)
    .bind(idempotency_key)
    .execute(connection)
    .await?;
    Ok(())
}

/// One entry of a user's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub version: i64,
    pub change: String,
    pub stored: Stored,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub reason: String,
    pub idempotency_key: String,
}

pub async fn history(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<HistoryEntry>, Error> {
    let rows = sqlx::query(
        "SELECT version, change, status, period_start, period_end, changed_at, reason,
                idempotency_key
         FROM vip_history WHERE user_id = $1 ORDER BY version",
    )
    .bind(user_id)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            Ok(HistoryEntry {
                version: row.try_get("version")?,
                change: row.try_get("change")?,
                stored: Stored::parse(&status)
                    .ok_or_else(|| unreadable("vip_history.status", &status))?,
                period_start: row.try_get("period_start")?,
                period_end: row.try_get("period_end")?,
                changed_at: row.try_get("changed_at")?,
                reason: row.try_get("reason")?,
                idempotency_key: row.try_get("idempotency_key")?,
            })
        })
        .collect()
}
