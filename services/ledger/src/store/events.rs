//! The event store's snapshots and an aggregate's payloads. Events are appended with the
//! change they record, and read and followed, through `phoenix_runtime::stream`.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::PgConnection;
use uuid::Uuid;

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
