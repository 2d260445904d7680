//! The `event_exports` table (which Parquet file each event went to) and the reads of the
//! export. The log itself is never written here: `events` refuses UPDATE and DELETE.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// An event as the export writes it: the log's row with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: String,
    pub entity_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub priority: i16,
    pub traceparent: String,
    pub correlation_id: String,
    pub payload: Vec<u8>,
}

/// Key of the advisory lock one export holds for its whole run, so two never interleave.
pub const EXPORT_LOCK: i64 = 0x676f_616c_735f_6578; // "goals_ex"

/// Takes the export lock on this session; `false` when another export holds it.
pub async fn try_lock(connection: &mut PgConnection) -> Result<bool, Error> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(EXPORT_LOCK)
        .fetch_one(connection)
        .await?)
}

pub async fn unlock(connection: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(EXPORT_LOCK)
        .execute(connection)
        .await?;
    Ok(())
}

/// Up to `limit` positioned events not exported yet, after position `after`, that occurred
/// in [`since`, `until`), by position.
pub async fn pending(
    connection: &mut PgConnection,
    after: i64,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<ExportedEvent>, Error> {
    let rows = sqlx::query(
        "SELECT p.position, e.event_id, e.event_type, e.aggregate_type, e.aggregate_id,
                e.aggregate_version, e.occurred_at, e.priority, e.traceparent, e.correlation_id,
                e.payload
         FROM event_positions p JOIN events e ON e.seq = p.seq
         WHERE p.position > $1
           AND ($2::timestamptz IS NULL OR e.occurred_at >= $2)
           AND ($3::timestamptz IS NULL OR e.occurred_at < $3)
           AND NOT EXISTS (SELECT 1 FROM event_exports x WHERE x.position = p.position)
         ORDER BY p.position LIMIT $4",
    )
    .bind(after)
    .bind(since)
    .bind(until)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ExportedEvent {
                position: row.try_get("position")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                entity_type: row.try_get("aggregate_type")?,
                entity_id: row.try_get("aggregate_id")?,
                entity_version: row.try_get("aggregate_version")?,
                occurred_at: row.try_get("occurred_at")?,
                priority: row.try_get("priority")?,
                traceparent: row.try_get("traceparent")?,
                correlation_id: row.try_get("correlation_id")?,
                payload: row.try_get("payload")?,
            })
        })
        .collect()
}

/// Records that these events are in the file at `path` (relative to the export folder).
pub async fn record(
    connection: &mut PgConnection,
    positions: &[i64],
    path: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO event_exports (position, parquet_path, exported_at)
         SELECT unnest($1::bigint[]), $2, $3",
    )
    .bind(positions)
    .bind(path)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// Every file an export recorded, relative to its folder.
pub async fn recorded_paths(connection: &mut PgConnection) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT parquet_path FROM event_exports ORDER BY 1")
            .fetch_all(connection)
            .await?,
    )
}

/// Whether the event at `position` is this log's event `event_id`: how an unrecorded file is
/// known to be a leftover of this database's own interrupted run (event ids are UUIDs, so
/// another database's, or this one's before a reset, never match).
pub async fn is_logged(
    connection: &mut PgConnection,
    position: i64,
    event_id: Uuid,
) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM event_positions p JOIN events e ON e.seq = p.seq
                        WHERE p.position = $1 AND e.event_id = $2)",
    )
    .bind(position)
    .bind(event_id)
    .fetch_one(connection)
    .await?)
}
