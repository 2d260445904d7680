//! Every change a board can go through. Each function takes the time `now` (never reads a
//! clock) and the board's time zone decides what "a day" is for its user.
//!
//! Conventions:
//! - A rule either changes the board and returns what happened, or returns a [`Refusal`] and
//!   leaves the board exactly as it was (callers rely on this: nothing half-written).
//! - Mutating rules first call [`tick`], so time-driven transitions (cooldown over, reroll
//!   budget back, run expired, days to close) are applied before the request is judged.
//! - Ids of new records come from `Ids`, so tests and the NDJSON rebuild can make them stable.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::Refusal;
use super::board::{Board, BoardKey, Claim, DayOutcome, EffectInstance, Heartbeat, SlotKey};
use super::catalog::{Catalog, EffectDefinition};

/// Where new record ids come from.
pub trait Ids {
    fn next_id(&mut self) -> Uuid;
}

/// Random (v7, time-ordered) ids, for production.
#[derive(Debug, Default)]
pub struct RandomIds;

impl Ids for RandomIds {
    fn next_id(&mut self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Tunables of the rules; defaults are the legacy service's.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    pub petals_per_run: i16,
    /// Rerolls per slot per local week (budget resets Monday 00:00 local).
    pub rerolls_per_week: i16,
    /// How long a slot cools down after a claim or a failure.
    pub cooldown: chrono::Duration,
    /// GetBoard shows this many most recent communications.
    pub recent_communications: usize,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            petals_per_run: 3,
            rerolls_per_week: 1,
            cooldown: chrono::Duration::hours(24),
            recent_communications: 10,
        }
    }
}

/// The local date of `at` in `tz`.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    todo!("rules: {tz} {at}")
}

/// The instant local `date` starts in `tz` (the first existing local instant when midnight is
/// skipped by a DST change).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    todo!("rules: {tz} {date}")
}

/// When the board's current local day ends, i.e. when the next day close is due.
pub fn next_day_close_at(board: &Board, now: DateTime<Utc>) -> DateTime<Utc> {
    todo!("rules: {} {now}", board.board_id)
}

/// A new board: three idle slots each offering a mission of the catalog, full petals, full
/// reroll budget, and a boss run in phase 1 when the catalog has a boss.
pub fn new_board(
    key: &BoardKey,
    time_zone: Tz,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<Board, Refusal> {
    todo!(
        "rules: {key:?} {time_zone} {} {settings:?} {now} {}",
        catalog.missions.len(),
        ids.next_id()
    )
}

/// What a day close did to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedDay {
    pub run_id: Uuid,
    pub date: NaiveDate,
    pub outcome: DayOutcome,
    /// The run failed on this day (0 petals, or its duration passed).
    pub run_failed: bool,
}

/// Time-driven transitions up to `now`: closes every local day of every active run that has
/// ended (each date at most once per run, in date order, starting at the run's first local
/// date; a missed day consumes an active protecting effect or costs a petal; 0 petals fails
/// the run), fails runs past their duration, moves claimed/failed slots to cooldown and
/// cooled-down slots back to idle with a new offer, restores reroll budgets whose reset time
/// has passed, and writes communications (petal lost, protected day, run failed, weekly
/// summary). Idempotent: a second call with the same `now` changes nothing.
pub fn tick(
    board: &mut Board,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Vec<ClosedDay> {
    todo!(
        "rules: {} {} {settings:?} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

/// Changes the user's time zone. Days already closed stay closed: a date is never closed twice,
/// whichever way the zone moves.
pub fn set_time_zone(board: &mut Board, time_zone: Tz, now: DateTime<Utc>) {
    todo!("rules: {} {time_zone} {now}", board.board_id)
}

/// Starts a run of the slot's offered mission: idle → active, petals reset to full.
pub fn activate(
    board: &mut Board,
    slot: SlotKey,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<Uuid, Refusal> {
    todo!(
        "rules: {} {slot:?} {} {settings:?} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub heartbeat: Heartbeat,
    /// The run already had this local day's heartbeat; nothing changed.
    pub replayed: bool,
}

/// Today's heartbeat for an active run: at most one per run per local day; a second one the
/// same day is a replay answered with the first.
pub fn heartbeat(
    board: &mut Board,
    run_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<HeartbeatOutcome, Refusal> {
    todo!(
        "rules: {} {run_id} {} {settings:?} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

/// Sets an active run's progress to `current` (in the mission's unit). Progress never goes
/// back (INVALID_ARGUMENT); the same value again is a no-op; reaching the target succeeds the
/// run (slot → succeeded). Returns whether the run succeeded with this call.
pub fn record_progress(
    board: &mut Board,
    run_id: Uuid,
    current: i32,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    todo!(
        "rules: {} {run_id} {current} {} {settings:?} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

/// Replaces an idle slot's offered mission with the next one of the catalog; uses one reroll
/// of the slot's weekly budget (none left: FAILED_PRECONDITION with the reset time).
pub fn reroll(
    board: &mut Board,
    slot: SlotKey,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<Uuid, Refusal> {
    todo!(
        "rules: {} {slot:?} {} {settings:?} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    pub claim: Claim,
    /// The run was claimed before; this is the original claim and nothing was granted again.
    pub replayed: bool,
}

/// Claims a succeeded run's reward exactly once: run → claimed, slot → claimed (cooldown
/// starts), an aura reward is granted as an effect. A claimed run answers with its claim.
pub fn claim(
    board: &mut Board,
    run_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<ClaimOutcome, Refusal> {
    todo!(
        "rules: {} {run_id} {} {settings:?} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

/// Links the boss run to a goal task; progress on that task takes the shield down.
pub fn link_boss_task(board: &mut Board, task_id: Uuid, now: DateTime<Utc>) -> Result<(), Refusal> {
    todo!("rules: {} {task_id} {now}", board.board_id)
}

/// Progress on a task: `amount` off the shield when it is the boss's linked task and the boss is
/// in phase 1; at 0 the boss enters phase 2 (a system communication says so).
pub fn damage_boss(
    board: &mut Board,
    task_id: Uuid,
    amount: i32,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    todo!(
        "rules: {} {task_id} {amount} {now} {}",
        board.board_id,
        ids.next_id()
    )
}

/// Phase 2's proof completes the boss (phase 1: FAILED_PRECONDITION).
pub fn submit_boss_proof(
    board: &mut Board,
    proof: &str,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    todo!("rules: {} {proof} {now} {}", board.board_id, ids.next_id())
}

/// Claims the completed boss's reward exactly once (a second claim answers with the first).
pub fn claim_boss(
    board: &mut Board,
    catalog: &Catalog,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<ClaimOutcome, Refusal> {
    todo!(
        "rules: {} {} {now} {}",
        board.board_id,
        catalog.missions.len(),
        ids.next_id()
    )
}

/// Grants an effect of the catalog, active from `now` for its duration.
pub fn grant_effect(
    board: &mut Board,
    effect: &EffectDefinition,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> EffectInstance {
    todo!(
        "rules: {} {} {now} {}",
        board.board_id,
        effect.name,
        ids.next_id()
    )
}

/// When the board next needs a day close: the end of the current local day of its latest
/// change (`updated_at`) when it has an active run; None when nothing runs (idle boards need no
/// closing). The SQL store indexes it so the batch day close finds due boards without scanning.
pub fn next_due(board: &Board) -> Option<DateTime<Utc>> {
    todo!("rules: {}", board.board_id)
}
