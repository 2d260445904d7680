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
//!
//! Here: a new board, the tick's entry points and when a board is next due. The rest by
//! concern: `calendar` (local days and weeks), `days` (the tick: day closes, failures,
//! cooldowns, rerolls back, the weekly summary), `runs` (activate, heartbeat, progress,
//! reroll), `rewards` (claims, effects) and `boss`. The submodules share this module's
//! imports (`use super::*`).

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

mod boss;
mod calendar;
mod days;
mod rewards;
mod runs;

pub use self::boss::{claim_boss, damage_boss, link_boss_task, submit_boss_proof};
use self::calendar::{end_of_day, first_open_date, next_date, next_week_start, week_start};
pub use self::calendar::{local_date, next_day_close_at, start_of_day};
pub use self::days::{ClosedDay, tick};
use self::rewards::grant_reward;
pub use self::rewards::{ClaimOutcome, claim, grant_effect};
use self::runs::offer_next_mission;
pub use self::runs::{HeartbeatOutcome, activate, heartbeat, record_progress, reroll};

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
        legacy_fields: Default::default(),
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
        legacy_fields: Default::default(),
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
