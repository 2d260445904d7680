//! The ledger's rules as plain Rust: no SQL, no gRPC, no clock reads (time is passed in).
//! Refusals are the runtime's vocabulary ([`phoenix_runtime::Refusal`]); request fields are
//! validated with its [`phoenix_runtime::Violations`] collector.

pub mod import;
pub mod ledger;
pub mod owner;
pub mod policy;
pub mod shop;
pub mod stock;
pub mod tenant;

pub use phoenix_runtime::{Refusal, RefusalKind};
