//! The migration from the legacy JSON store to PostgreSQL (the seed's plan, steps 3–6), as
//! library functions the API and the `phoenix` CLI call:
//!
//! - [`backfill`]: every board of a store file into SQL, per board and idempotent; a board that
//!   does not parse or breaks an invariant ([`validate`]) is quarantined, nothing of it written;
//! - [`rebuild_from_events`]: heartbeats, progress and boss runs replayed from an NDJSON log of
//!   past legacy events, each one at most once;
//! - [`compare`]: the boards of FILE and SQL side by side, every difference with its JSON path;
//! - [`export`]: the rollback, SQL's relational tables written back as a store file FILE reads.
//!
//! # The legacy event log (NDJSON)
//!
//! One JSON object per line (blank lines are ignored), oldest first, with a `type` and
//! camelCase fields; instants are RFC 3339, dates `YYYY-MM-DD` in the user's time zone:
//!
//! ```text
//! {"type":"missions_v2_heartbeat","userId":"…","seasonId":"2025-s1","slot":"main","runId":"…","date":"2025-03-03","at":"2025-03-03T19:12:00Z"}
//! {"type":"missions_v2_progress","userId":"…","seasonId":"2025-s1","slot":"hunt","runId":"…","current":4,"at":"…"}
//! {"type":"missions_v2_boss_damage","userId":"…","seasonId":"2025-s1","taskId":"…","shieldAfter":6,"at":"…"}
//! {"type":"missions_v2_boss_proof","userId":"…","seasonId":"2025-s1","proof":"…","at":"…"}
//! ```
//!
//! - heartbeat: the run's heartbeat on local `date`, sent at `at`;
//! - progress: the run's progress reached `current` (in the mission's unit) at `at`;
//! - boss_damage: progress on the boss's linked task `taskId` left its shield at `shieldAfter`
//!   (the resulting shield, not the damage, so a replay is recognizable);
//! - boss_proof: the phase 2 proof was submitted.
//!
//! Each event goes through the same rules as a live request, at its own time `at`. An event
//! the board already reflects (the day's heartbeat exists, progress is at least `current`, the
//! shield is at or below `shieldAfter`, a proof was submitted) changes nothing. A line that does
//! not parse, names an unknown board or run, or that the rules refuse is quarantined with its
//! line number. A heartbeat for a local day already closed without one is quarantined too: the
//! day's outcome (a petal lost, an effect consumed) is history a replay must not rewrite
//! silently.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use phoenix_runtime::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::board::{Board, BoardKey, Run, RunStatus, SlotKey, SlotState, Store};
use crate::domain::catalog::Catalog;
use crate::domain::rules::{self, Ids, RandomIds, RuleSettings};
use crate::error;
use crate::store::Saved;
use crate::store::file::{self, FileBoards};
use crate::store::sql::SqlBoards;

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
/// Boards are read one by one, so one bad board is quarantined and the rest still move; two
/// boards for the same user and season are both quarantined (which one is right is for a
/// person to decide). A file whose top level is not a store is an error and nothing is written.
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

    let checked: Vec<(String, Result<Board, Quarantined>)> = raw_boards
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let location = format!("boards[{index}]");
            let user_id = value_user_id(&value);
            let checked = check_board(value).map_err(|reason| Quarantined {
                location: location.clone(),
                user_id,
                reason,
            });
            (location, checked)
        })
        .collect();
    let mut locations: HashMap<BoardKey, Vec<&str>> = HashMap::new();
    for (location, checked) in &checked {
        if let Ok(board) = checked {
            locations.entry(board.key()).or_default().push(location);
        }
    }

    for (done, (location, checked)) in (1..).zip(&checked) {
        match checked {
            Err(quarantined) => report.quarantined.push(quarantined.clone()),
            Ok(board) => match locations[&board.key()].as_slice() {
                [_] => {
                    if sql.insert_if_absent(board).await? {
                        report.inserted += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
                several => report.quarantined.push(Quarantined {
                    location: location.clone(),
                    user_id: Some(board.user_id),
                    reason: format!(
                        "season {} has several boards of this user: {}",
                        board.season_id,
                        several.join(", ")
                    ),
                }),
            },
        }
        progress(done, total);
    }
    Ok(report)
}

/// The store's boards as raw JSON, after checking its top level.
async fn read_raw_boards(store_path: &Path) -> Result<Vec<Value>, Error> {
    /// The store's top level; boards stay raw so each can fail on its own.
    #[derive(Deserialize)]
    struct RawStore {
        version: u32,
        boards: Vec<Value>,
    }

    let path = store_path.to_owned();
    let bytes = file::run_blocking(store_path, move || file::read_bytes(&path))
        .await??
        .ok_or_else(|| error::file_store_unavailable(store_path, "there is no store file"))?;
    let raw: RawStore = serde_json::from_slice(&bytes).map_err(|error| {
        error::file_store_unavailable(store_path, format!("not a missions store: {error}"))
    })?;
    file::check_version(raw.version)
        .map_err(|detail| error::file_store_unavailable(store_path, detail))?;
    Ok(raw.boards)
}

fn value_user_id(value: &Value) -> Option<Uuid> {
    value
        .get("userId")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// A board of a store file, parsed and validated; the error says what is wrong with it.
pub fn check_board(value: Value) -> Result<Board, String> {
    let board: Board =
        serde_json::from_value(value).map_err(|error| format!("not a valid board: {error}"))?;
    validate(&board)?;
    Ok(board)
}

/// The invariants a board must hold before SQL takes it (its constraints would refuse it, or
/// the rules would misbehave on it). The error lists every broken one, with where.
///
/// The time zone is checked by parsing: a [`Board`] only holds known IANA zones.
pub fn validate(board: &Board) -> Result<(), String> {
    let mut problems = Vec::new();
    if board.season_id.trim().is_empty() {
        problems.push("seasonId is empty".to_owned());
    }

    let slot_keys: Vec<SlotKey> = board.slots.iter().map(|slot| slot.slot_key).collect();
    if slot_keys != SlotKey::ALL {
        problems.push(format!(
            "slots must be main, hunt, skill in that order, found [{}]",
            slot_keys
                .iter()
                .map(|key| key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let mut run_ids = BTreeSet::new();
    for (index, run) in board.runs.iter().enumerate() {
        if !run_ids.insert(run.run_id) {
            problems.push(format!("runs[{index}]: run {} appears twice", run.run_id));
        }
        if let Some(date) = first_repeated(run.heartbeats.iter().map(|h| h.date)) {
            problems.push(format!(
                "runs[{index}] ({}): more than one heartbeat on {date}",
                run.run_id
            ));
        }
        if let Some(date) = first_repeated(run.days.iter().map(|d| d.date)) {
            problems.push(format!(
                "runs[{index}] ({}): day {date} closed more than once",
                run.run_id
            ));
        } else if run.days.windows(2).any(|pair| pair[0].date > pair[1].date) {
            // Days are closed in date order; a list out of order is a store written by hand.
            problems.push(format!(
                "runs[{index}] ({}): closed days are not in date order",
                run.run_id
            ));
        }
    }

    for (index, slot) in board.slots.iter().enumerate() {
        let at = format!("slots[{index}] ({})", slot.slot_key.as_str());
        if !(0..=slot.petals_total).contains(&slot.petals_remaining) {
            problems.push(format!(
                "{at}: petalsRemaining {} is outside 0..={}",
                slot.petals_remaining, slot.petals_total
            ));
        }
        match (slot.state, slot.run_id) {
            (SlotState::Idle, Some(run_id)) => {
                problems.push(format!("{at}: idle but on run {run_id}"));
            }
            (SlotState::Idle, None) => {}
            (state, None) => problems.push(format!("{at}: {state:?} without a run")),
            (_, Some(run_id)) => match board.run(run_id) {
                None => problems.push(format!("{at}: run {run_id} is not among the runs")),
                Some(run) if run.slot_key != slot.slot_key => problems.push(format!(
                    "{at}: run {run_id} belongs to slot {}",
                    run.slot_key.as_str()
                )),
                Some(_) => {}
            },
        }
    }

    for run in &board.runs {
        let on_cooldown = board
            .slots
            .iter()
            .any(|slot| slot.slot_key == run.slot_key && slot.state == SlotState::Cooldown);
        if run.status == RunStatus::Active && on_cooldown {
            problems.push(format!(
                "run {} is active on slot {}, which is in cooldown",
                run.run_id,
                run.slot_key.as_str()
            ));
        }
    }

    if let Some(run_id) = first_repeated(board.claims.iter().map(|claim| claim.run_id)) {
        problems.push(format!("run {run_id} is claimed more than once"));
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The first value seen twice.
fn first_repeated<T: Ord + Copy>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut seen = BTreeSet::new();
    values.into_iter().find(|value| !seen.insert(*value))
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
    file::run_blocking(store_path, move || file::write_store(&path, &store)).await??;
    Ok(count)
}

/// One place where the FILE and SQL copies of a board differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub user_id: Uuid,
    /// The JSON path in the board, e.g. `slots[0].petalsRemaining`; empty for the whole board
    /// (present on one side only).
    pub path: String,
    /// None: absent on this side.
    pub file_value: Option<Value>,
    pub sql_value: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareReport {
    /// Users whose boards were compared.
    pub compared: u64,
    pub differences: Vec<Difference>,
}

/// Compares the `season` boards of `users` in FILE and in SQL (every user with a board in
/// either when `users` is empty).
pub async fn compare(
    file: &FileBoards,
    sql: &SqlBoards,
    season: &str,
    users: &[Uuid],
) -> Result<CompareReport, Error> {
    let users: BTreeSet<Uuid> = if users.is_empty() {
        let file_keys = file.keys(Some(season)).await?;
        let sql_keys = sql.keys(Some(season)).await?;
        file_keys
            .into_iter()
            .chain(sql_keys)
            .map(|key| key.user_id)
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
        let file_board = file.load(&key).await?;
        let sql_board = sql.load(&key).await?;
        report.differences.extend(diff_boards(
            user_id,
            file_board.as_ref(),
            sql_board.as_ref(),
        ));
        report.compared += 1;
    }
    Ok(report)
}

/// Every difference between two copies of a user's board, compared as the JSON both stores
/// hold: objects field by field, arrays element by element.
pub fn diff_boards(user_id: Uuid, file: Option<&Board>, sql: Option<&Board>) -> Vec<Difference> {
    let mut differences = Vec::new();
    diff_values(
        user_id,
        String::new(),
        file.map(board_json).as_ref(),
        sql.map(board_json).as_ref(),
        &mut differences,
    );
    differences
}

fn board_json(board: &Board) -> Value {
    // Plain data with string keys: serializing it cannot fail.
    serde_json::to_value(board).expect("a board serializes to JSON")
}

fn diff_values(
    user_id: Uuid,
    path: String,
    file: Option<&Value>,
    sql: Option<&Value>,
    differences: &mut Vec<Difference>,
) {
    match (file, sql) {
        (Some(Value::Object(file)), Some(Value::Object(sql))) => {
            let keys: BTreeSet<&String> = file.keys().chain(sql.keys()).collect();
            for key in keys {
                let path = field_path(&path, key);
                diff_values(user_id, path, file.get(key), sql.get(key), differences);
            }
        }
        (Some(Value::Array(file)), Some(Value::Array(sql))) => {
            for index in 0..file.len().max(sql.len()) {
                let path = format!("{path}[{index}]");
                diff_values(user_id, path, file.get(index), sql.get(index), differences);
            }
        }
        (file, sql) if file != sql => differences.push(Difference {
            user_id,
            path,
            file_value: file.cloned(),
            sql_value: sql.cloned(),
        }),
        _ => {}
    }
}

fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        // Keys of free-form payloads may hold anything; quote them so the path stays readable.
        (_, false) => format!("{parent}[{}]", Value::String(key.to_owned())),
    }
}

/// One past missions event of the legacy service's log; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type")]
pub enum LegacyEvent {
    #[serde(rename = "missions_v2_heartbeat", rename_all = "camelCase")]
    Heartbeat {
        user_id: Uuid,
        season_id: String,
        slot: SlotKey,
        run_id: Uuid,
        date: NaiveDate,
        at: DateTime<Utc>,
    },
    #[serde(rename = "missions_v2_progress", rename_all = "camelCase")]
    Progress {
        user_id: Uuid,
        season_id: String,
        slot: SlotKey,
        run_id: Uuid,
        current: i32,
        at: DateTime<Utc>,
    },
    #[serde(rename = "missions_v2_boss_damage", rename_all = "camelCase")]
    BossDamage {
        user_id: Uuid,
        season_id: String,
        task_id: Uuid,
        shield_after: i16,
        at: DateTime<Utc>,
    },
    #[serde(rename = "missions_v2_boss_proof", rename_all = "camelCase")]
    BossProof {
        user_id: Uuid,
        season_id: String,
        proof: String,
        at: DateTime<Utc>,
    },
}

impl LegacyEvent {
    pub fn key(&self) -> BoardKey {
        let (Self::Heartbeat {
            user_id, season_id, ..
        }
        | Self::Progress {
            user_id, season_id, ..
        }
        | Self::BossDamage {
            user_id, season_id, ..
        }
        | Self::BossProof {
            user_id, season_id, ..
        }) = self;
        BoardKey {
            user_id: *user_id,
            season_id: season_id.clone(),
        }
    }
}

/// What replaying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// The board changed.
    Applied,
    /// The board already reflected the event; nothing changed.
    AlreadyApplied,
    /// The event cannot be applied; the board is unchanged.
    Rejected(String),
}

/// Replays one legacy event on `board` through the rules, at the event's time. On anything but
/// [`EventOutcome::Applied`] the board is left as it was.
pub fn apply_event(
    board: &mut Board,
    event: &LegacyEvent,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
) -> EventOutcome {
    let mut changed = board.clone();
    let outcome = replay(&mut changed, event, catalog, settings, ids);
    if outcome == EventOutcome::Applied {
        *board = changed;
    }
    outcome
}

fn replay(
    board: &mut Board,
    event: &LegacyEvent,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
) -> EventOutcome {
    use EventOutcome::{AlreadyApplied, Applied, Rejected};
    let refused = |refusal: crate::domain::Refusal| Rejected(refusal.to_string());
    match event {
        LegacyEvent::Heartbeat {
            slot,
            run_id,
            date,
            at,
            ..
        } => {
            let run = match run_of_slot(board, *run_id, *slot) {
                Ok(run) => run,
                Err(reason) => return Rejected(reason),
            };
            if run.heartbeat_on(*date).is_some() {
                return AlreadyApplied;
            }
            if let Some(closed) = run.days.iter().find(|day| day.date == *date) {
                return Rejected(format!(
                    "local day {date} of run {run_id} was closed as {:?} without this heartbeat; \
                     a replay does not rewrite a closed day",
                    closed.outcome
                ));
            }
            match rules::heartbeat(board, *run_id, catalog, settings, ids, *at) {
                Err(refusal) => refused(refusal),
                Ok(outcome) if outcome.heartbeat.date != *date => Rejected(format!(
                    "{at} is local date {} in {}, not the event's {date}",
                    outcome.heartbeat.date, board.time_zone
                )),
                Ok(outcome) if outcome.replayed => AlreadyApplied,
                Ok(_) => Applied,
            }
        }
        LegacyEvent::Progress {
            slot,
            run_id,
            current,
            at,
            ..
        } => {
            let run = match run_of_slot(board, *run_id, *slot) {
                Ok(run) => run,
                Err(reason) => return Rejected(reason),
            };
            if run.progress.current >= *current {
                return AlreadyApplied;
            }
            match rules::record_progress(board, *run_id, *current, catalog, settings, ids, *at) {
                Err(refusal) => refused(refusal),
                Ok(_) => Applied,
            }
        }
        LegacyEvent::BossDamage {
            task_id,
            shield_after,
            at,
            ..
        } => {
            let Some(boss) = &board.boss else {
                return Rejected("the board has no boss run".to_owned());
            };
            if boss.phase != 1 || boss.shield_current <= *shield_after {
                return AlreadyApplied;
            }
            let damage = i32::from(boss.shield_current) - i32::from(*shield_after);
            match rules::damage_boss(board, *task_id, damage, catalog, settings, ids, *at) {
                Err(refusal) => refused(refusal),
                Ok(()) => Applied,
            }
        }
        LegacyEvent::BossProof { proof, at, .. } => {
            let Some(boss) = &board.boss else {
                return Rejected("the board has no boss run".to_owned());
            };
            if boss.phase2_submitted_at.is_some() {
                return AlreadyApplied;
            }
            match rules::submit_boss_proof(board, proof, catalog, settings, ids, *at) {
                Err(refusal) => refused(refusal),
                Ok(()) => Applied,
            }
        }
    }
}

fn run_of_slot(board: &Board, run_id: Uuid, slot: SlotKey) -> Result<&Run, String> {
    match board.run(run_id) {
        None => Err(format!("the board has no run {run_id}")),
        Some(run) if run.slot_key != slot => Err(format!(
            "run {run_id} is a {} run, not {}",
            run.slot_key.as_str(),
            slot.as_str()
        )),
        Some(run) => Ok(run),
    }
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
    let log = file::run_blocking(log_path, move || std::fs::read_to_string(&path))
        .await?
        .map_err(|error| {
            error::file_store_unavailable(log_path, format!("cannot read: {error}"))
        })?;
    let mut report = RebuildReport::default();
    for (index, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        report.read += 1;
        let location = format!("line {}", index + 1);
        let event: LegacyEvent = match serde_json::from_str(line) {
            Ok(event) => event,
            Err(error) => {
                let user_id = serde_json::from_str::<Value>(line)
                    .ok()
                    .as_ref()
                    .and_then(value_user_id);
                report.quarantined.push(Quarantined {
                    location,
                    user_id,
                    reason: format!("not a missions event: {error}"),
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
            .await?;
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
