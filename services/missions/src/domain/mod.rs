//! The missions board as plain Rust: no SQL, no gRPC, no clock reads (time is passed in).
//!
//! [`board`] is the state of one user's board in one season, and also the legacy JSON store's
//! format (the FILE repository and the `missions_v2_state` snapshot serialize it as is).
//! [`catalog`] is what boards are built from. [`rules`] is every change a board can go through.
//! [`diff`] says where two copies of a board differ; [`legacy`] is what the legacy service's
//! data must hold and how its past events replay through the rules, and [`storable`] every rule
//! the board tables hold a board to. [`analytics`] is what the weekly views hold.

pub mod analytics;
pub mod board;
pub mod catalog;
pub mod diff;
pub mod legacy;
pub mod levels;
pub mod rules;
pub mod storable;

pub use phoenix_runtime::{Refusal, RefusalKind};

/// Whether a string or key anywhere in `json` holds a NUL, which PostgreSQL's `text` and
/// `jsonb` cannot hold: what is refused before it reaches them.
pub fn json_holds_nul(json: &serde_json::Value) -> bool {
    phoenix_runtime::error::json_nul(json).is_some()
}
