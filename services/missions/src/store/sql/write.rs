//! The statements a save sends: the removals, and one write statement with a part (a
//! data-modifying CTE of UNNEST arrays) for each table that has rows to write.

use chrono::NaiveDate;
use phoenix_runtime::Error;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::types::Json;
use sqlx::{Arguments, PgConnection};
use uuid::Uuid;

use super::rows::{
    BoardRow, BossRunRow, ClaimRow, CommunicationRow, DayRow, EffectRow, HeartbeatRow, ProgressRow,
    RunRow, SlotRow, StateRow,
};
use super::save::SaveError;

/// Keys of the rows a save deletes (a deleted board or run takes its rows with it).
#[derive(Default)]
pub(super) struct Removals {
    pub(super) boards: Vec<Uuid>,
    pub(super) runs: Vec<Uuid>,
    pub(super) heartbeats: Vec<Uuid>,
    pub(super) days: Vec<(Uuid, NaiveDate)>,
    pub(super) effects: Vec<Uuid>,
    pub(super) boss_runs: Vec<Uuid>,
    pub(super) claims: Vec<Uuid>,
    pub(super) communications: Vec<Uuid>,
}

impl Removals {
    pub(super) fn is_empty(&self) -> bool {
        self.boards.is_empty()
            && self.runs.is_empty()
            && self.heartbeats.is_empty()
            && self.days.is_empty()
            && self.effects.is_empty()
            && self.boss_runs.is_empty()
            && self.claims.is_empty()
            && self.communications.is_empty()
    }

    pub(super) async fn execute(self, connection: &mut PgConnection) -> Result<(), SaveError> {
        let (day_runs, day_dates): (Vec<Uuid>, Vec<NaiveDate>) = self.days.into_iter().unzip();
        sqlx::query(
            "WITH boards AS (DELETE FROM missions_v2_boards WHERE board_id = ANY($1)),
                  runs AS (DELETE FROM missions_v2_slot_runs WHERE run_id = ANY($2)),
                  heartbeats AS (DELETE FROM missions_v2_heartbeat_log WHERE heartbeat_id = ANY($3)),
                  days AS (
                      DELETE FROM missions_v2_day_closes d
                      USING UNNEST($4::uuid[], $5::date[]) AS gone(run_id, local_date)
                      WHERE d.run_id = gone.run_id AND d.local_date = gone.local_date),
                  effects AS (DELETE FROM missions_v2_effects WHERE effect_instance_id = ANY($6)),
                  boss_runs AS (DELETE FROM missions_v2_boss_runs WHERE boss_run_id = ANY($7)),
                  claims AS (DELETE FROM missions_v2_claims WHERE claim_id = ANY($8))
             DELETE FROM missions_v2_communications WHERE communication_id = ANY($9)",
        )
        .bind(self.boards)
        .bind(self.runs)
        .bind(self.heartbeats)
        .bind(day_runs)
        .bind(day_dates)
        .bind(self.effects)
        .bind(self.boss_runs)
        .bind(self.claims)
        .bind(self.communications)
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// The rows a save writes, over every board of the save.
#[derive(Default)]
pub(super) struct Writes<'a> {
    pub(super) state: Vec<StateRow<'a>>,
    pub(super) boards: Vec<BoardRow<'a>>,
    pub(super) slots: Vec<SlotRow>,
    pub(super) runs: Vec<RunRow<'a>>,
    pub(super) progress: Vec<ProgressRow>,
    pub(super) heartbeats: Vec<HeartbeatRow>,
    pub(super) days: Vec<DayRow>,
    pub(super) effects: Vec<EffectRow<'a>>,
    pub(super) boss_runs: Vec<BossRunRow<'a>>,
    pub(super) claims: Vec<ClaimRow<'a>>,
    pub(super) communications: Vec<CommunicationRow<'a>>,
}

/// One column of `rows`, as an array parameter.
pub(super) fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

// One statement writes every table with rows to write: one data-modifying CTE per table, each
// below with its parameters numbered from $1, joined and renumbered by `write_statement`. The
// CTEs all run, and the foreign keys between rows inserted by different CTEs are checked at the
// end of the statement. Runs are upserted in board order, so a run that stops being active is
// updated before a newer active run of its slot is inserted (the one-active-run index checks
// row by row).
const WRITE_STATE: &str = "\
state AS (
    INSERT INTO missions_v2_state AS s (user_id, season_id, board_id, state, version, due_at, updated_at)
    SELECT r.user_id, r.season_id, r.board_id, r.state, 1, r.due_at, now()
    FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::timestamptz[])
         AS r(user_id, season_id, board_id, state, due_at)
    ON CONFLICT (user_id, season_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, state = EXCLUDED.state, version = s.version + 1,
        due_at = EXCLUDED.due_at, updated_at = EXCLUDED.updated_at
)";

const WRITE_BOARDS: &str = "\
boards AS (
    INSERT INTO missions_v2_boards (board_id, user_id, season_id, time_zone, generated_at,
                                    updated_at, last_weekly_summary, legacy_fields)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::timestamptz[], $7::date[], $8::jsonb[])
    ON CONFLICT (board_id) DO UPDATE
    SET user_id = EXCLUDED.user_id, season_id = EXCLUDED.season_id,
        time_zone = EXCLUDED.time_zone, generated_at = EXCLUDED.generated_at,
        updated_at = EXCLUDED.updated_at, last_weekly_summary = EXCLUDED.last_weekly_summary,
        legacy_fields = EXCLUDED.legacy_fields
)";

const WRITE_SLOTS: &str = "\
slots AS (
    INSERT INTO missions_v2_slots (slot_id, board_id, slot_key, state, mission_id, run_id,
                                   petals_total, petals_remaining, cooldown_until,
                                   reroll_remaining, reroll_used_at, reroll_reset_at, offers,
                                   legacy_fields)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[],
                         $6::uuid[], $7::int2[], $8::int2[], $9::timestamptz[], $10::int2[],
                         $11::timestamptz[], $12::timestamptz[], $13::int4[], $14::jsonb[])
    ON CONFLICT (slot_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, slot_key = EXCLUDED.slot_key, state = EXCLUDED.state,
        mission_id = EXCLUDED.mission_id, run_id = EXCLUDED.run_id,
        petals_total = EXCLUDED.petals_total, petals_remaining = EXCLUDED.petals_remaining,
        cooldown_until = EXCLUDED.cooldown_until, reroll_remaining = EXCLUDED.reroll_remaining,
        reroll_used_at = EXCLUDED.reroll_used_at, reroll_reset_at = EXCLUDED.reroll_reset_at,
        offers = EXCLUDED.offers, legacy_fields = EXCLUDED.legacy_fields
)";

const WRITE_RUNS: &str = "\
runs AS (
    INSERT INTO missions_v2_slot_runs (run_id, board_id, slot_key, position, mission_id, status,
                                       selected_at, start_date, updated_at, expires_at,
                                       cooldown_until, completion_at, failure_at, claim_id,
                                       reward_xp, reward_currency, reward_items, reward_badge_id,
                                       reward_aura_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::uuid[],
                         $6::text[], $7::timestamptz[], $8::date[], $9::timestamptz[],
                         $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
                         $13::timestamptz[], $14::uuid[], $15::int4[], $16::int4[], $17::jsonb[],
                         $18::uuid[], $19::uuid[])
    ON CONFLICT (run_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, slot_key = EXCLUDED.slot_key,
        position = EXCLUDED.position, mission_id = EXCLUDED.mission_id,
        status = EXCLUDED.status, selected_at = EXCLUDED.selected_at,
        start_date = EXCLUDED.start_date, updated_at = EXCLUDED.updated_at,
        expires_at = EXCLUDED.expires_at, cooldown_until = EXCLUDED.cooldown_until,
        completion_at = EXCLUDED.completion_at, failure_at = EXCLUDED.failure_at,
        claim_id = EXCLUDED.claim_id, reward_xp = EXCLUDED.reward_xp,
        reward_currency = EXCLUDED.reward_currency, reward_items = EXCLUDED.reward_items,
        reward_badge_id = EXCLUDED.reward_badge_id, reward_aura_id = EXCLUDED.reward_aura_id
)";

const WRITE_PROGRESS: &str = "\
progress AS (
    INSERT INTO missions_v2_mission_progress (run_id, current, target, unit, updated_at)
    SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::int4[], $4::text[], $5::timestamptz[])
    ON CONFLICT (run_id) DO UPDATE
    SET current = EXCLUDED.current, target = EXCLUDED.target, unit = EXCLUDED.unit,
        updated_at = EXCLUDED.updated_at
)";

const WRITE_HEARTBEATS: &str = "\
heartbeats AS (
    INSERT INTO missions_v2_heartbeat_log (heartbeat_id, run_id, position, heartbeat_date,
                                           petals_before, petals_after, created_at)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::date[], $5::int2[],
                         $6::int2[], $7::timestamptz[])
)";

const WRITE_DAYS: &str = "\
days AS (
    INSERT INTO missions_v2_day_closes (run_id, local_date, outcome, effect_instance_id,
                                        petals_after, closed_at)
    SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::uuid[], $5::int2[],
                         $6::timestamptz[])
)";

const WRITE_EFFECTS: &str = "\
effects AS (
    INSERT INTO missions_v2_effects (effect_instance_id, board_id, position, effect_id,
                                     active_from, active_until, consumed_at, protects_day,
                                     payload_override)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::uuid[], $5::timestamptz[],
                         $6::timestamptz[], $7::timestamptz[], $8::bool[], $9::jsonb[])
    ON CONFLICT (effect_instance_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, position = EXCLUDED.position,
        effect_id = EXCLUDED.effect_id, active_from = EXCLUDED.active_from,
        active_until = EXCLUDED.active_until, consumed_at = EXCLUDED.consumed_at,
        protects_day = EXCLUDED.protects_day, payload_override = EXCLUDED.payload_override
)";

const WRITE_BOSS_RUNS: &str = "\
boss_runs AS (
    INSERT INTO missions_v2_boss_runs (boss_run_id, board_id, boss_id, phase, shield_current,
                                       shield_max, linked_task_id, linked_at, phase2_ready,
                                       phase2_proof, phase2_submitted_at, completed_at, claim_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::int2[], $5::int2[],
                         $6::int2[], $7::uuid[], $8::timestamptz[], $9::bool[], $10::text[],
                         $11::timestamptz[], $12::timestamptz[], $13::uuid[])
    ON CONFLICT (boss_run_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, boss_id = EXCLUDED.boss_id, phase = EXCLUDED.phase,
        shield_current = EXCLUDED.shield_current, shield_max = EXCLUDED.shield_max,
        linked_task_id = EXCLUDED.linked_task_id, linked_at = EXCLUDED.linked_at,
        phase2_ready = EXCLUDED.phase2_ready, phase2_proof = EXCLUDED.phase2_proof,
        phase2_submitted_at = EXCLUDED.phase2_submitted_at,
        completed_at = EXCLUDED.completed_at, claim_id = EXCLUDED.claim_id
)";

const WRITE_CLAIMS: &str = "\
claims AS (
    INSERT INTO missions_v2_claims (claim_id, board_id, user_id, run_id, position, source,
                                    claimed_at, reward_xp, reward_currency, reward_items,
                                    reward_badge_id, reward_aura_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int4[],
                         $6::text[], $7::timestamptz[], $8::int4[], $9::int4[], $10::jsonb[],
                         $11::uuid[], $12::uuid[])
)";

const WRITE_COMMUNICATIONS: &str = "\
communications AS (
    INSERT INTO missions_v2_communications (communication_id, board_id, position, type, message,
                                            created_at)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::text[],
                         $6::timestamptz[])
)";

impl Writes<'_> {
    pub(super) async fn execute(&self, connection: &mut PgConnection) -> Result<(), SaveError> {
        let mut write = WriteStatement::default();
        write.part(WRITE_STATE, &self.state, bind_state)?;
        write.part(WRITE_BOARDS, &self.boards, bind_boards)?;
        write.part(WRITE_SLOTS, &self.slots, bind_slots)?;
        write.part(WRITE_RUNS, &self.runs, bind_runs)?;
        write.part(WRITE_PROGRESS, &self.progress, bind_progress)?;
        write.part(WRITE_HEARTBEATS, &self.heartbeats, bind_heartbeats)?;
        write.part(WRITE_DAYS, &self.days, bind_days)?;
        write.part(WRITE_EFFECTS, &self.effects, bind_effects)?;
        write.part(WRITE_BOSS_RUNS, &self.boss_runs, bind_boss_runs)?;
        write.part(WRITE_CLAIMS, &self.claims, bind_claims)?;
        write.part(
            WRITE_COMMUNICATIONS,
            &self.communications,
            bind_communications,
        )?;
        if write.arguments.len() == 0 {
            return Ok(());
        }
        let statement = write.statement + "\nSELECT";
        sqlx::query_with(&statement, write.arguments)
            .execute(connection)
            .await?;
        Ok(())
    }
}

/// The write statement of the tables with rows to write, and its arguments. A table with nothing
/// to write is left out rather than given empty arrays: PostgreSQL would still open its indexes
/// and run its part on every call. A heartbeat writes four tables of eleven; leaving the other
/// seven out took `phoenix bench missions` from 0.64–0.80 to 0.81–0.95 of the SQL floor.
struct WriteStatement {
    pub(super) statement: String,
    pub(super) arguments: PgArguments,
}

impl Default for WriteStatement {
    fn default() -> Self {
        Self {
            statement: String::from("WITH "),
            arguments: PgArguments::default(),
        }
    }
}

/// Adds one table's columns, as array arguments, in the order of its part's parameters.
type Bind<R> = fn(&mut PgArguments, &[R]) -> Result<(), BoxDynError>;

impl WriteStatement {
    /// Adds a table's part (its parameters numbered from $1) after those so far, with `rows`
    /// bound by `bind`; nothing when there are no rows.
    fn part<R>(&mut self, part: &str, rows: &[R], bind: Bind<R>) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let offset = self.arguments.len();
        if offset > 0 {
            self.statement.push_str(",\n");
        }
        let parameters = renumber_after(part, offset, &mut self.statement)?;
        bind(&mut self.arguments, rows).map_err(sqlx::Error::Encode)?;
        if self.arguments.len() != offset + parameters {
            return Err(Error::invariant(
                "WRITE_PART_ARGUMENTS",
                format!(
                    "a write part takes {parameters} parameters but was bound {}: {part}",
                    self.arguments.len() - offset
                ),
            ));
        }
        Ok(())
    }
}

/// Appends `part` to `statement` with each `$n` as `$(n + offset)`; answers the part's number of
/// parameters (its largest `$n`). The parts are this module's constants, where every `$`
/// numbers a parameter.
fn renumber_after(part: &str, offset: usize, statement: &mut String) -> Result<usize, Error> {
    let mut largest = 0;
    let mut rest = part;
    while let Some(at) = rest.find('$') {
        statement.push_str(&rest[..=at]);
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let number: usize = rest[at + 1..at + 1 + digits].parse().map_err(|_| {
            Error::invariant(
                "WRITE_PART_PARAMETERS",
                format!("a $ of a write part numbers no parameter: {part}"),
            )
        })?;
        largest = largest.max(number);
        statement.push_str(&(number + offset).to_string());
        rest = &rest[at + 1 + digits..];
    }
    statement.push_str(rest);
    Ok(largest)
}

fn bind_state(arguments: &mut PgArguments, rows: &[StateRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.user_id))?;
    arguments.add(column(rows, |r| r.season_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.state))?;
    arguments.add(column(rows, |r| r.due_at))?;
    Ok(())
}

fn bind_boards(arguments: &mut PgArguments, rows: &[BoardRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.user_id))?;
    arguments.add(column(rows, |r| r.season_id))?;
    arguments.add(column(rows, |r| r.time_zone))?;
    arguments.add(column(rows, |r| r.generated_at))?;
    arguments.add(column(rows, |r| r.updated_at))?;
    arguments.add(column(rows, |r| r.last_weekly_summary))?;
    arguments.add(rows.iter().map(|r| &r.legacy_fields).collect::<Vec<_>>())?;
    Ok(())
}

fn bind_slots(arguments: &mut PgArguments, rows: &[SlotRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.slot_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.slot_key.as_str()))?;
    arguments.add(column(rows, |r| r.state.as_str()))?;
    arguments.add(column(rows, |r| r.mission_id))?;
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.petals_total))?;
    arguments.add(column(rows, |r| r.petals_remaining))?;
    arguments.add(column(rows, |r| r.cooldown_until))?;
    arguments.add(column(rows, |r| r.reroll_remaining))?;
    arguments.add(column(rows, |r| r.reroll_used_at))?;
    arguments.add(column(rows, |r| r.reroll_reset_at))?;
    arguments.add(column(rows, |r| r.offers))?;
    arguments.add(rows.iter().map(|r| &r.legacy_fields).collect::<Vec<_>>())?;
    Ok(())
}

fn bind_runs(arguments: &mut PgArguments, rows: &[RunRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.slot_key.as_str()))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.mission_id))?;
    arguments.add(column(rows, |r| r.status.as_str()))?;
    arguments.add(column(rows, |r| r.selected_at))?;
    arguments.add(column(rows, |r| r.start_date))?;
    arguments.add(column(rows, |r| r.updated_at))?;
    arguments.add(column(rows, |r| r.expires_at))?;
    arguments.add(column(rows, |r| r.cooldown_until))?;
    arguments.add(column(rows, |r| r.completion_at))?;
    arguments.add(column(rows, |r| r.failure_at))?;
    arguments.add(column(rows, |r| r.claim_id))?;
    arguments.add(column(rows, |r| r.reward.map(|reward| reward.xp)))?;
    arguments.add(column(rows, |r| r.reward.map(|reward| reward.currency)))?;
    arguments.add(column(rows, |r| r.reward.map(|reward| Json(&reward.items))))?;
    arguments.add(column(rows, |r| {
        r.reward.and_then(|reward| reward.badge_id)
    }))?;
    arguments.add(column(rows, |r| r.reward.and_then(|reward| reward.aura_id)))?;
    Ok(())
}

fn bind_progress(arguments: &mut PgArguments, rows: &[ProgressRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.current))?;
    arguments.add(column(rows, |r| r.target))?;
    arguments.add(column(rows, |r| r.unit.as_str()))?;
    arguments.add(column(rows, |r| r.updated_at))?;
    Ok(())
}

fn bind_heartbeats(arguments: &mut PgArguments, rows: &[HeartbeatRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.heartbeat_id))?;
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.date))?;
    arguments.add(column(rows, |r| r.petals_before))?;
    arguments.add(column(rows, |r| r.petals_after))?;
    arguments.add(column(rows, |r| r.created_at))?;
    Ok(())
}

fn bind_days(arguments: &mut PgArguments, rows: &[DayRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.local_date))?;
    arguments.add(column(rows, |r| r.outcome.as_str()))?;
    arguments.add(column(rows, |r| r.effect_instance_id))?;
    arguments.add(column(rows, |r| r.petals_after))?;
    arguments.add(column(rows, |r| r.closed_at))?;
    Ok(())
}

fn bind_effects(arguments: &mut PgArguments, rows: &[EffectRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.effect_instance_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.effect_id))?;
    arguments.add(column(rows, |r| r.active_from))?;
    arguments.add(column(rows, |r| r.active_until))?;
    arguments.add(column(rows, |r| r.consumed_at))?;
    arguments.add(column(rows, |r| r.protects_day))?;
    arguments.add(column(rows, |r| Json(r.payload_override)))?;
    Ok(())
}

fn bind_boss_runs(arguments: &mut PgArguments, rows: &[BossRunRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.boss_run_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.boss_id))?;
    arguments.add(column(rows, |r| r.phase))?;
    arguments.add(column(rows, |r| r.shield_current))?;
    arguments.add(column(rows, |r| r.shield_max))?;
    arguments.add(column(rows, |r| r.linked_task_id))?;
    arguments.add(column(rows, |r| r.linked_at))?;
    arguments.add(column(rows, |r| r.phase2_ready))?;
    arguments.add(column(rows, |r| r.phase2_proof))?;
    arguments.add(column(rows, |r| r.phase2_submitted_at))?;
    arguments.add(column(rows, |r| r.completed_at))?;
    arguments.add(column(rows, |r| r.claim_id))?;
    Ok(())
}

fn bind_claims(arguments: &mut PgArguments, rows: &[ClaimRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.claim_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.user_id))?;
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.source.as_str()))?;
    arguments.add(column(rows, |r| r.claimed_at))?;
    arguments.add(column(rows, |r| r.reward_xp))?;
    arguments.add(column(rows, |r| r.reward_currency))?;
    arguments.add(column(rows, |r| Json(r.reward_items)))?;
    arguments.add(column(rows, |r| r.reward_badge_id))?;
    arguments.add(column(rows, |r| r.reward_aura_id))?;
    Ok(())
}

fn bind_communications(
    arguments: &mut PgArguments,
    rows: &[CommunicationRow<'_>],
) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.communication_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.kind.as_str()))?;
    arguments.add(column(rows, |r| r.message))?;
    arguments.add(column(rows, |r| r.created_at))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_renumbered_after_the_parameters_before_them() {
        let mut statement = String::new();
        let parameters = renumber_after("a AS ($1, $2::int[], $10)", 3, &mut statement)
            .expect("a well-formed part");
        assert_eq!(
            (statement.as_str(), parameters),
            ("a AS ($4, $5::int[], $13)", 10)
        );
    }

    #[test]
    fn a_part_with_a_stray_dollar_is_a_named_invariant_not_a_panic() {
        let broken = renumber_after("a AS ($x)", 0, &mut String::new()).expect_err("no number");
        assert!(
            matches!(
                broken,
                Error::Invariant {
                    invariant: "WRITE_PART_PARAMETERS",
                    ..
                }
            ),
            "{broken:?}"
        );
    }
}
