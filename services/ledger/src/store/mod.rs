//! Every SQL statement of the ledger, one module per area. Connections have `search_path` set
//! to the `ledger` schema. Functions that change state take the transaction's connection; the
//! transaction itself is opened by `phoenix_runtime::idempotency::once`, which makes each
//! mutating call idempotent.

pub mod events;
pub mod import;
pub mod ledger;
pub mod policies;
pub mod stock;
pub mod tenants;
