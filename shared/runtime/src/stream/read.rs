//! Reading events back: one aggregate's stream by version, and everything after a position.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::StoredEvent;
use crate::error::Error;

type EventRow = (
    i64,
    Uuid,
    Uuid,
    String,
    String,
    i64,
    String,
    Vec<u8>,
    DateTime<Utc>,
    i16,
    String,
    String,
    String,
);

/// The event columns after the position, for a query over `events e`.
const EVENT_COLUMNS: &str = "e.event_id, e.tenant_id, e.aggregate_type, e.aggregate_id,
    e.aggregate_version, e.event_type, e.payload, e.occurred_at, e.priority, e.traceparent,
    e.tracestate, e.correlation_id";

fn stored(row: EventRow) -> StoredEvent {
    StoredEvent {
        position: row.0,
        event_id: row.1,
        tenant_id: row.2,
        aggregate_type: row.3,
        aggregate_id: row.4,
        version: row.5,
        event_type: row.6,
        payload: row.7,
        occurred_at: row.8,
        priority: row.9,
        traceparent: row.10,
        tracestate: row.11,
        correlation_id: row.12,
    }
}

/// Up to `limit` events of one stream from `from_version`, by version, each with its position:
/// an event the sequencer has not reached yet is positioned first (a pass runs here), so a
/// caller can subscribe after the last position it read.
pub async fn read_stream(
    pool: &PgPool,
    tenant_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    from_version: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, Error> {
    // Another replica may hold the sequencer for a moment; its pass positions them too.
    for attempt in 0..20 {
        let events = stream_page(
            pool,
            tenant_id,
            aggregate_type,
            aggregate_id,
            from_version,
            limit,
        )
        .await?;
        if events.iter().all(|event| event.position > 0) {
            return Ok(events);
        }
        if super::sequencer::pass(pool).await? == 0 && attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    Err(Error::unavailable(
        "EVENTS_NOT_POSITIONED",
        "the stream's latest events have no position yet; retry",
        Some(std::time::Duration::from_millis(250)),
    ))
}

async fn stream_page(
    pool: &PgPool,
    tenant_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    from_version: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, Error> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT coalesce(p.position, 0), {EVENT_COLUMNS}
         FROM events e LEFT JOIN event_positions p ON p.seq = e.seq
         WHERE e.tenant_id = $1 AND e.aggregate_type = $2 AND e.aggregate_id = $3
           AND e.aggregate_version >= $4
         ORDER BY e.aggregate_version LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(from_version)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(stored).collect())
}

/// The version of one stream's last event (0 when it has none).
pub async fn stream_version(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<i64, Error> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT max(aggregate_version) FROM events
         WHERE tenant_id = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(executor)
    .await?;
    Ok(version.unwrap_or(0))
}

/// Up to `limit` positioned events after `position`, of `tenant` when given, by position.
pub(super) async fn after(
    pool: &PgPool,
    tenant: Option<Uuid>,
    position: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, Error> {
    let rows: Vec<EventRow> = match tenant {
        Some(tenant) => {
            sqlx::query_as(&format!(
                "SELECT p.position, {EVENT_COLUMNS}
                 FROM event_positions p JOIN events e ON e.seq = p.seq
                 WHERE p.tenant_id = $1 AND p.position > $2
                 ORDER BY p.position LIMIT $3"
            ))
            .bind(tenant)
            .bind(position)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT p.position, {EVENT_COLUMNS}
                 FROM event_positions p JOIN events e ON e.seq = p.seq
                 WHERE p.position > $1
                 ORDER BY p.position LIMIT $2"
            ))
            .bind(position)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows.into_iter().map(stored).collect())
}

/// The last position given (0 when none).
pub(super) async fn head(pool: &PgPool) -> Result<i64, Error> {
    let next: i64 = sqlx::query_scalar("SELECT next_position FROM event_sequencer")
        .fetch_one(pool)
        .await?;
    Ok(next - 1)
}

/// Whether `position` is one a subscriber of `tenant` can resume after: 0, or the position of
/// one of its events.
pub async fn is_resumable(
    pool: &PgPool,
    tenant: Option<Uuid>,
    position: i64,
) -> Result<bool, Error> {
    if position == 0 {
        return Ok(true);
    }
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM event_positions
                        WHERE position = $1 AND ($2::uuid IS NULL OR tenant_id = $2))",
    )
    .bind(position)
    .bind(tenant)
    .fetch_one(pool)
    .await?)
}
