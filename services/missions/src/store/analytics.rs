//! The weekly analytics views (migration 0003): read a page at a time, newest week first, and
//! refreshed CONCURRENTLY so readers never wait for a refresh.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use phoenix_runtime::Error;
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::sql::maintenance_transaction;
use crate::domain::analytics::{AdherenceWeek, FIRST_DAY, PageToken, RewardsWeek, WeekFilter};

const ADHERENCE_COLUMNS: &str =
    "user_id, week, heartbeat_days, protected_days, petals_lost, runs_succeeded";
const REWARDS_COLUMNS: &str = "user_id, week, xp_total, currency_total, claims";

/// A page of weekly adherence, and the token of the next one (None after the last).
pub async fn adherence(
    pool: &PgPool,
    filter: &WeekFilter,
) -> Result<(Vec<AdherenceWeek>, Option<PageToken>), Error> {
    let (rows, next) = page::<(Uuid, NaiveDate, i64, i64, i64, i64)>(
        pool,
        "mv_missions_v2_adherence",
        ADHERENCE_COLUMNS,
        filter,
        |row| (row.1, row.0),
    )
    .await?;
    let rows = rows
        .into_iter()
        .map(|row| AdherenceWeek {
            user_id: row.0,
            week: row.1,
            heartbeat_days: row.2,
            protected_days: row.3,
            petals_lost: row.4,
            runs_succeeded: row.5,
        })
        .collect();
    Ok((rows, next))
}

/// A page of weekly rewards, and the token of the next one (None after the last).
pub async fn rewards(
    pool: &PgPool,
    filter: &WeekFilter,
) -> Result<(Vec<RewardsWeek>, Option<PageToken>), Error> {
    let (rows, next) = page::<(Uuid, NaiveDate, i64, i64, i64)>(
        pool,
        "mv_missions_v2_rewards",
        REWARDS_COLUMNS,
        filter,
        |row| (row.1, row.0),
    )
    .await?;
    let rows = rows
        .into_iter()
        .map(|row| RewardsWeek {
            user_id: row.0,
            week: row.1,
            xp_total: row.2,
            currency_total: row.3,
            claims: row.4,
        })
        .collect();
    Ok((rows, next))
}

/// Keyset paging over a view's (user_id, week) rows, each filter shaped so it bounds an index
/// scan: one user's weeks on the unique (user_id, week) index, everyone's on (week, user_id).
async fn page<R>(
    pool: &PgPool,
    view: &str,
    columns: &str,
    filter: &WeekFilter,
    key: fn(&R) -> (NaiveDate, Uuid),
) -> Result<(Vec<R>, Option<PageToken>), Error>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let after = filter.after.unwrap_or_default();
    let from_week = filter.from_week.unwrap_or(FIRST_DAY);
    let mut rows: Vec<R> = match filter.user_id {
        Some(user_id) => {
            sqlx::query_as(&format!(
                "SELECT {columns} FROM {view}
                 WHERE user_id = $1 AND week >= $2 AND week < $3
                 ORDER BY week DESC
                 LIMIT $4"
            ))
            .bind(user_id)
            .bind(from_week)
            .bind(after.week)
            .bind(filter.limit + 1)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {columns} FROM {view}
                 WHERE week >= $1 AND (week, user_id) < ($2, $3)
                 ORDER BY week DESC, user_id DESC
                 LIMIT $4"
            ))
            .bind(from_week)
            .bind(after.week)
            .bind(after.user_id)
            .bind(filter.limit + 1)
            .fetch_all(pool)
            .await?
        }
    };
    let limit = usize::try_from(filter.limit).unwrap_or(0);
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
            .map(key)
            .map(|(week, user_id)| PageToken { week, user_id })
    } else {
        None
    };
    Ok((rows, next))
}

/// Refreshes both views (CONCURRENTLY: reads go on meanwhile; two refreshes take turns).
/// Returns how long it took.
pub async fn refresh(pool: &PgPool) -> Result<Duration, Error> {
    let started = Instant::now();
    let mut transaction = maintenance_transaction(pool).await?;
    for view in ["mv_missions_v2_adherence", "mv_missions_v2_rewards"] {
        sqlx::query(&format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {view}"))
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(started.elapsed())
}
