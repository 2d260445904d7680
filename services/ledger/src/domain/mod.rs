//! The ledger's rules as plain Rust: no SQL, no gRPC, no clock reads (time is passed in).

pub mod import;
pub mod ledger;
pub mod policy;
pub mod stock;
pub mod tenant;

pub use phoenix_runtime::refusal::{Refusal, RefusalKind};
