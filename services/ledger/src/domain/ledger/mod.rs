//! Accounts, transfers and the posting engine: given the locked accounts and a list of
//! operations, decide what each does to the balances and which rows it adds. The engine is pure;
//! the store loads its inputs inside the posting transaction and writes what it returns.
//!
//! Balances follow TigerBeetle: four sums per account that only grow or (for the pending ones)
//! shrink when a reservation is resolved. The balance limit is checked after every change:
//! for a no-overdraft account, posted debits plus pending debits never exceed posted credits.
//!
//! `account` holds the account's types and sums, `transfer` what a transfer is and what a call
//! may ask, `engine` the posting itself and `plan` what each operation would do.

mod account;
mod engine;
mod plan;
mod transfer;

pub(crate) use account::is_asset_code;
pub use account::{Account, BalanceDelta, BalanceLimit, Balances, NewAccount, check_metadata};
pub use engine::{
    AccountChange, AccountState, BatchRefusal, CallContext, Entry, LedgerView, Linking, Posting,
    Referenced, TransferEffect, accounts_of, post,
};
pub use transfer::{
    Operation, PendingState, Transfer, TransferKind, TransferSpec, check_batch_size, check_code,
    optional_amount,
};

/// Largest batch of transfers one call may carry.
pub const MAX_BATCH: usize = 8_000;
/// Longest timeout of a pending transfer.
pub const MAX_PENDING_TIMEOUT: chrono::Duration = chrono::Duration::days(366);
/// Longest transfer code.
pub const MAX_CODE_CHARS: usize = 64;
/// Most metadata labels on one record.
pub const MAX_METADATA_ENTRIES: usize = 32;
