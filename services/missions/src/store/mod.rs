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
//! - `update_due(now, limit, skip, change)`: the day close in batches: up to `limit` boards
//!   whose `rules::next_due` is ≤ `now` (leaving out the keys in `skip` and boards locked by
//!   someone else), each given to `change`; those it answers `Some` for are saved in one
//!   transaction. A board the database refuses (SQL) is left as it was, still due, and the
//!   others are saved anyway. Returns a [`DueBoards`].
//! - `put(&Board) -> Result<Option<Board>>`: overwrites the board, returning the previous one
//!   (DUAL's secondary write).
//! - `insert_if_absent(&Board) -> Result<bool>`: writes the board unless its key exists
//!   (backfill; per board, idempotent).

pub mod analytics;
pub mod audit;
pub mod catalog;
pub mod file;
pub mod levels;
pub mod repo;
pub mod sql;
pub mod task_events;

use crate::domain::board::{Board, BoardKey};

/// What an update's change decided. It lives for one call, so the board is not boxed.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Saved<T> {
    /// Save this board and answer `T`.
    Write(Board, T),
    /// Nothing changed (a replay, a read): write nothing and answer `T`.
    Keep(T),
}

/// What one batch of `update_due` did.
#[derive(Debug)]
pub struct DueBoards<T> {
    /// The answers of `change` for the boards that were saved, in the order they were picked.
    pub saved: Vec<T>,
    /// Boards `change` changed but the database refused to save: left as they were, so still
    /// due. A caller going through every due board passes them back in `skip`, so the next
    /// batch does not pick them again.
    pub refused: Vec<BoardKey>,
}
