//! The legacy missions service's data as the rules read it, with no I/O: the checks a board of
//! the JSON store must pass before SQL takes it ([`check_board`], [`validate`]) and the past
//! events of its log replayed through the rules ([`apply_event`]).
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

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use phoenix_runtime::FieldViolation;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::board::{Board, BoardKey, Run, SlotKey};
use super::catalog::Catalog;
use super::rules::{self, Ids, RuleSettings};
use super::storable;

/// The user a raw board names, when its `userId` is a UUID.
pub fn value_user_id(value: &Value) -> Option<Uuid> {
    value
        .get("userId")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// A board of a store file, parsed and validated; the error names each field at fault and the
/// rule it breaks (`slots[0].petalsTotal: must be at least 1, got 0 (OUT_OF_RANGE)`).
pub fn check_board(value: Value) -> Result<Board, String> {
    let board = serde_path_to_error::deserialize::<_, Board>(value)
        .map_err(|error| storable::describe("", &[not_a_board(error.path(), error.inner())]))?;
    validate(&board)?;
    Ok(board)
}

/// A board's JSON text, as a store file holds it, parsed and checked (`storable`): the error
/// is every rule it breaks, with the field's path. A text that is not JSON (a lone UTF-16
/// surrogate such as `\ud83d`, which no Rust or PostgreSQL string holds) is this board's
/// error too, naming the field where it is.
pub fn check_board_text(json: &str) -> Result<Board, Vec<FieldViolation>> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let board = serde_path_to_error::deserialize::<_, Board>(&mut deserializer)
        .map_err(|error| vec![not_a_board(error.path(), error.inner())])?;
    let mut violations = Vec::new();
    if let (Ok(raw), Ok(kept)) = (
        serde_json::from_str::<Value>(json),
        serde_json::to_value(&board),
    ) {
        dropped_fields(&raw, &kept, "", &mut violations);
    }
    violations.extend(storable::violations(&board));
    if violations.is_empty() {
        Ok(board)
    } else {
        Err(violations)
    }
}

/// Fields of `raw` (a board as a store wrote it) that `kept` (the board read from it, written
/// back) lacks: fields the format does not define below the board and its slots, where
/// [`Board::legacy_fields`] would keep them. Such a board is refused, not read with a field
/// silently gone. A `null` the format leaves out loses nothing and is not counted.
fn dropped_fields(raw: &Value, kept: &Value, path: &str, out: &mut Vec<FieldViolation>) {
    match (raw, kept) {
        (Value::Object(raw), Value::Object(kept)) => {
            for (key, value) in raw {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(key) {
                    Some(kept) => dropped_fields(value, kept, &at, out),
                    None if value.is_null() => {}
                    None => out.push(FieldViolation::new(
                        at,
                        "UNKNOWN_FIELD",
                        "is not a field of the format here (fields it does not define are \
                         kept on a board and its slots only); the board is refused rather than \
                         imported without it",
                    )),
                }
            }
        }
        (Value::Array(raw), Value::Array(kept)) => {
            for (index, (raw, kept)) in raw.iter().zip(kept).enumerate() {
                dropped_fields(raw, kept, &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

/// The user a board's JSON text names: its `userId` when that is a UUID, read without
/// decoding the rest (which may be what is wrong with it).
pub fn text_user_id(json: &str) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct UserOnly {
        #[serde(rename = "userId")]
        user_id: Option<Value>,
    }
    let user: UserOnly = serde_json::from_str(json).ok()?;
    user.user_id
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// What the parser said, at the path where it stopped.
fn not_a_board(path: &serde_path_to_error::Path, error: &serde_json::Error) -> FieldViolation {
    let path = path.to_string();
    let path = if path == "." { "" } else { path.as_str() };
    let message = bounded(&error.to_string());
    if error.is_syntax() && message.contains("escape") {
        // Not text at all (a lone surrogate): the same words as the Firebase import's.
        let reason = phoenix_runtime::error::json_error_reason(error);
        return FieldViolation::new(path, "INVALID_TEXT", reason);
    }
    FieldViolation::new(
        path,
        "INVALID_FIELD",
        format!("not a valid board: {message}"),
    )
}

/// Characters of a parser's message kept in a reason: serde echoes a bad value whole.
const MAX_MESSAGE_CHARS: usize = 160;

/// `message` cut to 160 characters, with its full length when it was longer.
pub fn bounded(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message.to_owned(),
        Some((cut, _)) => format!(
            "{}… ({} characters)",
            &message[..cut],
            message.chars().count()
        ),
    }
}

/// The invariants a board must hold before SQL takes it (`storable`): the error lists every
/// broken one, with its field and rule.
///
/// The time zone and the three slots in board order are checked by parsing: a [`Board`] only
/// holds known IANA zones and exactly main, hunt and skill.
pub fn validate(board: &Board) -> Result<(), String> {
    let violations = storable::violations(board);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(storable::describe("", &violations))
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
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        let (Self::Heartbeat { at, .. }
        | Self::Progress { at, .. }
        | Self::BossDamage { at, .. }
        | Self::BossProof { at, .. }) = self;
        *at
    }

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
    let at = event.at();
    if !(1..=9999).contains(&at.year()) {
        return EventOutcome::Rejected(format!(
            "{at} is outside the years 1 to 9999 that every time of a board lies in"
        ));
    }
    let mut changed = board.clone();
    let outcome = replay(&mut changed, event, catalog, settings, ids);
    if outcome != EventOutcome::Applied {
        return outcome;
    }
    // What the event brought (a proof) must fit the tables like every board SQL takes.
    if let Err(problems) = validate(&changed) {
        return EventOutcome::Rejected(format!("the board would break its rules: {problems}"));
    }
    *board = changed;
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
    let refused = |refusal: super::Refusal| Rejected(refusal.to_string());
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
