//! Every SQL statement of the ledger, one module per area, one function per query, returning
//! domain types. Connections have `search_path` set to the `ledger` schema. Functions that
//! change state take the transaction's connection; the use cases (`app`) open the transaction,
//! through `phoenix_runtime::idempotency::once` for the calls that carry a key. A change and the
//! events that record it are written by the same function, in the same transaction.

pub mod accounts;
pub mod events;
pub mod import;
pub mod policies;
pub mod shop;
pub mod stock;
pub mod tenants;
pub mod transfers;

/// Advisory lock key space of the per-tenant policy gate: postings hold it shared, policy
/// changes exclusively, so a policy's effective time splits the transfers cleanly.
pub const POLICY_GATE: i32 = 0x1ed9e7;
