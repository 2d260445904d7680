//! What a board must hold before SQL takes it: every rule the board tables enforce (their
//! CHECKs and UNIQUE keys, see `migrations/missions/`) and the id rules the API applies, checked
//! here, in Rust, so an importer quarantines a board naming the field and the rule it breaks
//! instead of meeting the constraint in the middle of a write.
//!
//! Each broken rule is one [`FieldViolation`]: the field's path in the store format (camelCase,
//! `slots[0].petalsTotal`), a stable reason (`OUT_OF_RANGE`, `INVALID_SEASON`, …) and what is
//! wrong, quoting at most a short prefix of the value ([`quote`]).
//!
//! Instants are kept to the microsecond (the database's precision): an instant with a finer
//! fraction is refused (`INSTANT_PRECISION`), never rounded, so what is imported is what the
//! legacy store said.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;

use phoenix_runtime::{FieldViolation, quote};
use uuid::Uuid;

use super::board::{self, Board, DayOutcome, RunStatus, SlotState};

/// Every rule `board` breaks, with where (empty: SQL takes it).
pub fn violations(board: &Board) -> Vec<FieldViolation> {
    let mut found = Found::default();
    if let Some((reason, message)) = board::season_id_violation(&board.season_id) {
        found.add(
            "seasonId",
            reason,
            format!("{message}, got {}", quote(&board.season_id)),
        );
    }
    match serde_json::to_value(board) {
        Ok(json) => {
            if let Some(at) = phoenix_runtime::error::json_nul(&json) {
                found.add(
                    at.path,
                    "NUL_CHARACTER",
                    "holds a NUL (\\u0000), which the database's text and jsonb cannot",
                );
            }
        }
        Err(error) => found.add(
            "",
            "NOT_SERIALIZABLE",
            format!("does not serialize: {error}"),
        ),
    }
    slots(board, &mut found);
    runs(board, &mut found);
    boss(board, &mut found);
    claims(board, &mut found);
    ids(board, &mut found);
    instants(board, &mut found);
    found.0
}

/// `violations` as one line: `field: description (REASON)` for each, `prefix` before each path.
pub fn describe(prefix: &str, violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| {
            let dot = if prefix.is_empty() || v.field.is_empty() || v.field.starts_with('[') {
                ""
            } else {
                "."
            };
            format!("{prefix}{dot}{}: {} ({})", v.field, v.description, v.reason)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Default)]
struct Found(Vec<FieldViolation>);

impl Found {
    fn add(&mut self, field: impl Into<String>, reason: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, reason, description));
    }

    /// `value` must be at least `min` (the column's CHECK).
    fn at_least<T: PartialOrd + Display>(&mut self, field: String, value: T, min: T) {
        if value < min {
            self.add(
                field,
                "OUT_OF_RANGE",
                format!("must be at least {min}, got {value}"),
            );
        }
    }
}

fn slots(board: &Board, found: &mut Found) {
    for (index, slot) in board.slots.iter().enumerate() {
        let at = |field: &str| format!("slots[{index}].{field}");
        if slot.petals_total < 1 {
            found.at_least(at("petalsTotal"), slot.petals_total, 1);
        } else if !(0..=slot.petals_total).contains(&slot.petals_remaining) {
            found.add(
                at("petalsRemaining"),
                "OUT_OF_RANGE",
                format!(
                    "{} is outside 0..={}",
                    slot.petals_remaining, slot.petals_total
                ),
            );
        }
        found.at_least(at("rerollRemaining"), slot.reroll_remaining, 0);
        found.at_least(at("offers"), slot.offers, 0);
        match (slot.state, slot.run_id) {
            (SlotState::Idle, Some(run_id)) => {
                found.add(at("runId"), "SLOT_RUN", format!("idle but on run {run_id}"));
            }
            (SlotState::Idle, None) => {}
            (state, None) => found.add(at("runId"), "SLOT_RUN", format!("{state:?} without a run")),
            (_, Some(run_id)) => match board.run(run_id) {
                None => found.add(
                    at("runId"),
                    "SLOT_RUN",
                    format!("run {run_id} is not among the runs"),
                ),
                Some(run) if run.slot_key != slot.slot_key => found.add(
                    at("runId"),
                    "SLOT_RUN",
                    format!("run {run_id} belongs to slot {}", run.slot_key.as_str()),
                ),
                Some(_) => {}
            },
        }
    }
}

fn runs(board: &Board, found: &mut Found) {
    let mut active_on = HashMap::new();
    let effects: BTreeSet<Uuid> = board.effects.iter().map(|e| e.effect_instance_id).collect();
    for (index, run) in board.runs.iter().enumerate() {
        let at = |field: &str| format!("runs[{index}].{field}");
        if run.status == RunStatus::Active {
            if let Some(first) = active_on.insert(run.slot_key, index) {
                found.add(
                    at("status"),
                    "TWO_ACTIVE_RUNS",
                    format!(
                        "slot {} already has the active run runs[{first}]; a slot runs one \
                         mission at a time",
                        run.slot_key.as_str()
                    ),
                );
            }
            if board.slot(run.slot_key).state == SlotState::Cooldown {
                found.add(
                    at("status"),
                    "ACTIVE_RUN_IN_COOLDOWN",
                    format!(
                        "run {} is active on slot {}, which is in cooldown",
                        run.run_id,
                        run.slot_key.as_str()
                    ),
                );
            }
        }
        found.at_least(at("progress.current"), run.progress.current, 0);
        found.at_least(at("progress.target"), run.progress.target, 1);
        if let Some(reward) = &run.reward {
            found.at_least(at("reward.xp"), reward.xp, 0);
            found.at_least(at("reward.currency"), reward.currency, 0);
        }
        let mut dates = BTreeSet::new();
        for (h, heartbeat) in run.heartbeats.iter().enumerate() {
            let at = |field: &str| format!("runs[{index}].heartbeats[{h}].{field}");
            found.at_least(at("petalsBefore"), heartbeat.petals_before, 0);
            found.at_least(at("petalsAfter"), heartbeat.petals_after, 0);
            if !dates.insert(heartbeat.date) {
                found.add(
                    at("date"),
                    "HEARTBEAT_TWICE",
                    format!("more than one heartbeat on {}", heartbeat.date),
                );
            }
        }
        let mut dates = BTreeSet::new();
        for (d, day) in run.days.iter().enumerate() {
            let at = |field: &str| format!("runs[{index}].days[{d}].{field}");
            found.at_least(at("petalsAfter"), day.petals_after, 0);
            if !dates.insert(day.date) {
                found.add(
                    at("date"),
                    "DAY_CLOSED_TWICE",
                    format!("day {} closed more than once", day.date),
                );
            } else if d > 0 && run.days[d - 1].date > day.date {
                // Days are closed in date order; a list out of order is a store written by hand.
                found.add(
                    at("date"),
                    "DAYS_OUT_OF_ORDER",
                    "closed days are not in date order",
                );
            }
            let protected = day.outcome == DayOutcome::Protected;
            match day.effect_instance_id {
                None if protected => found.add(
                    at("effectInstanceId"),
                    "PROTECTED_DAY_EFFECT",
                    "a protected day names the effect that protected it",
                ),
                Some(_) if !protected => found.add(
                    at("effectInstanceId"),
                    "PROTECTED_DAY_EFFECT",
                    "only a protected day names an effect",
                ),
                Some(effect) if !effects.contains(&effect) => found.add(
                    at("effectInstanceId"),
                    "PROTECTED_DAY_EFFECT",
                    format!("effect {effect} is not among the board's effects"),
                ),
                _ => {}
            }
        }
    }
}

fn boss(board: &Board, found: &mut Found) {
    let Some(boss) = &board.boss else { return };
    if !(1..=2).contains(&boss.phase) {
        found.add(
            "boss.phase",
            "OUT_OF_RANGE",
            format!("must be 1 or 2, got {}", boss.phase),
        );
    }
    if boss.shield_max < 1 {
        found.at_least("boss.shieldMax".to_owned(), boss.shield_max, 1);
    } else if !(0..=boss.shield_max).contains(&boss.shield_current) {
        found.add(
            "boss.shieldCurrent",
            "OUT_OF_RANGE",
            format!(
                "must be between 0 and shieldMax {}, got {}",
                boss.shield_max, boss.shield_current
            ),
        );
    }
}

fn claims(board: &Board, found: &mut Found) {
    let mut runs = BTreeSet::new();
    for (index, claim) in board.claims.iter().enumerate() {
        let at = |field: &str| format!("claims[{index}].{field}");
        found.at_least(at("reward.xp"), claim.reward.xp, 0);
        found.at_least(at("reward.currency"), claim.reward.currency, 0);
        if !runs.insert(claim.run_id) {
            found.add(
                at("runId"),
                "CLAIMED_TWICE",
                format!("run {} is claimed more than once", claim.run_id),
            );
        }
    }
}

/// What an id names: a row of one table, which belongs to one board only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKind {
    Board,
    Slot,
    Run,
    Heartbeat,
    BossRun,
    Effect,
    Claim,
    Communication,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Board => "board",
            Self::Slot => "slot",
            Self::Run => "run",
            Self::Heartbeat => "heartbeat",
            Self::BossRun => "boss_run",
            Self::Effect => "effect",
            Self::Claim => "claim",
            Self::Communication => "communication",
        }
    }
}

/// One id a board owns, with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedId {
    pub kind: IdKind,
    pub id: Uuid,
    pub path: String,
}

/// Every id of a row the board owns (its board, slots, runs, heartbeats, boss run, effects,
/// claims and communications): no other board may hold one of them.
pub fn owned_ids(board: &Board) -> Vec<OwnedId> {
    let mut ids = Vec::new();
    let mut own = |kind, id, path: String| ids.push(OwnedId { kind, id, path });
    own(IdKind::Board, board.board_id, "boardId".to_owned());
    for (i, slot) in board.slots.iter().enumerate() {
        own(IdKind::Slot, slot.slot_id, format!("slots[{i}].slotId"));
    }
    for (i, run) in board.runs.iter().enumerate() {
        own(IdKind::Run, run.run_id, format!("runs[{i}].runId"));
        for (h, heartbeat) in run.heartbeats.iter().enumerate() {
            own(
                IdKind::Heartbeat,
                heartbeat.heartbeat_id,
                format!("runs[{i}].heartbeats[{h}].heartbeatId"),
            );
        }
    }
    if let Some(boss) = &board.boss {
        own(
            IdKind::BossRun,
            boss.boss_run_id,
            "boss.bossRunId".to_owned(),
        );
    }
    for (i, effect) in board.effects.iter().enumerate() {
        own(
            IdKind::Effect,
            effect.effect_instance_id,
            format!("effects[{i}].effectInstanceId"),
        );
    }
    for (i, claim) in board.claims.iter().enumerate() {
        own(
            IdKind::Claim,
            claim.claim_id,
            format!("claims[{i}].claimId"),
        );
    }
    for (i, communication) in board.communications.iter().enumerate() {
        own(
            IdKind::Communication,
            communication.communication_id,
            format!("communications[{i}].communicationId"),
        );
    }
    ids
}

/// An id used twice by one board (two slots, two runs… with one id): the table keeps one row.
fn ids(board: &Board, found: &mut Found) {
    let mut seen: HashMap<(IdKind, Uuid), String> = HashMap::new();
    for owned in owned_ids(board) {
        if let Some(first) = seen.insert((owned.kind, owned.id), owned.path.clone()) {
            found.add(
                owned.path,
                "ID_REPEATED",
                format!("{} id {} is also {first}", owned.kind.as_str(), owned.id),
            );
        }
    }
}

/// Instants finer than the database's microsecond (`Board::each_instant_mut` lists them all).
fn instants(board: &Board, found: &mut Found) {
    board.clone().each_instant_mut(&mut |path, at| {
        if !at.timestamp_subsec_nanos().is_multiple_of(1_000) {
            found.add(
                path(),
                "INSTANT_PRECISION",
                format!(
                    "{} has a fraction finer than the microsecond the database keeps; \
                     it is refused rather than rounded",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                ),
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::board::Store;

    fn sample_board() -> Board {
        let store: Store =
            serde_json::from_str(include_str!("../../testdata/missions_v2_store.json"))
                .expect("the sample store");
        store.boards[0].clone()
    }

    #[test]
    fn a_sample_board_breaks_no_rule() {
        assert_eq!(violations(&sample_board()), []);
    }

    #[test]
    fn an_instant_finer_than_a_microsecond_is_refused_not_rounded_into_the_next_year() {
        let mut board = sample_board();
        board.generated_at = "1999-12-31T23:59:59.9999999Z".parse().expect("an instant");
        let found = violations(&board);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "generatedAt");
        assert_eq!(found[0].reason, "INSTANT_PRECISION");
        assert!(
            found[0]
                .description
                .contains("1999-12-31T23:59:59.999999900Z"),
            "{}",
            found[0].description
        );
    }

    #[test]
    fn every_broken_rule_is_named_with_its_path() {
        let mut board = sample_board();
        board.slots[1].offers = -1;
        board.runs[0].progress.target = 0;
        board.slots[2].slot_id = board.slots[0].slot_id;
        let found: Vec<(String, String)> = violations(&board)
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect();
        assert_eq!(
            found,
            [
                ("slots[1].offers".to_owned(), "OUT_OF_RANGE".to_owned()),
                (
                    "runs[0].progress.target".to_owned(),
                    "OUT_OF_RANGE".to_owned()
                ),
                ("slots[2].slotId".to_owned(), "ID_REPEATED".to_owned()),
            ]
        );
        assert_eq!(
            describe("boards[7]", &violations(&board)[..1]),
            "boards[7].slots[1].offers: must be at least 0, got -1 (OUT_OF_RANGE)"
        );
    }
}
