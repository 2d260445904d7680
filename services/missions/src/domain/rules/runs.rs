//! A slot's run: starting it, the day's heartbeat, progress, and rerolling an idle slot's
//! offer.

use super::*;

/// Moves the slot to its next offer; the mission offered, or None when the catalog offers
/// nothing for the slot.
pub(super) fn offer_next_mission(slot: &mut Slot, catalog: &Catalog) -> Option<Uuid> {
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
