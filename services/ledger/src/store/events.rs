//! The event store's snapshots and an aggregate's payloads. Events are appended with the
//! change they record, and read and followed, through `phoenix_runtime::stream`.

use phoenix_runtime::Error;
use uuid::Uuid;

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
    pub const SHOP_ITEM_CHANGED: &str = "phoenix.ledger.v1.ShopItemChanged";
    pub const IMPORT_BATCH_STARTED: &str = "phoenix.ledger.v1.ImportBatchStarted";
    pub const IMPORT_RECORDS_APPLIED: &str = "phoenix.ledger.v1.ImportRecordsApplied";
    pub const IMPORT_BATCH_FINISHED: &str = "phoenix.ledger.v1.ImportBatchFinished";
}
