//! Every change a board can go through. Each function takes the time `now` (never reads a
//! clock) and the board's time zone decides what "a day" is for its user.
//!
//! Conventions:
//! - A rule either changes the board and returns what happened, or returns a [`Refusal`] and
//!   leaves the board exactly as it was (callers rely on this: nothing half-written).
//! - Every mutating rule but [`set_time_zone`] first calls [`tick`], so time-driven transitions
//!   (cooldown over, reroll budget back, run expired, days to close) are applied before the
//!   request is judged, and a board saved after any call is current. [`set_time_zone`] leaves
//!   that to its caller, which ticks first so days that ended in the old zone close by its
//!   clock, and counts what closed.
//! - A rule that changes the board sets `board.updated_at = now` (and a changed run's
//!   `updated_at`); a replay or a no-op leaves both alone.
//! - Ids of new records come from `Ids`, so tests and the NDJSON rebuild can make them stable.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use uuid::Uuid;

use super::board::{
    Board, BoardKey, BossRun, Claim, ClaimSource, Communication, CommunicationKind, DayClose,
    DayOutcome, EffectInstance, Heartbeat, Progress, Reward, Run, RunStatus, Slot, SlotKey,
    SlotState,
};
use super::catalog::{Catalog, EffectDefinition};
use super::{Refusal, RefusalKind};

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
    // Board dates are those of a clock within the years 1 to 9999, far inside chrono's range
    // (±262,000 years); saturating at its ends keeps this total.
    let instant = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).unwrap_or(if seconds < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
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

/// The day after `date`. Board dates are nowhere near the end of chrono's calendar (year
/// 262,143); there it stays put, which ends every loop over dates, since no day ends there.
fn next_date(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
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
/// the run's start date. Closed dates only move forward, whatever the zone or its offset does,
/// which is what keeps a date from being closed twice; the start date is the one of the zone the
/// run started in, so a move west on the first day adds no earlier date.
fn first_open_date(tz: Tz, run: &Run) -> NaiveDate {
    match run.last_closed_date() {
        Some(closed) => next_date(closed),
        None => run
            .start_date
            .unwrap_or_else(|| local_date(tz, run.selected_at)),
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
    let mut offers = [Uuid::nil(); 3];
    for slot_key in SlotKey::ALL {
        let mission = catalog
            .offerable(slot_key)
            .next()
            .ok_or_else(|| no_mission_for_slot(slot_key))?;
        offers[slot_key.index()] = mission.mission_id;
    }
    let board_id = ids.next_id();
    let reroll_reset_at = next_week_start(time_zone, now);
    let slots = SlotKey::ALL.map(|slot_key| Slot {
        slot_id: ids.next_id(),
        slot_key,
        state: SlotState::Idle,
        mission_id: offers[slot_key.index()],
        run_id: None,
        petals_total: settings.petals_per_run,
        petals_remaining: settings.petals_per_run,
        cooldown_until: None,
        reroll_remaining: settings.rerolls_per_week,
        reroll_used_at: None,
        reroll_reset_at: Some(reroll_reset_at),
        offers: 0,
    });
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

/// [`new_board`] again for a key that has a board: with the board's own time zone it is a retry,
/// answered with the board as it is; with another zone it is refused (ALREADY_EXISTS), because
/// creating never changes a board: SetTimeZone does, closing the days that ended in the old
/// zone first.
pub fn replay_new_board(board: &Board, time_zone: Tz) -> Result<(), Refusal> {
    if board.time_zone == time_zone {
        return Ok(());
    }
    Err(Refusal::new(
        RefusalKind::AlreadyExists,
        "BOARD_EXISTS",
        format!(
            "user {} already has a board in season {:?}, in time zone {}; change its time zone \
             with SetTimeZone",
            board.user_id,
            board.season_id,
            board.time_zone.name()
        ),
    )
    .with("user_id", board.user_id)
    .with("season_id", &board.season_id)
    .with("time_zone", board.time_zone.name()))
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
    let mut closed = Vec::new();
    let mut changed = false;
    for index in 0..board.runs.len() {
        if board.runs[index].status == RunStatus::Active {
            changed |= close_run_days(board, index, settings, ids, now, &mut closed);
        }
    }
    for slot_key in SlotKey::ALL {
        changed |= advance_slot(board.slot_mut(slot_key), catalog, settings, now);
    }
    changed |= restore_rerolls(board, settings, now);
    changed |= write_weekly_summary(board, ids, now);
    if changed {
        board.updated_at = now;
    }
    closed
}

/// Closes the ended local days of the active run at `index`, then fails it if its duration
/// has passed. Returns whether anything changed.
fn close_run_days(
    board: &mut Board,
    index: usize,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
    closed: &mut Vec<ClosedDay>,
) -> bool {
    let tz = board.time_zone;
    let expires_at = board.runs[index].expires_at;
    let closed_before = closed.len();
    let mut date = first_open_date(tz, &board.runs[index]);
    loop {
        let end = end_of_day(tz, date);
        // Days ending after the expiry are not the run's: the expiry below ends it instead.
        if end > now || end > expires_at {
            break;
        }
        let day = close_day(board, index, date, end, settings, ids, now);
        let run_failed = day.run_failed;
        closed.push(day);
        if run_failed {
            return true;
        }
        date = next_date(date);
    }
    if expires_at <= now {
        fail_run(
            board,
            index,
            expires_at,
            RunFailure::DurationPassed,
            settings,
            ids,
            now,
        );
        if let Some(last_day) = closed[closed_before..].last_mut() {
            last_day.run_failed = true;
        }
        return true;
    }
    closed.len() > closed_before
}

/// Closes one ended local `date` of the run at `index`: kept with a heartbeat, else protected by
/// an effect active at the day's `end`, else a petal lost (the last one fails the run).
fn close_day(
    board: &mut Board,
    index: usize,
    date: NaiveDate,
    end: DateTime<Utc>,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> ClosedDay {
    let run = &board.runs[index];
    let (run_id, slot_key) = (run.run_id, run.slot_key);
    let kept = run.heartbeat_on(date).is_some();
    let protection = if kept {
        None
    } else {
        protecting_effect(&mut board.effects, end)
    };
    let outcome = match (kept, &protection) {
        (true, _) => DayOutcome::Kept,
        (false, Some(_)) => DayOutcome::Protected,
        (false, None) => DayOutcome::PetalLost,
    };
    let slot = board.slot_mut(slot_key);
    if outcome == DayOutcome::PetalLost {
        slot.petals_remaining = (slot.petals_remaining - 1).max(0);
    }
    let (petals_after, petals_total) = (slot.petals_remaining, slot.petals_total);
    let run = &mut board.runs[index];
    run.days.push(DayClose {
        date,
        outcome,
        effect_instance_id: protection,
        petals_after,
        closed_at: now,
    });
    run.updated_at = now;
    let slot_name = slot_key.as_str();
    match outcome {
        DayOutcome::Kept => {}
        DayOutcome::Protected => communicate(
            board,
            CommunicationKind::Daily,
            format!(
                "No heartbeat on {date} for your {slot_name} mission, but a protecting effect \
                 was used instead of a petal ({petals_after}/{petals_total} petals)."
            ),
            ids,
            now,
        ),
        DayOutcome::PetalLost => communicate(
            board,
            CommunicationKind::Daily,
            format!(
                "No heartbeat on {date} for your {slot_name} mission: one petal lost \
                 ({petals_after}/{petals_total} petals left)."
            ),
            ids,
            now,
        ),
    }
    let run_failed = outcome == DayOutcome::PetalLost && petals_after == 0;
    if run_failed {
        fail_run(board, index, end, RunFailure::NoPetals, settings, ids, now);
    }
    ClosedDay {
        run_id,
        date,
        outcome,
        run_failed,
    }
}

/// Consumes the protecting effect active at `at` that expires first (the one the user would
/// lose soonest), marking it consumed at `at`; its id, or None when nothing protects.
fn protecting_effect(effects: &mut [EffectInstance], at: DateTime<Utc>) -> Option<Uuid> {
    let effect = effects
        .iter_mut()
        .filter(|effect| effect.protects_day && effect.is_active_at(at))
        // None (until consumed) sorts after every instant: keep those for later.
        .min_by_key(|effect| (effect.active_until.is_none(), effect.active_until))?;
    effect.consumed_at = Some(at);
    Some(effect.effect_instance_id)
}

#[derive(Debug, Clone, Copy)]
enum RunFailure {
    NoPetals,
    DurationPassed,
}

/// Fails the run at `index` as of `at` (its last day's end or its expiry): the slot fails and
/// cools down from `at`.
fn fail_run(
    board: &mut Board,
    index: usize,
    at: DateTime<Utc>,
    failure: RunFailure,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) {
    let cooldown_until = at + settings.cooldown;
    let run = &mut board.runs[index];
    run.status = RunStatus::Failed;
    run.failure_at = Some(at);
    run.cooldown_until = Some(cooldown_until);
    run.updated_at = now;
    let (run_id, slot_key) = (run.run_id, run.slot_key);
    let slot = board.slot_mut(slot_key);
    if slot.run_id == Some(run_id) {
        slot.state = SlotState::Failed;
        slot.cooldown_until = Some(cooldown_until);
    }
    let why = match failure {
        RunFailure::NoPetals => "no petals left",
        RunFailure::DurationPassed => "its time ran out before the target was reached",
    };
    communicate(
        board,
        CommunicationKind::System,
        format!(
            "Your {} mission failed: {why}. A new mission is offered after the cooldown.",
            slot_key.as_str()
        ),
        ids,
        now,
    );
}

/// Claimed and failed slots cool down; a slot whose cooldown is over goes back to idle with the
/// next offer and full petals. Returns whether the slot changed.
fn advance_slot(
    slot: &mut Slot,
    catalog: &Catalog,
    settings: &RuleSettings,
    now: DateTime<Utc>,
) -> bool {
    let mut changed = false;
    if matches!(slot.state, SlotState::Claimed | SlotState::Failed) {
        slot.state = SlotState::Cooldown;
        changed = true;
    }
    if slot.state == SlotState::Cooldown && slot.cooldown_until.is_none_or(|until| until <= now) {
        // With nothing offerable (every mission of the slot retired) the slot keeps its offer.
        offer_next_mission(slot, catalog);
        slot.state = SlotState::Idle;
        slot.run_id = None;
        slot.cooldown_until = None;
        slot.petals_total = settings.petals_per_run;
        slot.petals_remaining = settings.petals_per_run;
        changed = true;
    }
    changed
}

/// Moves the slot to its next offer; the mission offered, or None when the catalog offers
/// nothing for the slot.
fn offer_next_mission(slot: &mut Slot, catalog: &Catalog) -> Option<Uuid> {
    let offerable: Vec<_> = catalog.offerable(slot.slot_key).collect();
    // A list's length fits in i64, and a remainder of a positive count is below it: neither
    // conversion fails.
    let count = i64::try_from(offerable.len())
        .ok()
        .filter(|count| *count > 0)?;
    let offers = slot.offers.saturating_add(1);
    let index = usize::try_from(i64::from(offers).rem_euclid(count)).ok()?;
    let mission = offerable.get(index)?;
    slot.offers = offers;
    slot.mission_id = mission.mission_id;
    Some(slot.mission_id)
}

/// Gives every slot whose reset time has passed its full weekly reroll budget back, until next
/// local Monday. (A legacy board without a reset time gets it now.)
fn restore_rerolls(board: &mut Board, settings: &RuleSettings, now: DateTime<Utc>) -> bool {
    let next_reset = next_week_start(board.time_zone, now);
    let mut changed = false;
    for slot in &mut board.slots {
        if slot.reroll_reset_at.is_none_or(|reset_at| reset_at <= now) {
            slot.reroll_remaining = settings.rerolls_per_week;
            slot.reroll_reset_at = Some(next_reset);
            changed = true;
        }
    }
    changed
}

/// Once per local week, when a tick first sees a Monday not summarized yet: a summary of the
/// week before (days kept, protected, petals lost, claims), if anything happened in it. A
/// time-zone change that moves the local date back over a Monday finds the week already
/// summarized.
fn write_weekly_summary(board: &mut Board, ids: &mut dyn Ids, now: DateTime<Utc>) -> bool {
    let tz = board.time_zone;
    let this_week = week_start(local_date(tz, now));
    if board
        .last_weekly_summary
        .is_some_and(|summarized| summarized >= this_week)
    {
        return false;
    }
    let last_week = this_week - Days::new(7);
    let in_last_week = |date: NaiveDate| last_week <= date && date < this_week;
    let days: Vec<DayOutcome> = board
        .runs
        .iter()
        .flat_map(|run| &run.days)
        .filter(|day| in_last_week(day.date))
        .map(|day| day.outcome)
        .collect();
    let count = |outcome| days.iter().filter(|&&day| day == outcome).count();
    let claims = board
        .claims
        .iter()
        .filter(|claim| in_last_week(local_date(tz, claim.claimed_at)))
        .count();
    board.last_weekly_summary = Some(this_week);
    // A week with nothing to tell is marked summarized without a message, so a board nobody
    // plays any more does not collect a communication every Monday.
    if days.is_empty() && claims == 0 {
        return true;
    }
    let message = format!(
        "Week of {last_week}: {} days kept, {} days protected, {} petals lost, {claims} rewards \
         claimed.",
        count(DayOutcome::Kept),
        count(DayOutcome::Protected),
        count(DayOutcome::PetalLost),
    );
    communicate(board, CommunicationKind::Weekly, message, ids, now);
    true
}

fn communicate(
    board: &mut Board,
    kind: CommunicationKind,
    message: String,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) {
    board.communications.push(Communication {
        communication_id: ids.next_id(),
        kind,
        message,
        created_at: now,
    });
}

/// Runs `rule` on a ticked copy of the board and keeps the copy only when the rule agrees, so a
/// refusal leaves the board exactly as it was (the tick included).
fn after_tick<T>(
    board: &mut Board,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
    rule: impl FnOnce(&mut Board, &mut dyn Ids) -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    let mut next = board.clone();
    tick(&mut next, catalog, settings, ids, now);
    let answer = rule(&mut next, ids)?;
    *board = next;
    Ok(answer)
}

/// Changes the user's time zone. Days already closed stay closed: a date is never closed twice,
/// whichever way the zone moves. Call [`tick`] first, so days that ended in the old zone close
/// by the old zone's clock.
pub fn set_time_zone(board: &mut Board, time_zone: Tz, now: DateTime<Utc>) {
    if board.time_zone != time_zone {
        board.time_zone = time_zone;
        board.updated_at = now;
    }
}

/// Starts a run of the slot's offered mission: idle → active, petals reset to full. The run's
/// terms are fixed now: its start date (in the board's zone) and the mission's reward.
pub fn activate(
    board: &mut Board,
    slot: SlotKey,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<Uuid, Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let offered = board.slot(slot);
        if offered.state != SlotState::Idle {
            return Err(slot_not_idle(offered));
        }
        let mission = catalog
            .mission(offered.mission_id)
            .ok_or_else(|| mission_not_in_catalog(offered.mission_id))?;
        let tz = board.time_zone;
        let first_day = local_date(tz, now);
        let days = u64::try_from(mission.duration_days).unwrap_or(0);
        let run_id = ids.next_id();
        board.runs.push(Run {
            run_id,
            slot_key: slot,
            mission_id: mission.mission_id,
            status: RunStatus::Active,
            selected_at: now,
            start_date: Some(first_day),
            updated_at: now,
            expires_at: start_of_day(tz, first_day + Days::new(days)),
            cooldown_until: None,
            completion_at: None,
            failure_at: None,
            claim_id: None,
            reward: Some(mission.reward.clone()),
            progress: Progress {
                current: 0,
                target: mission.progress_target,
                unit: mission.progress_unit,
                updated_at: now,
            },
            heartbeats: Vec::new(),
            days: Vec::new(),
        });
        let slot = board.slot_mut(slot);
        slot.state = SlotState::Active;
        slot.run_id = Some(run_id);
        slot.petals_total = settings.petals_per_run;
        slot.petals_remaining = settings.petals_per_run;
        board.updated_at = now;
        Ok(run_id)
    })
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
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let today = local_date(board.time_zone, now);
        let run = board.run(run_id).ok_or_else(|| run_not_found(run_id))?;
        // Before the status check, so a retry answers the same even if the run succeeded since.
        if let Some(first) = run.heartbeat_on(today) {
            return Ok(HeartbeatOutcome {
                heartbeat: first.clone(),
                replayed: true,
            });
        }
        if run.status != RunStatus::Active {
            return Err(run_not_active(run));
        }
        // A day that was closed already (the call waited behind the day close, or the zone
        // moved west) cannot be kept after the fact: its outcome is history.
        if run.last_closed_date().is_some_and(|closed| today <= closed) {
            return Err(Refusal::precondition(
                "DAY_ALREADY_CLOSED",
                format!("the local day {today} of run {run_id} is closed already"),
            )
            .with("date", today));
        }
        // After a move west on the run's first day the local date can be the day before the
        // run started: no day of the run to keep yet.
        if let Some(start) = run.start_date.filter(|start| today < *start) {
            return Err(Refusal::precondition(
                "RUN_NOT_STARTED",
                format!("run {run_id} starts on {start}; the local date is {today}"),
            )
            .with("date", today)
            .with("start_date", start));
        }
        // A heartbeat keeps the day; it never gives or takes petals.
        let petals = board.slot(run.slot_key).petals_remaining;
        let heartbeat = Heartbeat {
            heartbeat_id: ids.next_id(),
            date: today,
            petals_before: petals,
            petals_after: petals,
            created_at: now,
        };
        let run = board.run_mut(run_id).ok_or_else(|| run_not_found(run_id))?;
        run.heartbeats.push(heartbeat.clone());
        run.updated_at = now;
        board.updated_at = now;
        Ok(HeartbeatOutcome {
            heartbeat,
            replayed: false,
        })
    })
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
    after_tick(board, catalog, settings, ids, now, |board, _| {
        let run = board.run_mut(run_id).ok_or_else(|| run_not_found(run_id))?;
        // A retry of the call that succeeded the run (or an older value) changes nothing.
        if run.status != RunStatus::Active
            && run.completion_at.is_some()
            && current <= run.progress.current
        {
            return Ok(false);
        }
        if run.status != RunStatus::Active {
            return Err(run_not_active(run));
        }
        if current < run.progress.current {
            return Err(Refusal::invalid(
                "current",
                "PROGRESS_BACKWARDS",
                format!(
                    "progress only goes forward: the run is at {}, not {current}",
                    run.progress.current
                ),
            )
            .with("current", run.progress.current));
        }
        if current == run.progress.current {
            return Ok(false);
        }
        run.progress.current = current;
        run.progress.updated_at = now;
        run.updated_at = now;
        let succeeded = current >= run.progress.target;
        if succeeded {
            run.status = RunStatus::Succeeded;
            run.completion_at = Some(now);
            let slot_key = run.slot_key;
            board.slot_mut(slot_key).state = SlotState::Succeeded;
        }
        board.updated_at = now;
        Ok(succeeded)
    })
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
    after_tick(board, catalog, settings, ids, now, |board, _| {
        let rerolled = board.slot_mut(slot);
        if rerolled.state != SlotState::Idle {
            return Err(slot_not_idle(rerolled));
        }
        if rerolled.reroll_remaining <= 0 {
            let mut refusal = Refusal::precondition(
                "NO_REROLL_LEFT",
                format!("no reroll left this week for the {} slot", slot.as_str()),
            );
            if let Some(reset_at) = rerolled.reroll_reset_at {
                refusal = refusal.with("reroll_reset_at", reset_at.to_rfc3339());
            }
            return Err(refusal);
        }
        let offered_before = rerolled.mission_id;
        let mission_id =
            offer_next_mission(rerolled, catalog).ok_or_else(|| no_mission_for_slot(slot))?;
        if mission_id == offered_before {
            return Err(Refusal::precondition(
                "NO_OTHER_MISSION",
                format!(
                    "the catalog has no other mission for the {} slot",
                    slot.as_str()
                ),
            )
            .with("slot", slot.as_str()));
        }
        rerolled.reroll_remaining -= 1;
        rerolled.reroll_used_at = Some(now);
        board.updated_at = now;
        Ok(mission_id)
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    pub claim: Claim,
    /// The run was claimed before; this is the original claim and nothing was granted again.
    pub replayed: bool,
}

/// Claims a succeeded run's reward exactly once: run → claimed, slot → claimed (cooldown
/// starts), an aura reward is granted as an effect. A claimed run answers with its claim. The
/// reward is the one the run started with (the catalog's, for a run from before runs kept it).
pub fn claim(
    board: &mut Board,
    run_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<ClaimOutcome, Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let run = board.run(run_id).ok_or_else(|| run_not_found(run_id))?;
        if let Some(original) = board.claims.iter().find(|claim| claim.run_id == run_id) {
            return Ok(ClaimOutcome {
                claim: original.clone(),
                replayed: true,
            });
        }
        if run.status != RunStatus::Succeeded {
            return Err(Refusal::precondition(
                "RUN_NOT_SUCCEEDED",
                format!(
                    "run {run_id} is {}: only a succeeded run can be claimed",
                    run.status.as_str()
                ),
            )
            .with("run_id", run_id)
            .with("status", run.status.as_str()));
        }
        let mission = catalog
            .mission(run.mission_id)
            .ok_or_else(|| mission_not_in_catalog(run.mission_id))?;
        let reward = run.reward.clone().unwrap_or_else(|| mission.reward.clone());
        let claim = grant_reward(
            board,
            run_id,
            ClaimSource::Mission,
            &mission.name,
            &reward,
            catalog,
            ids,
            now,
        )?;
        let cooldown_until = now + settings.cooldown;
        let run = board.run_mut(run_id).ok_or_else(|| run_not_found(run_id))?;
        run.status = RunStatus::Claimed;
        run.claim_id = Some(claim.claim_id);
        run.cooldown_until = Some(cooldown_until);
        run.updated_at = now;
        let slot_key = run.slot_key;
        let slot = board.slot_mut(slot_key);
        if slot.run_id == Some(run_id) {
            slot.state = SlotState::Claimed;
            slot.cooldown_until = Some(cooldown_until);
        }
        Ok(ClaimOutcome {
            claim,
            replayed: false,
        })
    })
}

/// Records the claim of `reward` for `run_id` (a mission run or the boss run), grants its aura
/// as an effect and tells the user. Refused, with nothing changed, when the aura is not in the
/// catalog: a reward is granted whole or not at all.
#[allow(clippy::too_many_arguments)]
fn grant_reward(
    board: &mut Board,
    run_id: Uuid,
    source: ClaimSource,
    title: &str,
    reward: &Reward,
    catalog: &Catalog,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<Claim, Refusal> {
    let aura = reward
        .aura_id
        .map(|aura_id| {
            catalog.effect(aura_id).ok_or_else(|| {
                Refusal::precondition(
                    "EFFECT_NOT_IN_CATALOG",
                    format!("the reward's aura {aura_id} is not in the effect catalog"),
                )
                .with("effect_id", aura_id)
            })
        })
        .transpose()?;
    let claim = Claim {
        claim_id: ids.next_id(),
        run_id,
        source,
        claimed_at: now,
        reward: reward.clone(),
    };
    board.claims.push(claim.clone());
    if let Some(aura) = aura {
        start_effect(board, aura, ids, now);
    }
    communicate(
        board,
        CommunicationKind::System,
        format!(
            "Reward claimed for {title}: {} XP, {} coins.",
            reward.xp, reward.currency
        ),
        ids,
        now,
    );
    board.updated_at = now;
    Ok(claim)
}

/// Links the boss run to a goal task; progress on that task takes the shield down.
pub fn link_boss_task(
    board: &mut Board,
    task_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, _| {
        let boss = board.boss.as_mut().ok_or_else(no_boss)?;
        if boss.linked_task_id == Some(task_id) {
            return Ok(());
        }
        // Once the shield is down the link has done its work; moving it would change nothing.
        if boss.phase != 1 {
            return Err(Refusal::precondition(
                "BOSS_NOT_IN_PHASE_1",
                "the boss's shield is already down: its task can no longer change",
            )
            .with("phase", boss.phase));
        }
        boss.linked_task_id = Some(task_id);
        boss.linked_at = Some(now);
        board.updated_at = now;
        Ok(())
    })
}

/// Progress on a task: `amount` off the shield when it is the boss's linked task and the boss is
/// in phase 1; at 0 the boss enters phase 2 (a system communication says so).
pub fn damage_boss(
    board: &mut Board,
    task_id: Uuid,
    amount: i32,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if amount <= 0 {
        return Err(Refusal::invalid(
            "amount",
            "AMOUNT_NOT_POSITIVE",
            format!("the boss takes a positive amount of damage, not {amount}"),
        ));
    }
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let boss = board.boss.as_mut().ok_or_else(no_boss)?;
        if boss.linked_task_id != Some(task_id) {
            return Err(Refusal::precondition(
                "TASK_NOT_LINKED",
                format!("task {task_id} is not the boss's linked task"),
            )
            .at("task_id")
            .with("task_id", task_id));
        }
        // Progress keeps coming after the shield is down; it simply has nothing left to hit.
        if boss.phase != 1 {
            return Ok(());
        }
        // Damage beyond the shield's range takes it all; none is negative.
        let damage = i16::try_from(amount.max(0)).unwrap_or(i16::MAX);
        boss.shield_current = boss.shield_current.saturating_sub(damage).max(0);
        if boss.shield_current == 0 {
            boss.phase = 2;
            boss.phase2_ready = true;
            communicate(
                board,
                CommunicationKind::System,
                "The boss's shield is down: phase 2 begins. Submit your proof to defeat it."
                    .to_owned(),
                ids,
                now,
            );
        }
        board.updated_at = now;
        Ok(())
    })
}

/// Phase 2's proof completes the boss (phase 1: FAILED_PRECONDITION).
pub fn submit_boss_proof(
    board: &mut Board,
    proof: &str,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if proof.trim().is_empty() {
        return Err(Refusal::invalid(
            "proof",
            "PROOF_MISSING",
            "a proof is needed to defeat the boss",
        ));
    }
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let boss = board.boss.as_mut().ok_or_else(no_boss)?;
        if boss.completed_at.is_some() {
            // The same proof again is a retry; another one would rewrite history.
            return if boss.phase2_proof.as_deref() == Some(proof) {
                Ok(())
            } else {
                Err(Refusal::precondition(
                    "BOSS_ALREADY_COMPLETED",
                    "the boss was already defeated with another proof",
                ))
            };
        }
        if boss.phase != 2 {
            return Err(Refusal::precondition(
                "BOSS_NOT_IN_PHASE_2",
                "the boss's shield is still up: a proof is accepted in phase 2 only",
            )
            .with("phase", boss.phase)
            .with("shield_current", boss.shield_current));
        }
        boss.phase2_proof = Some(proof.to_owned());
        boss.phase2_submitted_at = Some(now);
        boss.completed_at = Some(now);
        communicate(
            board,
            CommunicationKind::System,
            "Boss defeated! Claim its reward.".to_owned(),
            ids,
            now,
        );
        board.updated_at = now;
        Ok(())
    })
}

/// Claims the completed boss's reward exactly once (a second claim answers with the first).
pub fn claim_boss(
    board: &mut Board,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<ClaimOutcome, Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let boss = board.boss.as_ref().ok_or_else(no_boss)?;
        let boss_run_id = boss.boss_run_id;
        if let Some(original) = board
            .claims
            .iter()
            .find(|claim| claim.run_id == boss_run_id)
        {
            return Ok(ClaimOutcome {
                claim: original.clone(),
                replayed: true,
            });
        }
        if boss.completed_at.is_none() {
            return Err(Refusal::precondition(
                "BOSS_NOT_COMPLETED",
                "the boss is not defeated yet: nothing to claim",
            )
            .with("phase", boss.phase));
        }
        let definition = catalog.boss(boss.boss_id).ok_or_else(|| {
            Refusal::precondition(
                "BOSS_NOT_IN_CATALOG",
                format!("boss {} is not in the catalog", boss.boss_id),
            )
            .with("boss_id", boss.boss_id)
        })?;
        let claim = grant_reward(
            board,
            boss_run_id,
            ClaimSource::Boss,
            &definition.name,
            &definition.reward,
            catalog,
            ids,
            now,
        )?;
        board.boss.as_mut().ok_or_else(no_boss)?.claim_id = Some(claim.claim_id);
        Ok(ClaimOutcome {
            claim,
            replayed: false,
        })
    })
}

/// Grants the catalog's effect `effect_id` to the board, active from `now` for its duration
/// (NOT_FOUND when the catalog has no such effect).
pub fn grant_effect(
    board: &mut Board,
    effect_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<EffectInstance, Refusal> {
    let effect = catalog.effect(effect_id).ok_or_else(|| {
        Refusal::not_found(
            "EFFECT_NOT_FOUND",
            format!("the catalog has no effect {effect_id}"),
        )
        .at("effect_id")
        .with("effect_id", effect_id)
    })?;
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        Ok(start_effect(board, effect, ids, now))
    })
}

/// A new instance of `effect` on the board, active from `now` for the effect's duration.
fn start_effect(
    board: &mut Board,
    effect: &EffectDefinition,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> EffectInstance {
    let instance = EffectInstance {
        effect_instance_id: ids.next_id(),
        effect_id: effect.effect_id,
        active_from: now,
        active_until: effect
            .duration_days
            .map(|days| now + chrono::Duration::days(i64::from(days))),
        consumed_at: None,
        protects_day: effect.protects_day(),
        payload_override: serde_json::Value::Object(serde_json::Map::new()),
    };
    board.effects.push(instance.clone());
    board.updated_at = now;
    instance
}

fn run_not_found(run_id: Uuid) -> Refusal {
    Refusal::not_found("RUN_NOT_FOUND", format!("this board has no run {run_id}"))
        .at("run_id")
        .with("run_id", run_id)
}

fn run_not_active(run: &Run) -> Refusal {
    Refusal::precondition(
        "RUN_NOT_ACTIVE",
        format!("run {} is {}, not active", run.run_id, run.status.as_str()),
    )
    .with("run_id", run.run_id)
    .with("status", run.status.as_str())
}

fn slot_not_idle(slot: &Slot) -> Refusal {
    Refusal::precondition(
        "SLOT_NOT_IDLE",
        format!(
            "the {} slot is {}, not idle",
            slot.slot_key.as_str(),
            slot.state.as_str()
        ),
    )
    .with("slot", slot.slot_key.as_str())
    .with("state", slot.state.as_str())
}

fn mission_not_in_catalog(mission_id: Uuid) -> Refusal {
    Refusal::precondition(
        "MISSION_NOT_IN_CATALOG",
        format!("mission {mission_id} is not in the catalog"),
    )
    .with("mission_id", mission_id)
}

fn no_boss() -> Refusal {
    Refusal::precondition("NO_BOSS", "this board has no boss (the catalog had none)")
}

/// When the board next needs a tick: the end of the first local day not yet closed of an active
/// run (or the run's expiry, if sooner), the end of a slot's cooldown, the return of a reroll
/// budget or the next weekly summary, whichever comes first. The SQL store indexes it so that
/// the batch day close finds due boards without scanning, and saves what time did to a board
/// nobody touches, even with nothing running (its weekly summary, a slot back from cooldown).
/// After a tick at `now` it is always later than `now`, so a board is never due again for a day
/// already closed (e.g. after a time-zone change west).
pub fn next_due(board: &Board) -> DateTime<Utc> {
    let tz = board.time_zone;
    let day_closes = board
        .runs
        .iter()
        .filter(|run| run.status == RunStatus::Active)
        .map(|run| end_of_day(tz, first_open_date(tz, run)).min(run.expires_at));
    // Only a resting slot leaves its cooldown; a claimed or failed one starts resting at the next
    // tick, until the same end. (An idle slot of a legacy board may hold a stale end.)
    let cooldown_ends = board
        .slots
        .iter()
        .filter(|slot| {
            matches!(
                slot.state,
                SlotState::Claimed | SlotState::Failed | SlotState::Cooldown
            )
        })
        .filter_map(|slot| slot.cooldown_until);
    let reroll_returns = board.slots.iter().filter_map(|slot| slot.reroll_reset_at);
    day_closes
        .chain(cooldown_ends)
        .chain(reroll_returns)
        .fold(next_weekly_summary_at(board), DateTime::min)
}

/// When the next weekly summary is due: the start of the local Monday after the last week
/// summarized, or at once (since the board's birth) for a legacy board that never had one.
fn next_weekly_summary_at(board: &Board) -> DateTime<Utc> {
    board
        .last_weekly_summary
        .map_or(board.generated_at, |summarized| {
            start_of_day(board.time_zone, week_start(summarized) + Days::new(7))
        })
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

#[cfg(test)]
mod tests;
