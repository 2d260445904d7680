//! The migration from the legacy JSON store to PostgreSQL (the seed's plan, steps 3–6), as
//! library functions the API and the `phoenix` CLI call:
//!
//! - [`backfill`]: every board of a store file into SQL, per board and idempotent; a board that
//!   does not parse, breaks a rule of the tables (`domain::storable`), shares an id with
//!   another board or is refused by the database is quarantined, nothing of it written;
//! - [`rebuild_from_events`]: heartbeats, progress and boss runs replayed from an NDJSON log of
//!   past legacy events (format in `domain::legacy`), each one at most once;
//! - [`compare`], [`compare_store`]: the boards of FILE and SQL side by side, every difference
//!   with its JSON path (a store's malformed boards left out and listed);
//! - [`export`]: the rollback, SQL's relational tables written back as a store file FILE reads;
//! - [`audit`]: the weekly audit, every snapshot against its relational rows and the rules'
//!   invariants.
//!
//! What a board must hold and how a past event replays are the domain's
//! (`domain::legacy`); this module reads and writes the files and the stores around them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use phoenix_runtime::{Error, quote};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Refusal;
use crate::domain::board::{Board, BoardKey, Store};
use crate::domain::catalog::Catalog;
use crate::domain::diff::{Difference, diff_boards};
use crate::domain::legacy::{
    EventOutcome, LegacyEvent, apply_event, bounded, check_board_text, text_user_id, value_user_id,
};
use crate::domain::rules::{RandomIds, RuleSettings};
use crate::domain::storable::{IdKind, describe, owned_ids};
use crate::error;
use crate::store::Saved;
use crate::store::file::{self, FileBoards};
use crate::store::sql::{Imported, SqlBoards};

pub use crate::store::audit::{AuditReport, Violation};

use super::Missions;

/// The request fields that name the files the migration reads and writes, named by the errors
/// of a path that cannot be right (`error::file_failed`).
const STORE_PATH: &str = "store_path";
const LOG_PATH: &str = "log_path";

impl Missions {
    /// The store path a request names, or the configured one when it names none; a path is
    /// required when neither is there.
    fn store_path_or_default(&self, given: &str) -> Result<PathBuf, Refusal> {
        let path = match given.trim() {
            "" => self.store_path.clone(),
            _ => PathBuf::from(given),
        };
        if path.as_os_str().is_empty() {
            return Err(error::path_required(STORE_PATH));
        }
        Ok(path)
    }

    /// [`backfill`] from the store a request names (the configured one when it names none).
    pub async fn backfill(&self, store_path: &str) -> Result<BackfillReport, Error> {
        let path = self.store_path_or_default(store_path)?;
        backfill(&path, &self.sql, &|_, _| {}).await
    }

    /// [`rebuild_from_events`] from the event log at `log_path`, with the current catalog.
    pub async fn rebuild_from_events(&self, log_path: &Path) -> Result<RebuildReport, Error> {
        let catalog = self.catalog.get().await?;
        rebuild_from_events(log_path, &self.sql, &catalog, &self.rules).await
    }

    /// [`compare`] of the store a request names (the configured one when it names none).
    pub async fn compare(
        &self,
        store_path: &str,
        season: &str,
        users: &[Uuid],
    ) -> Result<CompareReport, Error> {
        let path = self.store_path_or_default(store_path)?;
        compare_store(&path, &self.sql, season, users).await
    }

    /// [`export`] to `store_path`.
    pub async fn export(&self, store_path: &Path) -> Result<u64, Error> {
        export(&self.sql, store_path).await
    }

    /// [`audit`] of this service's database.
    pub async fn audit(&self) -> Result<AuditReport, Error> {
        audit(&self.pool).await
    }
}

/// Runs every check of the weekly audit over every board.
pub async fn audit(pool: &PgPool) -> Result<AuditReport, Error> {
    crate::store::audit::run(pool).await
}

/// An input element kept out of SQL, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantined {
    /// Where it is in its input: `boards[3]` of a store, `line 12` of an event log.
    pub location: String,
    /// The user it belongs to, when that much could be read.
    pub user_id: Option<Uuid>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillReport {
    /// Boards in the store file.
    pub read: u64,
    /// Boards written to SQL.
    pub inserted: u64,
    /// Boards SQL already had (a re-run), left as they are.
    pub skipped: u64,
    pub quarantined: Vec<Quarantined>,
}

/// Writes every valid board of the store file at `store_path` to SQL unless SQL already has a
/// board for its user and season. `progress(done, total)` is called after each board.
///
/// Every board stands alone: it is parsed from its own JSON text (a lone surrogate or a bad
/// field spoils that board only), checked against every rule the tables enforce
/// (`domain::storable`), and written in a transaction of its own. A board that fails any of
/// that is quarantined with its index, user, field paths and rules, nothing of it written, and
/// the rest of the store still moves. Two boards for the same user and season are both
/// quarantined (which one is right is for a person to decide), and so are boards sharing an id
/// (`ID_ALREADY_OWNED`), in the store or with a board SQL already has. A file whose top level
/// is not a store is an error and nothing is written.
pub async fn backfill(
    store_path: &Path,
    sql: &SqlBoards,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<BackfillReport, Error> {
    let raw_boards = read_raw_boards(store_path).await?;
    let total = raw_boards.len() as u64;
    let mut report = BackfillReport {
        read: total,
        ..BackfillReport::default()
    };
    let checked = check_boards(&raw_boards);
    drop(raw_boards);
    for (done, (location, checked)) in (1..).zip(checked) {
        match checked {
            Err(quarantined) => report.quarantined.push(quarantined),
            Ok(board) => match sql.import(&board).await? {
                Imported::Inserted => report.inserted += 1,
                Imported::Present => report.skipped += 1,
                Imported::Owned(owners) => report.quarantined.push(Quarantined {
                    user_id: Some(board.user_id),
                    reason: owners
                        .iter()
                        .map(|owner| {
                            format!(
                                "{location}.{}: {} id {} is already owned by the board of user \
                                 {} in season {} (ID_ALREADY_OWNED)",
                                owner.id.path,
                                owner.id.kind.as_str(),
                                owner.id.id,
                                owner.user_id,
                                quote(&owner.season_id)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    location,
                }),
                Imported::Refused {
                    code,
                    constraint,
                    message,
                } => report.quarantined.push(Quarantined {
                    user_id: Some(board.user_id),
                    reason: format!(
                        "{location}: the database refused the board: constraint {} \
                         (SQLSTATE {code}): {} (DATABASE_REFUSED)",
                        quote(&constraint),
                        bounded(&message)
                    ),
                    location,
                }),
            },
        }
        progress(done, total);
    }
    Ok(report)
}

/// Each raw board parsed and checked on its own, then the checks across boards: one board per
/// user and season, and no id in two boards.
fn check_boards(raw_boards: &[Box<RawValue>]) -> Vec<(String, Result<Board, Quarantined>)> {
    let mut checked: Vec<(String, Result<Board, Quarantined>)> = raw_boards
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let location = format!("boards[{index}]");
            let checked = check_board_text(raw.get()).map_err(|violations| Quarantined {
                location: location.clone(),
                user_id: text_user_id(raw.get()),
                reason: describe(&location, &violations),
            });
            (location, checked)
        })
        .collect();

    let mut locations: HashMap<BoardKey, Vec<usize>> = HashMap::new();
    let mut id_owners: HashMap<(IdKind, Uuid), Vec<(usize, String)>> = HashMap::new();
    for (index, (_, checked)) in checked.iter().enumerate() {
        if let Ok(board) = checked {
            locations.entry(board.key()).or_default().push(index);
            for owned in owned_ids(board) {
                id_owners
                    .entry((owned.kind, owned.id))
                    .or_default()
                    .push((index, owned.path));
            }
        }
    }
    let mut problems: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for indexes in locations.values().filter(|indexes| indexes.len() > 1) {
        let all: Vec<String> = indexes.iter().map(|i| format!("boards[{i}]")).collect();
        for &index in indexes {
            problems.entry(index).or_default().push(format!(
                "boards[{index}].seasonId: the season has several boards of this user: {} \
                 (DUPLICATE_BOARD)",
                all.join(", ")
            ));
        }
    }
    for ((kind, id), owners) in &id_owners {
        let boards: BTreeSet<usize> = owners.iter().map(|(index, _)| *index).collect();
        if boards.len() < 2 {
            continue;
        }
        for (index, path) in owners {
            let others: Vec<String> = owners
                .iter()
                .filter(|(other, _)| other != index)
                .map(|(other, other_path)| format!("boards[{other}].{other_path}"))
                .collect();
            problems.entry(*index).or_default().push(format!(
                "boards[{index}].{path}: {} id {id} is also {} (ID_ALREADY_OWNED)",
                kind.as_str(),
                others.join(", ")
            ));
        }
    }
    for (index, reasons) in problems {
        let (location, entry) = &mut checked[index];
        if let Ok(board) = entry {
            *entry = Err(Quarantined {
                location: location.clone(),
                user_id: Some(board.user_id),
                reason: reasons.join("; "),
            });
        }
    }
    checked
}

/// The store's boards as raw JSON texts, after checking its top level: each board is parsed
/// on its own, so one that is not valid JSON text (a lone surrogate) fails alone.
async fn read_raw_boards(store_path: &Path) -> Result<Vec<Box<RawValue>>, Error> {
    /// The store's top level; boards stay raw so each can fail on its own.
    #[derive(Deserialize)]
    struct RawStore {
        version: u32,
        boards: Vec<Box<RawValue>>,
    }

    let path = store_path.to_owned();
    let bytes = file::run_blocking(store_path, move || file::read_bytes(&path))
        .await?
        .map_err(|error| error::file_failed(Some(STORE_PATH), store_path, "read", &error))?
        .ok_or_else(|| error::store_file_not_found(store_path))?;
    let raw: RawStore = serde_json::from_slice(&bytes).map_err(|error| {
        error::invalid_store_file(
            store_path,
            format!("not a missions store: {}", bounded(&error.to_string())),
        )
    })?;
    file::check_version(raw.version)
        .map_err(|detail| error::invalid_store_file(store_path, detail))?;
    Ok(raw.boards)
}

/// Rebuilds every board from SQL's relational tables and writes them as a store file at
/// `store_path` (atomically, replacing any file there): the rollback to FILE. Returns how many
/// boards it wrote. Run it while no FILE or DUAL service has the file open: such a service
/// keeps its boards in memory and its next save would overwrite the export.
pub async fn export(sql: &SqlBoards, store_path: &Path) -> Result<u64, Error> {
    let mut keys = sql.keys(None).await?;
    keys.sort();
    let mut boards = Vec::with_capacity(keys.len());
    for key in &keys {
        // A board deleted since `keys` was read is simply not exported.
        if let Some(board) = sql.load_relational(key).await? {
            boards.push(board);
        }
    }
    let count = boards.len() as u64;
    let store = Store {
        version: Store::VERSION,
        boards,
    };
    let path = store_path.to_owned();
    file::run_blocking(store_path, move || {
        file::write_store(&path, &store, Some(STORE_PATH))
    })
    .await??;
    Ok(count)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareReport {
    /// Users whose boards were compared.
    pub compared: u64,
    pub differences: Vec<Difference>,
    /// Boards of the store that are not valid boards, left out of the comparison.
    pub quarantined: Vec<Quarantined>,
}

/// [`compare`] against the store file at `store_path`, read board by board: a board that does
/// not parse or breaks a rule is reported in `quarantined` and the valid ones are compared (a
/// user whose only board is malformed is not compared, so SQL's board of them is not reported
/// missing from FILE). A missing file is an error, not an empty store.
pub async fn compare_store(
    store_path: &Path,
    sql: &SqlBoards,
    season: &str,
    users: &[Uuid],
) -> Result<CompareReport, Error> {
    let raw_boards = read_raw_boards(store_path).await?;
    let mut file_boards = Vec::new();
    let mut quarantined = Vec::new();
    for (_, checked) in check_boards(&raw_boards) {
        match checked {
            Ok(board) => file_boards.push(board),
            Err(refused) => quarantined.push(refused),
        }
    }
    let unreadable: BTreeSet<Uuid> = quarantined.iter().filter_map(|q| q.user_id).collect();
    let mut report = compare_boards(&file_boards, sql, season, users, &unreadable).await?;
    report.quarantined = quarantined;
    Ok(report)
}

/// Compares the `season` boards of `users` in FILE and in SQL (every user with a board in
/// either when `users` is empty).
pub async fn compare(
    file: &FileBoards,
    sql: &SqlBoards,
    season: &str,
    users: &[Uuid],
) -> Result<CompareReport, Error> {
    let boards = file.snapshot().await.boards;
    compare_boards(&boards, sql, season, users, &BTreeSet::new()).await
}

/// Compares the `season` boards of `users` among `file_boards` and in SQL (every user with a
/// board in either when `users` is empty, except those in `left_out`).
async fn compare_boards(
    file_boards: &[Board],
    sql: &SqlBoards,
    season: &str,
    users: &[Uuid],
    left_out: &BTreeSet<Uuid>,
) -> Result<CompareReport, Error> {
    let in_season = |board: &&Board| board.season_id == season;
    let users: BTreeSet<Uuid> = if users.is_empty() {
        let sql_keys = sql.keys(Some(season)).await?;
        file_boards
            .iter()
            .filter(in_season)
            .map(|board| board.user_id)
            .chain(sql_keys.into_iter().map(|key| key.user_id))
            .filter(|user_id| !left_out.contains(user_id))
            .collect()
    } else {
        users.iter().copied().collect()
    };
    let mut report = CompareReport::default();
    for user_id in users {
        let key = BoardKey {
            user_id,
            season_id: season.to_owned(),
        };
        let file_board = file_boards
            .iter()
            .filter(in_season)
            .find(|board| board.user_id == user_id);
        let sql_board = sql.load(&key).await?;
        let differences = diff_boards(user_id, file_board, sql_board.as_ref())
            .map_err(|error| Error::invariant("BOARD_SERIALIZES", error.to_string()))?;
        report.differences.extend(differences);
        report.compared += 1;
    }
    Ok(report)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildReport {
    /// Events in the log (blank lines excluded).
    pub read: u64,
    pub applied: u64,
    pub already_applied: u64,
    pub quarantined: Vec<Quarantined>,
}

/// Replays the NDJSON event log at `log_path` onto the SQL boards (see the module doc), one
/// event per transaction, in log order.
pub async fn rebuild_from_events(
    log_path: &Path,
    sql: &SqlBoards,
    catalog: &Catalog,
    settings: &RuleSettings,
) -> Result<RebuildReport, Error> {
    let path = log_path.to_owned();
    let bytes = file::run_blocking(log_path, move || file::read_bytes(&path))
        .await?
        .map_err(|error| error::file_failed(Some(LOG_PATH), log_path, "read", &error))?
        .ok_or_else(|| error::event_log_not_found(log_path))?;
    let log = String::from_utf8(bytes)
        .map_err(|error| error::invalid_event_log(log_path, format!("not UTF-8 text: {error}")))?;
    let mut report = RebuildReport::default();
    for (index, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        report.read += 1;
        let location = format!("line {}", index + 1);
        let mut deserializer = serde_json::Deserializer::from_str(line);
        let event: LegacyEvent = match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(event) => event,
            Err(error) => {
                let path = error.path().to_string();
                let field = if path == "." {
                    String::new()
                } else {
                    format!(" {path}")
                };
                let user_id = serde_json::from_str::<Value>(line)
                    .ok()
                    .as_ref()
                    .and_then(value_user_id);
                report.quarantined.push(Quarantined {
                    reason: format!(
                        "{location}{field}: not a missions event: {} (INVALID_FIELD)",
                        bounded(&error.inner().to_string())
                    ),
                    location,
                    user_id,
                });
                continue;
            }
        };
        let key = event.key();
        let outcome = sql
            .update(&key, |board| {
                let Some(mut board) = board else {
                    return Ok(Saved::Keep(EventOutcome::Rejected(format!(
                        "no board for this user in season {}",
                        key.season_id
                    ))));
                };
                Ok(
                    match apply_event(&mut board, &event, catalog, settings, &mut RandomIds) {
                        EventOutcome::Applied => Saved::Write(board, EventOutcome::Applied),
                        other => Saved::Keep(other),
                    },
                )
            })
            .await;
        // The database refusing the replayed board is this event's problem, not the log's:
        // the event is quarantined (its transaction rolled back) and the replay goes on.
        let outcome = match outcome {
            Err(Error::Invariant {
                invariant: "BOARD_CONSTRAINT",
                detail,
            }) => EventOutcome::Rejected(format!("{} (DATABASE_REFUSED)", bounded(&detail))),
            other => other?,
        };
        match outcome {
            EventOutcome::Applied => report.applied += 1,
            EventOutcome::AlreadyApplied => report.already_applied += 1,
            EventOutcome::Rejected(reason) => report.quarantined.push(Quarantined {
                location,
                user_id: Some(key.user_id),
                reason,
            }),
        }
    }
    Ok(report)
}
