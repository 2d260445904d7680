//! The event store's reads and snapshots. Events are appended with the change they record,
//! through `phoenix_runtime::stream`.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::PgConnection;
use uuid::Uuid;

/// A stored event, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
    pub priority: i16,
    pub traceparent: String,
    pub tracestate: String,
    pub correlation_id: String,
}

/// The event columns, then (when selected) the transaction id.
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
    i64,
);

const EVENT_COLUMNS: &str = "position, event_id, tenant_id, aggregate_type, aggregate_id,
    aggregate_version, event_type, payload, occurred_at, priority, traceparent, tracestate,
    correlation_id, txid::text::bigint";

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

/// Up to `limit` events of one stream from `from_version`, and the stream's current version.
pub async fn read_stream(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    from_version: i64,
    limit: i64,
) -> Result<(Vec<StoredEvent>, i64), Error> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE tenant_id = $1 AND aggregate_type = $2 AND aggregate_id = $3
           AND aggregate_version >= $4
         ORDER BY aggregate_version LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(from_version)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT max(aggregate_version) FROM events
         WHERE tenant_id = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(pool)
    .await?;
    Ok((rows.into_iter().map(stored).collect(), version.unwrap_or(0)))
}

/// Where a subscriber stands: the transaction id and position of the last event it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    txid: i64,
    position: i64,
}

/// The cursor just after the event at `position` (the start for 0). NOT_FOUND for a position
/// that is not one of the tenant's events.
pub async fn cursor_after(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    position: i64,
) -> Result<Cursor, Error> {
    if position == 0 {
        return Ok(Cursor::default());
    }
    let txid: Option<i64> = sqlx::query_scalar(
        "SELECT txid::text::bigint FROM events WHERE position = $1 AND tenant_id = $2",
    )
    .bind(position)
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?;
    let txid = txid.ok_or_else(|| crate::error::position_not_found(position))?;
    Ok(Cursor { txid, position })
}

/// The next events after `cursor` that are safe to deliver: only those whose transaction is
/// older than every transaction still running, so a later read can never find an older one.
pub async fn next_events(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    cursor: &mut Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, Error> {
    let rows: Vec<(i64, EventRow)> = sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE tenant_id = $1
           AND (txid::text::bigint, position) > ($2, $3)
           AND txid < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY txid, position LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(cursor.txid)
    .bind(cursor.position)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.13, row))
    .collect();
    if let Some((txid, row)) = rows.last() {
        *cursor = Cursor {
            txid: *txid,
            position: row.0,
        };
    }
    Ok(rows.into_iter().map(|(_, row)| stored(row)).collect())
}

/// Saves a snapshot of an aggregate at `version` and keeps only the latest three.
pub async fn save_snapshots(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    aggregate_type: &str,
    snapshots: &[(String, i64, serde_json::Value)],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if snapshots.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = snapshots.iter().map(|s| s.0.as_str()).collect();
    let versions: Vec<i64> = snapshots.iter().map(|s| s.1).collect();
    let states: Vec<&serde_json::Value> = snapshots.iter().map(|s| &s.2).collect();
    sqlx::query(
        "INSERT INTO snapshots (tenant_id, aggregate_type, aggregate_id, aggregate_version, state, created_at)
         SELECT $1, $2, s.id, s.version, s.state, $6
         FROM UNNEST($3::text[], $4::bigint[], $5::jsonb[]) AS s(id, version, state)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(&ids)
    .bind(&versions)
    .bind(&states)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    // Per aggregate, the version of the third newest snapshot is found by a short backward
    // index scan, and older ones go. (A window over all the aggregates' snapshots, planned on
    // stale statistics, once turned this into a nested loop of seconds for a large batch.)
    sqlx::query(
        "DELETE FROM snapshots s USING (
             SELECT u.id, (SELECT k.aggregate_version FROM snapshots k
                           WHERE k.tenant_id = $1 AND k.aggregate_type = $2 AND k.aggregate_id = u.id
                           ORDER BY k.aggregate_version DESC OFFSET 2 LIMIT 1) AS oldest_kept
             FROM UNNEST($3::text[]) AS u(id)) kept
         WHERE s.tenant_id = $1 AND s.aggregate_type = $2 AND s.aggregate_id = kept.id
           AND s.aggregate_version < kept.oldest_kept",
    )
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(&ids)
    .execute(connection)
    .await?;
    Ok(())
}

/// The latest snapshot of an aggregate, if any: (version, state).
pub async fn latest_snapshot(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<(i64, serde_json::Value)>, Error> {
    Ok(sqlx::query_as(
        "SELECT aggregate_version, state FROM snapshots
         WHERE tenant_id = $1 AND aggregate_type = $2 AND aggregate_id = $3
         ORDER BY aggregate_version DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(executor)
    .await?)
}

/// Payloads of a stream's events after `after_version`, in order: (version, type, payload).
pub async fn payloads_after(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    after_version: i64,
) -> Result<Vec<(i64, String, Vec<u8>)>, Error> {
    Ok(sqlx::query_as(
        "SELECT aggregate_version, event_type, payload FROM events
         WHERE tenant_id = $1 AND aggregate_type = $2 AND aggregate_id = $3
           AND aggregate_version > $4
         ORDER BY aggregate_version",
    )
    .bind(tenant_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after_version)
    .fetch_all(executor)
    .await?)
}

/// Protobuf names of the ledger's event payloads.
pub mod types {
    pub const TENANT_CREATED: &str = "phoenix.ledger.v1.TenantCreated";
    pub const ACCOUNT_OPENED: &str = "phoenix.ledger.v1.AccountOpened";
    pub const ACCOUNT_BALANCE_CHANGED: &str = "phoenix.ledger.v1.AccountBalanceChanged";
    pub const POLICY_CHANGED: &str = "phoenix.ledger.v1.PolicyChanged";
    pub const INVENTORY_CHANGED: &str = "phoenix.ledger.v1.InventoryChanged";
    pub const HOLDING_CHANGED: &str = "phoenix.ledger.v1.HoldingChanged";
    pub const IMPORT_BATCH_STARTED: &str = "phoenix.ledger.v1.ImportBatchStarted";
    pub const IMPORT_RECORDS_APPLIED: &str = "phoenix.ledger.v1.ImportRecordsApplied";
    pub const IMPORT_BATCH_FINISHED: &str = "phoenix.ledger.v1.ImportBatchFinished";
}
