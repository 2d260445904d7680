//! A board as the rows of the relational tables (and its `missions_v2_state` snapshot row):
//! one struct per table, a row as it is stored, built from the board.

use chrono::{DateTime, NaiveDate, Utc};
use phoenix_runtime::Error;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::board::{
    Board, ClaimSource, CommunicationKind, DayOutcome, ProgressUnit, Reward, RewardItem, RunStatus,
    SlotKey, SlotState,
};
use crate::domain::rules;

// One struct per table: a row as it is stored, built from the board.

pub(super) struct StateRow<'a> {
    pub(super) user_id: Uuid,
    pub(super) season_id: &'a str,
    pub(super) board_id: Uuid,
    pub(super) state: Json<&'a Board>,
    pub(super) due_at: DateTime<Utc>,
}

impl<'a> StateRow<'a> {
    pub(super) fn of(board: &'a Board) -> Self {
        Self {
            user_id: board.user_id,
            season_id: &board.season_id,
            board_id: board.board_id,
            state: Json(board),
            due_at: rules::next_due(board),
        }
    }
}

#[derive(Debug, PartialEq)]
pub(super) struct BoardRow<'a> {
    pub(super) board_id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) season_id: &'a str,
    pub(super) time_zone: &'static str,
    pub(super) generated_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) last_weekly_summary: Option<NaiveDate>,
    /// The board's `legacy_fields`, a JSON object.
    pub(super) legacy_fields: serde_json::Value,
}

#[derive(Debug, PartialEq)]
pub(super) struct SlotRow {
    pub(super) slot_id: Uuid,
    pub(super) board_id: Uuid,
    pub(super) slot_key: SlotKey,
    pub(super) state: SlotState,
    pub(super) mission_id: Uuid,
    pub(super) run_id: Option<Uuid>,
    pub(super) petals_total: i16,
    pub(super) petals_remaining: i16,
    pub(super) cooldown_until: Option<DateTime<Utc>>,
    pub(super) reroll_remaining: i16,
    pub(super) reroll_used_at: Option<DateTime<Utc>>,
    pub(super) reroll_reset_at: Option<DateTime<Utc>>,
    pub(super) offers: i32,
    /// The slot's `legacy_fields`, a JSON object.
    pub(super) legacy_fields: serde_json::Value,
}

#[derive(Debug, PartialEq)]
pub(super) struct RunRow<'a> {
    pub(super) run_id: Uuid,
    pub(super) board_id: Uuid,
    pub(super) slot_key: SlotKey,
    pub(super) position: i32,
    pub(super) mission_id: Uuid,
    pub(super) status: RunStatus,
    pub(super) selected_at: DateTime<Utc>,
    pub(super) start_date: Option<NaiveDate>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) cooldown_until: Option<DateTime<Utc>>,
    pub(super) completion_at: Option<DateTime<Utc>>,
    pub(super) failure_at: Option<DateTime<Utc>>,
    pub(super) claim_id: Option<Uuid>,
    pub(super) reward: Option<&'a Reward>,
}

#[derive(Debug, PartialEq)]
pub(super) struct ProgressRow {
    pub(super) run_id: Uuid,
    pub(super) current: i32,
    pub(super) target: i32,
    pub(super) unit: ProgressUnit,
    pub(super) updated_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub(super) struct HeartbeatRow {
    pub(super) heartbeat_id: Uuid,
    pub(super) run_id: Uuid,
    pub(super) position: i32,
    pub(super) date: NaiveDate,
    pub(super) petals_before: i16,
    pub(super) petals_after: i16,
    pub(super) created_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub(super) struct DayRow {
    pub(super) run_id: Uuid,
    pub(super) local_date: NaiveDate,
    pub(super) outcome: DayOutcome,
    pub(super) effect_instance_id: Option<Uuid>,
    pub(super) petals_after: i16,
    pub(super) closed_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub(super) struct EffectRow<'a> {
    pub(super) effect_instance_id: Uuid,
    pub(super) board_id: Uuid,
    pub(super) position: i32,
    pub(super) effect_id: Uuid,
    pub(super) active_from: DateTime<Utc>,
    pub(super) active_until: Option<DateTime<Utc>>,
    pub(super) consumed_at: Option<DateTime<Utc>>,
    pub(super) protects_day: bool,
    pub(super) payload_override: &'a serde_json::Value,
}

#[derive(Debug, PartialEq)]
pub(super) struct BossRunRow<'a> {
    pub(super) boss_run_id: Uuid,
    pub(super) board_id: Uuid,
    pub(super) boss_id: Uuid,
    pub(super) phase: i16,
    pub(super) shield_current: i16,
    pub(super) shield_max: i16,
    pub(super) linked_task_id: Option<Uuid>,
    pub(super) linked_at: Option<DateTime<Utc>>,
    pub(super) phase2_ready: bool,
    pub(super) phase2_proof: Option<&'a str>,
    pub(super) phase2_submitted_at: Option<DateTime<Utc>>,
    pub(super) completed_at: Option<DateTime<Utc>>,
    pub(super) claim_id: Option<Uuid>,
}

#[derive(Debug, PartialEq)]
pub(super) struct ClaimRow<'a> {
    pub(super) claim_id: Uuid,
    pub(super) board_id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) run_id: Uuid,
    pub(super) position: i32,
    pub(super) source: ClaimSource,
    pub(super) claimed_at: DateTime<Utc>,
    pub(super) reward_xp: i32,
    pub(super) reward_currency: i32,
    pub(super) reward_items: &'a [RewardItem],
    pub(super) reward_badge_id: Option<Uuid>,
    pub(super) reward_aura_id: Option<Uuid>,
}

#[derive(Debug, PartialEq)]
pub(super) struct CommunicationRow<'a> {
    pub(super) communication_id: Uuid,
    pub(super) board_id: Uuid,
    pub(super) position: i32,
    pub(super) kind: CommunicationKind,
    pub(super) message: &'a str,
    pub(super) created_at: DateTime<Utc>,
}

/// Every relational row of one board.
#[derive(Default)]
pub(super) struct BoardRows<'a> {
    pub(super) board: Vec<BoardRow<'a>>,
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

/// A list index as the `position` column stores it: a board's lists are far shorter than
/// `i32::MAX`, and one that is not is a broken board, not a wrapped position.
fn position(index: usize) -> Result<i32, Error> {
    i32::try_from(index).map_err(|_| {
        Error::invariant(
            "BOARD_LIST_POSITION",
            format!("a board list has an element at {index}, past the position column's range"),
        )
    })
}

impl<'a> BoardRows<'a> {
    pub(super) fn of(board: &'a Board) -> Result<Self, Error> {
        let board_id = board.board_id;
        let mut rows = Self {
            board: vec![BoardRow {
                board_id,
                user_id: board.user_id,
                season_id: &board.season_id,
                time_zone: board.time_zone.name(),
                generated_at: board.generated_at,
                updated_at: board.updated_at,
                last_weekly_summary: board.last_weekly_summary,
                legacy_fields: serde_json::Value::Object(board.legacy_fields.clone()),
            }],
            ..Self::default()
        };
        rows.slots = board
            .slots
            .iter()
            .map(|slot| SlotRow {
                slot_id: slot.slot_id,
                board_id,
                slot_key: slot.slot_key,
                state: slot.state,
                mission_id: slot.mission_id,
                run_id: slot.run_id,
                petals_total: slot.petals_total,
                petals_remaining: slot.petals_remaining,
                cooldown_until: slot.cooldown_until,
                reroll_remaining: slot.reroll_remaining,
                reroll_used_at: slot.reroll_used_at,
                reroll_reset_at: slot.reroll_reset_at,
                offers: slot.offers,
                legacy_fields: serde_json::Value::Object(slot.legacy_fields.clone()),
            })
            .collect();
        for (index, run) in board.runs.iter().enumerate() {
            rows.runs.push(RunRow {
                run_id: run.run_id,
                board_id,
                slot_key: run.slot_key,
                position: position(index)?,
                mission_id: run.mission_id,
                status: run.status,
                selected_at: run.selected_at,
                start_date: run.start_date,
                updated_at: run.updated_at,
                expires_at: run.expires_at,
                cooldown_until: run.cooldown_until,
                completion_at: run.completion_at,
                failure_at: run.failure_at,
                claim_id: run.claim_id,
                reward: run.reward.as_ref(),
            });
            rows.progress.push(ProgressRow {
                run_id: run.run_id,
                current: run.progress.current,
                target: run.progress.target,
                unit: run.progress.unit,
                updated_at: run.progress.updated_at,
            });
            for (index, heartbeat) in run.heartbeats.iter().enumerate() {
                rows.heartbeats.push(HeartbeatRow {
                    heartbeat_id: heartbeat.heartbeat_id,
                    run_id: run.run_id,
                    position: position(index)?,
                    date: heartbeat.date,
                    petals_before: heartbeat.petals_before,
                    petals_after: heartbeat.petals_after,
                    created_at: heartbeat.created_at,
                });
            }
            rows.days.extend(run.days.iter().map(|day| DayRow {
                run_id: run.run_id,
                local_date: day.date,
                outcome: day.outcome,
                effect_instance_id: day.effect_instance_id,
                petals_after: day.petals_after,
                closed_at: day.closed_at,
            }));
        }
        rows.boss_runs = board
            .boss
            .iter()
            .map(|boss| BossRunRow {
                boss_run_id: boss.boss_run_id,
                board_id,
                boss_id: boss.boss_id,
                phase: boss.phase,
                shield_current: boss.shield_current,
                shield_max: boss.shield_max,
                linked_task_id: boss.linked_task_id,
                linked_at: boss.linked_at,
                phase2_ready: boss.phase2_ready,
                phase2_proof: boss.phase2_proof.as_deref(),
                phase2_submitted_at: boss.phase2_submitted_at,
                completed_at: boss.completed_at,
                claim_id: boss.claim_id,
            })
            .collect();
        rows.effects = board
            .effects
            .iter()
            .enumerate()
            .map(|(index, effect)| {
                Ok(EffectRow {
                    effect_instance_id: effect.effect_instance_id,
                    board_id,
                    position: position(index)?,
                    effect_id: effect.effect_id,
                    active_from: effect.active_from,
                    active_until: effect.active_until,
                    consumed_at: effect.consumed_at,
                    protects_day: effect.protects_day,
                    payload_override: &effect.payload_override,
                })
            })
            .collect::<Result<_, Error>>()?;
        rows.claims = board
            .claims
            .iter()
            .enumerate()
            .map(|(index, claim)| {
                Ok(ClaimRow {
                    claim_id: claim.claim_id,
                    board_id,
                    user_id: board.user_id,
                    run_id: claim.run_id,
                    position: position(index)?,
                    source: claim.source,
                    claimed_at: claim.claimed_at,
                    reward_xp: claim.reward.xp,
                    reward_currency: claim.reward.currency,
                    reward_items: &claim.reward.items,
                    reward_badge_id: claim.reward.badge_id,
                    reward_aura_id: claim.reward.aura_id,
                })
            })
            .collect::<Result<_, Error>>()?;
        rows.communications = board
            .communications
            .iter()
            .enumerate()
            .map(|(index, communication)| {
                Ok(CommunicationRow {
                    communication_id: communication.communication_id,
                    board_id,
                    position: position(index)?,
                    kind: communication.kind,
                    message: &communication.message,
                    created_at: communication.created_at,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(rows)
    }
}
