//! Saving boards: each board's rows diffed against its saved version, the removals and the one
//! write statement (`write`), and a batch saved board by board in savepoints when the database
//! refuses it whole.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::SubsecRound;
use phoenix_runtime::Error;
use sqlx::{Connection, PgConnection};

use super::rows::{BoardRows, StateRow};
use super::write::{Removals, Writes};
use crate::domain::board::Board;

/// Saves a batch's boards over their saved versions in one statement when the database takes
/// them all, which is the rule. When it refuses the statement, some board broke a constraint (a
/// damaged board, a rule bug) and the error does not say which, so the boards are saved again
/// one by one, each in a savepoint of its own: a board refused is left as it was and the others
/// are saved. Answers each board's outcome; an error that is not the database refusing a
/// statement (the connection is gone) fails the whole batch.
pub(super) async fn save_each(
    connection: &mut PgConnection,
    changes: &mut [(Option<Board>, Board)],
) -> Result<Vec<Result<(), Error>>, Error> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    match save_in_savepoint(connection, changes).await {
        Ok(()) => return Ok(changes.iter().map(|_| Ok(())).collect()),
        Err(SaveError::Failed(error)) => return Err(error),
        Err(SaveError::Refused(_)) => {}
    }
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes.iter_mut() {
        match save_in_savepoint(connection, std::slice::from_mut(change)).await {
            Ok(()) => outcomes.push(Ok(())),
            Err(SaveError::Failed(error)) => return Err(error),
            Err(refused) => outcomes.push(Err(refused.into())),
        }
    }
    Ok(outcomes)
}

/// Why a save failed.
#[derive(Debug)]
pub(super) enum SaveError {
    /// The database refused a statement (a constraint, a trigger, a timeout): the connection
    /// and a transaction rolled back to before it are still good.
    Refused(sqlx::Error),
    /// Anything else: the connection is gone, or a broken invariant.
    Failed(Error),
}

impl From<sqlx::Error> for SaveError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(_) => Self::Refused(error),
            other => Self::Failed(other.into()),
        }
    }
}

impl From<Error> for SaveError {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

/// A board the database refused for a constraint broke an invariant the database enforces
/// (once a day, once per run, petals in range…): INTERNAL, naming the constraint in the log.
impl From<SaveError> for Error {
    fn from(error: SaveError) -> Self {
        match error {
            SaveError::Failed(error) => error,
            SaveError::Refused(error) => {
                let violated = error
                    .as_database_error()
                    .filter(|e| e.code().is_some_and(|code| code.starts_with("23")))
                    .map(|e| {
                        (
                            e.constraint().unwrap_or_default().to_owned(),
                            e.message().to_owned(),
                        )
                    });
                match violated {
                    Some((constraint, message)) => Error::invariant(
                        "BOARD_CONSTRAINT",
                        format!(
                            "the database refused the board: constraint {constraint}: {message}"
                        ),
                    ),
                    None => error.into(),
                }
            }
        }
    }
}

/// `save` in a savepoint: when it fails, the transaction goes on as if nothing had been sent.
async fn save_in_savepoint(
    connection: &mut PgConnection,
    changes: &mut [(Option<Board>, Board)],
) -> Result<(), SaveError> {
    let mut savepoint = connection.begin().await?;
    match save(&mut savepoint, changes).await {
        Ok(()) => Ok(savepoint.commit().await?),
        Err(error) => {
            savepoint.rollback().await?;
            Err(error)
        }
    }
}

/// Saves new boards over their saved versions (None: new boards): the rows that went away or
/// were replaced first, then everything new or changed in one statement.
pub(super) async fn save(
    connection: &mut PgConnection,
    changes: &mut [(Option<Board>, Board)],
) -> Result<(), SaveError> {
    for (_, board) in changes.iter_mut() {
        to_database_precision(board);
    }
    let changes: &[(Option<Board>, Board)] = changes;
    let mut writes = Writes::default();
    let mut removals = Removals::default();
    for (saved, board) in changes {
        writes.state.push(StateRow::of(board));
        let saved = match saved {
            // The key got a different board: the old one goes with all its rows.
            Some(saved) if saved.board_id != board.board_id => {
                removals.boards.push(saved.board_id);
                None
            }
            saved => saved.as_ref(),
        };
        let saved = saved.map(BoardRows::of).transpose()?.unwrap_or_default();
        let current = BoardRows::of(board)?;
        diff(
            saved.board,
            current.board,
            |r| r.board_id,
            &mut writes.boards,
            &mut removals.boards,
            Kind::Mutable,
        );
        diff(
            saved.slots,
            current.slots,
            |r| r.slot_id,
            &mut writes.slots,
            &mut Vec::new(),
            Kind::Mutable,
        );
        diff(
            saved.runs,
            current.runs,
            |r| r.run_id,
            &mut writes.runs,
            &mut removals.runs,
            Kind::Mutable,
        );
        diff(
            saved.progress,
            current.progress,
            |r| r.run_id,
            &mut writes.progress,
            &mut Vec::new(),
            Kind::Mutable,
        );
        diff(
            saved.heartbeats,
            current.heartbeats,
            |r| r.heartbeat_id,
            &mut writes.heartbeats,
            &mut removals.heartbeats,
            Kind::AppendOnly,
        );
        diff(
            saved.days,
            current.days,
            |r| (r.run_id, r.local_date),
            &mut writes.days,
            &mut removals.days,
            Kind::AppendOnly,
        );
        diff(
            saved.effects,
            current.effects,
            |r| r.effect_instance_id,
            &mut writes.effects,
            &mut removals.effects,
            Kind::Mutable,
        );
        diff(
            saved.boss_runs,
            current.boss_runs,
            |r| r.boss_run_id,
            &mut writes.boss_runs,
            &mut removals.boss_runs,
            Kind::Mutable,
        );
        diff(
            saved.claims,
            current.claims,
            |r| r.claim_id,
            &mut writes.claims,
            &mut removals.claims,
            Kind::AppendOnly,
        );
        diff(
            saved.communications,
            current.communications,
            |r| r.communication_id,
            &mut writes.communications,
            &mut removals.communications,
            Kind::AppendOnly,
        );
    }
    if !removals.is_empty() {
        removals.execute(connection).await?;
    }
    writes.execute(connection).await
}

/// The database keeps microseconds: instants are cut to that before they are stored, so the
/// snapshot and the relational rows hold the very same board (the audit compares them).
fn to_database_precision(board: &mut Board) {
    board.each_instant_mut(&mut |_, at| *at = at.trunc_subsecs(6));
}

/// How a table's rows change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Rows are upserted in place.
    Mutable,
    /// Records are only ever added; one that differs anyway (a board overwritten by `put`) is
    /// deleted and inserted again, so inserts never need ON CONFLICT.
    AppendOnly,
}

/// Sorts one table's rows of one board: rows new or different from the saved ones go to
/// `writes`; keys of saved rows that are gone (and, for append-only tables, of rows that
/// changed) go to `deletes`.
fn diff<K: Eq + Hash, R: PartialEq>(
    saved: Vec<R>,
    current: Vec<R>,
    key: impl Fn(&R) -> K,
    writes: &mut Vec<R>,
    deletes: &mut Vec<K>,
    kind: Kind,
) {
    if saved.is_empty() {
        writes.extend(current);
        return;
    }
    let mut saved: HashMap<K, R> = saved.into_iter().map(|row| (key(&row), row)).collect();
    for row in current {
        match saved.remove(&key(&row)) {
            Some(old) if old == row => {}
            Some(_) => {
                if kind == Kind::AppendOnly {
                    deletes.push(key(&row));
                }
                writes.push(row);
            }
            None => writes.push(row),
        }
    }
    deletes.extend(saved.into_keys());
}
