//! Every change a board can go through. Each function takes the time `now` (never reads a
//! clock) and the board's time zone decides what "a day" is for its user.
//!
//! Conventions:
//! - A rule either changes the board and returns what happened, or returns a [`Refusal`] and
//!   leaves the board exactly as it was (callers rely on this: nothing half-written).
//! - Mutating rules first call [`tick`], so time-driven transitions (cooldown over, reroll
//!   budget back, run expired, days to close) are applied before the request is judged.
//! - Ids of new records come from `Ids`, so tests and the NDJSON rebuild can make them stable.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use uuid::Uuid;

use super::Refusal;
use super::board::{
    Board, BoardKey, BossRun, Claim, DayOutcome, EffectInstance, Heartbeat, Run, RunStatus, Slot,
    SlotKey, SlotState,
};
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
    at.with_timezone(&tz).date_naive()
}

/// The instant local `date` starts in `tz` (the first existing local instant when midnight is
/// skipped by a DST change).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(start) => start.with_timezone(&Utc),
        // Clocks went back across midnight: the day starts at the first of the two midnights.
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => end_of_gap(tz, midnight),
    }
}

/// The first instant whose local time in `tz` is at or past `local`, for a `local` that falls in
/// a gap (e.g. America/Santiago and Asia/Beirut move their clocks forward at midnight, and
/// Pacific/Apia skipped 2011-12-30 altogether): that is the transition instant, which chrono
/// does not expose, so it is found by bisection over whole seconds (transitions are on whole
/// seconds). Local time grows with the instant around a forward jump, and offsets stay within a
/// day, so the transition lies within a day either side of `local` read as UTC.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const DAY_SECONDS: i64 = 24 * 60 * 60;
    let instant = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).expect("instants near a calendar date are in range")
    };
    let reached = |seconds: i64| instant(seconds).with_timezone(&tz).naive_local() >= local;
    let mut before = local.and_utc().timestamp() - DAY_SECONDS;
    let mut reached_at = local.and_utc().timestamp() + DAY_SECONDS;
    while reached_at - before > 1 {
        let middle = before + (reached_at - before) / 2;
        if reached(middle) {
            reached_at = middle;
        } else {
            before = middle;
        }
    }
    instant(reached_at)
}

/// The day after `date`.
fn next_date(date: NaiveDate) -> NaiveDate {
    date.succ_opt()
        .expect("board dates are nowhere near the end of the calendar")
}

/// The instant local `date` ends in `tz`, i.e. the next day's start (23 or 25 hours after the
/// start on DST days).
fn end_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    start_of_day(tz, next_date(date))
}

/// The Monday of `date`'s week (weeks run Monday to Sunday).
fn week_start(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

/// When the local week of `now` ends in `tz`: next Monday 00:00 local.
fn next_week_start(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    start_of_day(tz, week_start(local_date(tz, now)) + Days::new(7))
}

/// When the board's current local day ends, i.e. when the next day close is due.
pub fn next_day_close_at(board: &Board, now: DateTime<Utc>) -> DateTime<Utc> {
    end_of_day(board.time_zone, local_date(board.time_zone, now))
}

/// The first local date of `run` that is not closed yet: the day after the last closed one, or
/// the run's first day. Dates only move forward, which is what keeps a date from being closed
/// twice when the time zone or the offset changes.
fn first_open_date(tz: Tz, run: &Run) -> NaiveDate {
    let first_day = local_date(tz, run.selected_at);
    match run.last_closed_date() {
        Some(closed) => first_day.max(next_date(closed)),
        None => first_day,
    }
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
    let mut offers = Vec::with_capacity(SlotKey::ALL.len());
    for slot_key in SlotKey::ALL {
        let mission = catalog
            .offerable(slot_key)
            .next()
            .ok_or_else(|| no_mission_for_slot(slot_key))?;
        offers.push((slot_key, mission.mission_id));
    }
    let board_id = ids.next_id();
    let reroll_reset_at = next_week_start(time_zone, now);
    let slots = offers
        .into_iter()
        .map(|(slot_key, mission_id)| Slot {
            slot_id: ids.next_id(),
            slot_key,
            state: SlotState::Idle,
            mission_id,
            run_id: None,
            petals_total: settings.petals_per_run,
            petals_remaining: settings.petals_per_run,
            cooldown_until: None,
            reroll_remaining: settings.rerolls_per_week,
            reroll_used_at: None,
            reroll_reset_at: Some(reroll_reset_at),
            offers: 0,
        })
        .collect();
    let boss = catalog
        .bosses
        .iter()
        .min_by(|a, b| a.code.cmp(&b.code))
        .map(|boss| BossRun {
            boss_run_id: ids.next_id(),
            boss_id: boss.boss_id,
            phase: 1,
            shield_current: boss.shield_max,
            shield_max: boss.shield_max,
            linked_task_id: None,
            linked_at: None,
            phase2_ready: false,
            phase2_proof: None,
            phase2_submitted_at: None,
            completed_at: None,
            claim_id: None,
        });
    Ok(Board {
        board_id,
        user_id: key.user_id,
        season_id: key.season_id.clone(),
        time_zone,
        generated_at: now,
        updated_at: now,
        slots,
        runs: Vec::new(),
        boss,
        effects: Vec::new(),
        claims: Vec::new(),
        communications: Vec::new(),
        // The week the board is born in has nothing to summarize.
        last_weekly_summary: Some(week_start(local_date(time_zone, now))),
    })
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

/// When the board next needs a tick for its runs: the end of the first local day not yet
/// closed of any active run (or the run's expiry, if sooner); None when nothing runs (idle boards
/// need no closing). The SQL store indexes it so the batch day close finds due boards without
/// scanning. After a tick at `now` it is always later than `now`, so a board is never due again
/// for a day already closed (e.g. after a time-zone change west).
pub fn next_due(board: &Board) -> Option<DateTime<Utc>> {
    let tz = board.time_zone;
    board
        .runs
        .iter()
        .filter(|run| run.status == RunStatus::Active)
        .map(|run| end_of_day(tz, first_open_date(tz, run)).min(run.expires_at))
        .min()
}

fn no_mission_for_slot(slot: SlotKey) -> Refusal {
    Refusal::precondition(
        "NO_MISSION_FOR_SLOT",
        format!(
            "the catalog has no active mission for the {} slot",
            slot.as_str()
        ),
    )
    .with("slot", slot.as_str())
}
