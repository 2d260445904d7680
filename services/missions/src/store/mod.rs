//! Where boards and the catalog live. Every SQL statement of the service is in this module.
//!
//! Boards live behind one interface with three implementations, chosen with `MISSIONS_REPO`
//! without touching the rules:
//! - [`file::FileBoards`]: the legacy JSON store, one file (`PHOENIX_MISSIONS_STORE_PATH`);
//! - [`sql::SqlBoards`]: the `missions_v2_state` snapshot and the relational tables, written in
//!   one transaction;
//! - DUAL ([`repo::Repository`]): both, reading from a configured primary and recording every
//!   divergence.
//!
//! Each implementation offers the same calls:
//! - `load(&BoardKey) -> Result<Option<Board>>`
//! - `keys_of_user(Uuid) -> Result<Vec<BoardKey>>`, `keys(season: Option<&str>) -> Result<Vec<BoardKey>>`
//! - `update(&BoardKey, change)`: runs `change(current)` under the board's lock and, when it
//!   returns [`Saved::Write`], saves the new board atomically; when `change` errs nothing is
//!   written. Concurrent updates of one board are serialized.
//! - `update_due(now, limit, change)`: the day close in batches: up to `limit` boards whose
//!   `rules::next_due` is ≤ `now` (skipping boards locked by someone else), each changed by
//!   `change` and all saved in one transaction. Returns how many boards it changed.
//! - `put(&Board) -> Result<Option<Board>>`: overwrites the board, returning the previous one
//!   (DUAL's secondary write).
//! - `insert_if_absent(&Board) -> Result<bool>`: writes the board unless its key exists
//!   (backfill; per board, idempotent).

pub mod analytics;
pub mod catalog;
pub mod file;
pub mod repo;
pub mod sql;

use crate::domain::board::Board;

/// What an update's change decided. It lives for one call, so the board is not boxed.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Saved<T> {
    /// Save this board and answer `T`.
    Write(Board, T),
    /// Nothing changed (a replay, a read): write nothing and answer `T`.
    Keep(T),
}
