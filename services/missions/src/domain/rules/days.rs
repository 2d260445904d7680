//! What time does to a board (`tick`): every ended local day of an active run closes once, in
//! date order (kept, protected by an effect, or a petal lost); runs past their days fail;
//! cooldowns end; reroll budgets come back; the weekly summary is written.

use super::*;

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
pub(super) fn close_run_days(
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
pub(super) fn close_day(
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
pub(super) fn protecting_effect(effects: &mut [EffectInstance], at: DateTime<Utc>) -> Option<Uuid> {
    let effect = effects
        .iter_mut()
        .filter(|effect| effect.protects_day && effect.is_active_at(at))
        // None (until consumed) sorts after every instant: keep those for later.
        .min_by_key(|effect| (effect.active_until.is_none(), effect.active_until))?;
    effect.consumed_at = Some(at);
    Some(effect.effect_instance_id)
}

#[derive(Debug, Clone, Copy)]
pub(super) enum RunFailure {
    NoPetals,
    DurationPassed,
}

/// Fails the run at `index` as of `at` (its last day's end or its expiry): the slot fails and
/// cools down from `at`.
pub(super) fn fail_run(
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
pub(super) fn advance_slot(
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

/// Gives every slot whose reset time has passed its full weekly reroll budget back, until next
/// local Monday. (A legacy board without a reset time gets it now.)
pub(super) fn restore_rerolls(
    board: &mut Board,
    settings: &RuleSettings,
    now: DateTime<Utc>,
) -> bool {
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
pub(super) fn write_weekly_summary(
    board: &mut Board,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> bool {
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
