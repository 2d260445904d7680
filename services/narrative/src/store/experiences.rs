//! `experience_progress`: each user's progress in each experience.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::unreadable;
use crate::domain::ExperienceProgress;
use crate::domain::experience::Status;

const COLUMNS: &str = "experience_id, status, unlocked_at, completed_sequences, started_at,
    completed_at, abandoned_at";

fn progress(row: &PgRow) -> Result<ExperienceProgress, Error> {
    let status: String = row.try_get("status")?;
    Ok(ExperienceProgress {
        experience_id: row.try_get("experience_id")?,
        status: Status::parse(&status)
            .ok_or_else(|| unreadable("experience_progress.status", &status))?,
        unlocked_at: row.try_get("unlocked_at")?,
        completed: row.try_get("completed_sequences")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        abandoned_at: row.try_get("abandoned_at")?,
        component_count: row.try_get("component_count")?,
    })
}

/// The user's progress in the experience (with the experience's component count), locked for
/// the transaction when `lock`.
pub async fn progress_of(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    experience_id: Uuid,
    lock: bool,
) -> Result<Option<ExperienceProgress>, Error> {
    let lock = if lock { "FOR UPDATE OF p" } else { "" };
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT count(*)::int FROM experience_components c
                            WHERE c.experience_id = p.experience_id) AS component_count
         FROM experience_progress p WHERE user_id = $1 AND experience_id = $2 {lock}"
    );
    let row = sqlx::query(&sql)
        .bind(user_id)
        .bind(experience_id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(progress).transpose()
}

/// Every experience the user unlocked or progressed in.
pub async fn progress_of_user(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<ExperienceProgress>, Error> {
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT count(*)::int FROM experience_components c
                            WHERE c.experience_id = p.experience_id) AS component_count
         FROM experience_progress p WHERE user_id = $1 ORDER BY last_activity_at, experience_id"
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(executor).await?;
    rows.iter().map(progress).collect()
}

pub async fn save(
    connection: &mut PgConnection,
    user_id: Uuid,
    p: &ExperienceProgress,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO experience_progress (user_id, experience_id, status, unlocked_at,
             completed_sequences, started_at, completed_at, abandoned_at, last_activity_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (user_id, experience_id) DO UPDATE SET status = EXCLUDED.status,
             unlocked_at = EXCLUDED.unlocked_at,
             completed_sequences = EXCLUDED.completed_sequences,
             started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at,
             abandoned_at = EXCLUDED.abandoned_at, last_activity_at = EXCLUDED.last_activity_at",
    )
    .bind(user_id)
    .bind(p.experience_id)
    .bind(p.status.as_str())
    .bind(p.unlocked_at)
    .bind(&p.completed)
    .bind(p.started_at)
    .bind(p.completed_at)
    .bind(p.abandoned_at)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes the user's progress row (a locked, never started experience).
pub async fn remove(
    connection: &mut PgConnection,
    user_id: Uuid,
    experience_id: Uuid,
) -> Result<(), Error> {
    sqlx::query("DELETE FROM experience_progress WHERE user_id = $1 AND experience_id = $2")
        .bind(user_id)
        .bind(experience_id)
        .execute(connection)
        .await?;
    Ok(())
}
