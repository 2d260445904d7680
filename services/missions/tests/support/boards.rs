//! Boards built by hand (not by the rules), so the store is tested on its own.

use chrono::{DateTime, NaiveDate, Utc};
use phoenix_missions::domain::board::{
    Board, BossRun, Claim, ClaimSource, Communication, CommunicationKind, DayClose, DayOutcome,
    EffectInstance, Heartbeat, Progress, ProgressUnit, Reward, RewardItem, Run, RunStatus, Slot,
    SlotKey, SlotState,
};
use uuid::Uuid;

pub fn at(instant: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(instant)
        .expect("an RFC 3339 instant")
        .with_timezone(&Utc)
}

pub fn date(day: &str) -> NaiveDate {
    day.parse().expect("a YYYY-MM-DD date")
}

fn id() -> Uuid {
    Uuid::new_v4()
}

/// A lived-in board of a user in Madrid on Friday 2024-03-08: main runs (a lost petal, a kept
/// day, a protected day), hunt's run was claimed, skill's run failed and cools down; the boss is
/// in phase 2. Every field has a value of its own, fractions of seconds included, so a column
/// mixed up with another one shows.
pub fn board(user_id: Uuid, season_id: &str) -> Board {
    let main_mission = id();
    let (main_run, hunt_run, skill_run) = (id(), id(), id());
    let amulet = id();
    let claim = id();
    let badge = id();
    let aura = id();
    Board {
        board_id: id(),
        user_id,
        season_id: season_id.to_owned(),
        time_zone: chrono_tz::Europe::Madrid,
        generated_at: at("2024-03-01T08:00:00.123Z"),
        updated_at: at("2024-03-08T09:30:00.123456Z"),
        slots: [
            Slot {
                slot_id: id(),
                slot_key: SlotKey::Main,
                state: SlotState::Active,
                mission_id: main_mission,
                run_id: Some(main_run),
                petals_total: 3,
                petals_remaining: 2,
                cooldown_until: None,
                reroll_remaining: 0,
                reroll_used_at: Some(at("2024-03-04T07:00:00Z")),
                reroll_reset_at: Some(at("2024-03-10T23:00:00Z")),
                offers: 2,
                legacy_fields: Default::default(),
            },
            Slot {
                slot_id: id(),
                slot_key: SlotKey::Hunt,
                state: SlotState::Claimed,
                mission_id: id(),
                run_id: Some(hunt_run),
                petals_total: 4,
                petals_remaining: 4,
                cooldown_until: Some(at("2024-03-09T09:00:00Z")),
                reroll_remaining: 1,
                reroll_used_at: None,
                reroll_reset_at: None,
                offers: 5,
                legacy_fields: Default::default(),
            },
            Slot {
                slot_id: id(),
                slot_key: SlotKey::Skill,
                state: SlotState::Cooldown,
                mission_id: id(),
                run_id: Some(skill_run),
                petals_total: 3,
                petals_remaining: 0,
                cooldown_until: Some(at("2024-03-08T23:00:00Z")),
                reroll_remaining: 1,
                reroll_used_at: None,
                reroll_reset_at: Some(at("2024-03-17T23:00:00Z")),
                offers: 1,
                legacy_fields: Default::default(),
            },
        ],
        runs: vec![
            Run {
                run_id: hunt_run,
                slot_key: SlotKey::Hunt,
                mission_id: id(),
                status: RunStatus::Claimed,
                selected_at: at("2024-03-01T08:05:00Z"),
                start_date: Some(date("2024-03-01")),
                updated_at: at("2024-03-08T09:00:00Z"),
                expires_at: at("2024-03-07T23:00:00Z"),
                cooldown_until: Some(at("2024-03-09T09:00:00Z")),
                completion_at: Some(at("2024-03-06T18:00:00Z")),
                failure_at: None,
                claim_id: Some(claim),
                reward: Some(Reward {
                    xp: 120,
                    currency: 50,
                    items: vec![RewardItem {
                        code: "focus-potion".into(),
                        quantity: 2,
                    }],
                    badge_id: Some(badge),
                    aura_id: Some(aura),
                }),
                progress: Progress {
                    current: 90,
                    target: 90,
                    unit: ProgressUnit::Minutes,
                    updated_at: at("2024-03-06T18:00:00Z"),
                },
                heartbeats: vec![Heartbeat {
                    heartbeat_id: id(),
                    date: date("2024-03-02"),
                    petals_before: 4,
                    petals_after: 4,
                    created_at: at("2024-03-02T10:00:00Z"),
                }],
                days: vec![DayClose {
                    date: date("2024-03-01"),
                    outcome: DayOutcome::PetalLost,
                    effect_instance_id: None,
                    petals_after: 3,
                    closed_at: at("2024-03-01T23:00:00Z"),
                }],
            },
            Run {
                run_id: skill_run,
                slot_key: SlotKey::Skill,
                mission_id: id(),
                status: RunStatus::Failed,
                selected_at: at("2024-03-02T08:00:00Z"),
                updated_at: at("2024-03-07T23:00:00Z"),
                expires_at: at("2024-03-09T23:00:00Z"),
                cooldown_until: Some(at("2024-03-08T23:00:00Z")),
                completion_at: None,
                failure_at: Some(at("2024-03-07T23:00:00Z")),
                claim_id: None,
                // Started before runs kept their start date and reward.
                start_date: None,
                reward: None,
                progress: Progress {
                    current: 1,
                    target: 4,
                    unit: ProgressUnit::Sessions,
                    updated_at: at("2024-03-03T12:00:00Z"),
                },
                heartbeats: vec![],
                days: vec![],
            },
            Run {
                run_id: main_run,
                slot_key: SlotKey::Main,
                mission_id: main_mission,
                status: RunStatus::Active,
                selected_at: at("2024-03-05T07:00:00Z"),
                start_date: Some(date("2024-03-05")),
                updated_at: at("2024-03-08T09:30:00.5Z"),
                expires_at: at("2024-03-11T23:00:00Z"),
                cooldown_until: None,
                completion_at: None,
                failure_at: None,
                claim_id: None,
                reward: Some(Reward {
                    xp: 75,
                    currency: 0,
                    items: vec![],
                    badge_id: None,
                    aura_id: None,
                }),
                progress: Progress {
                    current: 2,
                    target: 5,
                    unit: ProgressUnit::Tasks,
                    updated_at: at("2024-03-07T20:00:00.000001Z"),
                },
                heartbeats: vec![
                    Heartbeat {
                        heartbeat_id: id(),
                        date: date("2024-03-06"),
                        petals_before: 2,
                        petals_after: 2,
                        created_at: at("2024-03-06T19:00:00Z"),
                    },
                    Heartbeat {
                        heartbeat_id: id(),
                        date: date("2024-03-08"),
                        petals_before: 2,
                        petals_after: 2,
                        created_at: at("2024-03-08T09:30:00.5Z"),
                    },
                ],
                days: vec![
                    DayClose {
                        date: date("2024-03-05"),
                        outcome: DayOutcome::PetalLost,
                        effect_instance_id: None,
                        petals_after: 2,
                        closed_at: at("2024-03-05T23:00:00Z"),
                    },
                    DayClose {
                        date: date("2024-03-06"),
                        outcome: DayOutcome::Kept,
                        effect_instance_id: None,
                        petals_after: 2,
                        closed_at: at("2024-03-06T23:00:01Z"),
                    },
                    DayClose {
                        date: date("2024-03-07"),
                        outcome: DayOutcome::Protected,
                        effect_instance_id: Some(amulet),
                        petals_after: 2,
                        closed_at: at("2024-03-07T23:00:02Z"),
                    },
                ],
            },
        ],
        boss: Some(BossRun {
            boss_run_id: id(),
            boss_id: id(),
            phase: 2,
            shield_current: 0,
            shield_max: 10,
            linked_task_id: Some(id()),
            linked_at: Some(at("2024-03-01T09:00:00Z")),
            phase2_ready: true,
            phase2_proof: None,
            phase2_submitted_at: None,
            completed_at: None,
            claim_id: None,
        }),
        effects: vec![
            EffectInstance {
                effect_instance_id: amulet,
                effect_id: id(),
                active_from: at("2024-03-04T10:00:00Z"),
                active_until: None,
                consumed_at: Some(at("2024-03-07T23:00:02Z")),
                protects_day: true,
                payload_override: serde_json::json!({}),
            },
            EffectInstance {
                effect_instance_id: id(),
                effect_id: aura,
                active_from: at("2024-03-06T18:00:00Z"),
                active_until: Some(at("2024-03-13T18:00:00Z")),
                consumed_at: None,
                protects_day: false,
                payload_override: serde_json::json!({"glow": "gold", "intensity": 2}),
            },
        ],
        claims: vec![Claim {
            claim_id: claim,
            run_id: hunt_run,
            source: ClaimSource::Mission,
            claimed_at: at("2024-03-08T09:00:00Z"),
            reward: Reward {
                xp: 120,
                currency: 50,
                items: vec![RewardItem {
                    code: "focus-potion".into(),
                    quantity: 2,
                }],
                badge_id: Some(badge),
                aura_id: Some(aura),
            },
        }],
        communications: vec![
            Communication {
                communication_id: id(),
                kind: CommunicationKind::Weekly,
                message: "Your week: 2 kept days, 1 petal lost.".into(),
                created_at: at("2024-03-04T07:00:00Z"),
            },
            Communication {
                communication_id: id(),
                kind: CommunicationKind::Daily,
                message: "A petal fell: no heartbeat on Tuesday.".into(),
                created_at: at("2024-03-05T23:00:00Z"),
            },
            Communication {
                communication_id: id(),
                kind: CommunicationKind::System,
                message: "Skill mission failed: no petals left.".into(),
                created_at: at("2024-03-07T23:00:00Z"),
            },
        ],
        last_weekly_summary: Some(date("2024-03-04")),
        legacy_fields: Default::default(),
    }
}

/// A board with nothing running (no day to close): three idle slots.
pub fn idle_board(user_id: Uuid, season_id: &str) -> Board {
    let mut board = board(user_id, season_id);
    board.runs.clear();
    board.claims.clear();
    for slot in &mut board.slots {
        slot.state = SlotState::Idle;
        slot.run_id = None;
        slot.cooldown_until = None;
        slot.petals_remaining = slot.petals_total;
    }
    board
}

/// The board's active run (the fixture's main run).
pub fn active_run(board: &mut Board) -> &mut Run {
    board
        .runs
        .iter_mut()
        .find(|run| run.status == RunStatus::Active)
        .expect("the board has an active run")
}
