//! Goals' events missions consumed (`missions_v2_task_events`, migration 0009): one row per
//! event id, the de-duplication of the bus's at-least-once delivery.

use phoenix_runtime::Error;
use sqlx::PgPool;
use uuid::Uuid;

/// Whether the event was processed already.
pub async fn processed(pool: &PgPool, event_id: Uuid) -> Result<bool, Error> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM missions_v2_task_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// Records the event as processed, having moved `boards` boards; `false` when another
/// delivery recorded it first.
pub async fn record(
    pool: &PgPool,
    event_id: Uuid,
    user_id: Uuid,
    task_id: Uuid,
    boards: i32,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO missions_v2_task_events (event_id, user_id, task_id, boards)
         VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(user_id)
    .bind(task_id)
    .bind(boards)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
