//! Domain → protobuf: every response is rendered here, and the enums of requests read (the
//! requests themselves are decoded and validated by each service's module).

use chrono::{DateTime, NaiveDate, Utc};
use phoenix_proto::missions::v1 as pb;
use phoenix_runtime::convert;
use uuid::Uuid;

use crate::app::Shown;
use crate::domain::board::{
    Board, BossRun, Claim, ClaimSource, Communication, CommunicationKind, DayClose, DayOutcome,
    EffectInstance, Heartbeat, Progress, ProgressUnit, Reward, Run, RunStatus, Slot, SlotKey,
    SlotState,
};
use crate::domain::catalog::{
    Badge, Boss, Catalog, Difficulty, EffectDefinition, EffectKind, Mission, MissionTarget,
};
use crate::domain::rules::{self, RuleSettings};

/// Every time a response carries, within the protobuf range (see `convert::timestamp`): on
/// 9999-12-31 the next local midnight, a run's end or a reroll's return fall in the year 10000.
pub(super) fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    convert::timestamp(time)
}

fn optional_timestamp(time: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    time.map(timestamp)
}

fn optional_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

fn date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub fn slot_key(key: SlotKey) -> pb::SlotKey {
    match key {
        SlotKey::Main => pb::SlotKey::Main,
        SlotKey::Hunt => pb::SlotKey::Hunt,
        SlotKey::Skill => pb::SlotKey::Skill,
    }
}

/// The domain slot of a request's enum value; None for UNSPECIFIED or unknown numbers.
pub fn slot_key_from(value: i32) -> Option<SlotKey> {
    match pb::SlotKey::try_from(value).ok()? {
        pb::SlotKey::Main => Some(SlotKey::Main),
        pb::SlotKey::Hunt => Some(SlotKey::Hunt),
        pb::SlotKey::Skill => Some(SlotKey::Skill),
        pb::SlotKey::Unspecified => None,
    }
}

fn slot_state(state: SlotState) -> pb::SlotState {
    match state {
        SlotState::Idle => pb::SlotState::Idle,
        SlotState::Active => pb::SlotState::Active,
        SlotState::Succeeded => pb::SlotState::Succeeded,
        SlotState::Failed => pb::SlotState::Failed,
        SlotState::Cooldown => pb::SlotState::Cooldown,
        SlotState::Claimed => pb::SlotState::Claimed,
    }
}

fn run_status(status: RunStatus) -> pb::RunStatus {
    match status {
        RunStatus::Active => pb::RunStatus::Active,
        RunStatus::Succeeded => pb::RunStatus::Succeeded,
        RunStatus::Failed => pb::RunStatus::Failed,
        RunStatus::Claimed => pb::RunStatus::Claimed,
    }
}

fn progress_unit(unit: ProgressUnit) -> pb::ProgressUnit {
    match unit {
        ProgressUnit::Tasks => pb::ProgressUnit::Tasks,
        ProgressUnit::Sessions => pb::ProgressUnit::Sessions,
        ProgressUnit::Minutes => pb::ProgressUnit::Minutes,
        ProgressUnit::Points => pb::ProgressUnit::Points,
    }
}

pub fn progress_unit_from(value: i32) -> Option<ProgressUnit> {
    match pb::ProgressUnit::try_from(value).ok()? {
        pb::ProgressUnit::Tasks => Some(ProgressUnit::Tasks),
        pb::ProgressUnit::Sessions => Some(ProgressUnit::Sessions),
        pb::ProgressUnit::Minutes => Some(ProgressUnit::Minutes),
        pb::ProgressUnit::Points => Some(ProgressUnit::Points),
        pb::ProgressUnit::Unspecified => None,
    }
}

fn day_outcome(outcome: DayOutcome) -> pb::DayOutcome {
    match outcome {
        DayOutcome::Kept => pb::DayOutcome::Kept,
        DayOutcome::Protected => pb::DayOutcome::Protected,
        DayOutcome::PetalLost => pb::DayOutcome::PetalLost,
    }
}

fn communication_kind(kind: CommunicationKind) -> pb::CommunicationKind {
    match kind {
        CommunicationKind::Daily => pb::CommunicationKind::Daily,
        CommunicationKind::Weekly => pb::CommunicationKind::Weekly,
        CommunicationKind::System => pb::CommunicationKind::System,
    }
}

fn claim_source(source: ClaimSource) -> pb::ClaimSource {
    match source {
        ClaimSource::Mission => pb::ClaimSource::Mission,
        ClaimSource::Boss => pb::ClaimSource::Boss,
    }
}

pub fn reward(reward: &Reward) -> pb::Reward {
    pb::Reward {
        xp: reward.xp,
        currency: reward.currency,
        items: reward
            .items
            .iter()
            .map(|item| pb::RewardItem {
                code: item.code.clone(),
                quantity: item.quantity,
            })
            .collect(),
        badge_id: optional_id(reward.badge_id),
        aura_id: optional_id(reward.aura_id),
    }
}

fn progress(progress: &Progress) -> pb::Progress {
    pb::Progress {
        current: progress.current,
        target: progress.target,
        unit: progress_unit(progress.unit).into(),
    }
}

pub fn heartbeat(heartbeat: &Heartbeat) -> pb::Heartbeat {
    pb::Heartbeat {
        heartbeat_id: heartbeat.heartbeat_id.to_string(),
        date: date(heartbeat.date),
        petals_before: heartbeat.petals_before.into(),
        petals_after: heartbeat.petals_after.into(),
        create_time: Some(timestamp(heartbeat.created_at)),
    }
}

pub fn closed_day(run_id: Uuid, day: &DayClose) -> pb::ClosedDay {
    pb::ClosedDay {
        run_id: run_id.to_string(),
        date: date(day.date),
        outcome: day_outcome(day.outcome).into(),
        petals_after: day.petals_after.into(),
        effect_instance_id: optional_id(day.effect_instance_id),
    }
}

/// A run as of `today` (the user's local date now, for `heartbeat_today`).
pub fn run(run: &Run, today: NaiveDate) -> pb::Run {
    pb::Run {
        run_id: run.run_id.to_string(),
        slot_key: slot_key(run.slot_key).into(),
        mission_id: run.mission_id.to_string(),
        status: run_status(run.status).into(),
        select_time: Some(timestamp(run.selected_at)),
        expire_time: Some(timestamp(run.expires_at)),
        complete_time: optional_timestamp(run.completion_at),
        fail_time: optional_timestamp(run.failure_at),
        claim_id: optional_id(run.claim_id),
        progress: Some(progress(&run.progress)),
        heartbeat_today: run.heartbeat_on(today).is_some(),
        heartbeats: run.heartbeats.iter().map(heartbeat).collect(),
        days: run
            .days
            .iter()
            .map(|day| closed_day(run.run_id, day))
            .collect(),
        reward: run.reward.as_ref().map(reward),
    }
}

pub fn slot(board: &Board, slot: &Slot, catalog: &Catalog, today: NaiveDate) -> pb::Slot {
    pb::Slot {
        slot_id: slot.slot_id.to_string(),
        slot_key: slot_key(slot.slot_key).into(),
        state: slot_state(slot.state).into(),
        mission_id: slot.mission_id.to_string(),
        mission_name: catalog
            .mission(slot.mission_id)
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        petals_total: slot.petals_total.into(),
        petals_remaining: slot.petals_remaining.into(),
        cooldown_until: optional_timestamp(slot.cooldown_until),
        reroll_remaining: slot.reroll_remaining.into(),
        reroll_reset_time: optional_timestamp(slot.reroll_reset_at),
        run: slot
            .run_id
            .and_then(|id| board.run(id))
            .map(|r| run(r, today)),
    }
}

pub fn boss_run(boss: &BossRun, catalog: &Catalog) -> pb::BossRun {
    pb::BossRun {
        boss_run_id: boss.boss_run_id.to_string(),
        boss_id: boss.boss_id.to_string(),
        boss_name: catalog
            .boss(boss.boss_id)
            .map(|b| b.name.clone())
            .unwrap_or_default(),
        phase: boss.phase.into(),
        shield_current: boss.shield_current.into(),
        shield_max: boss.shield_max.into(),
        linked_task_id: optional_id(boss.linked_task_id),
        phase2_proof: boss.phase2_proof.clone().unwrap_or_default(),
        complete_time: optional_timestamp(boss.completed_at),
        claim_id: optional_id(boss.claim_id),
    }
}

pub fn effect(effect: &EffectInstance, catalog: &Catalog) -> pb::Effect {
    pb::Effect {
        effect_instance_id: effect.effect_instance_id.to_string(),
        effect_id: effect.effect_id.to_string(),
        name: catalog
            .effect(effect.effect_id)
            .map(|e| e.name.clone())
            .unwrap_or_default(),
        active_from: Some(timestamp(effect.active_from)),
        active_until: optional_timestamp(effect.active_until),
        consume_time: optional_timestamp(effect.consumed_at),
        protects_day: effect.protects_day,
    }
}

pub fn claim(claim: &Claim) -> pb::Claim {
    pb::Claim {
        claim_id: claim.claim_id.to_string(),
        run_id: claim.run_id.to_string(),
        source: claim_source(claim.source).into(),
        claim_time: Some(timestamp(claim.claimed_at)),
        reward: Some(reward(&claim.reward)),
    }
}

fn communication(communication: &Communication) -> pb::Communication {
    pb::Communication {
        communication_id: communication.communication_id.to_string(),
        kind: communication_kind(communication.kind).into(),
        message: communication.message.clone(),
        create_time: Some(timestamp(communication.created_at)),
    }
}

/// The board as its user sees it at `now`: the three slots with their current runs, the boss,
/// the effects active now, and the most recent communications and claims, newest first.
/// A board as shown at the time it was judged.
pub fn board(shown: &Shown, settings: &RuleSettings) -> pb::Board {
    let Shown {
        board,
        catalog,
        now,
    } = shown;
    let (catalog, now) = (&**catalog, *now);
    let today = rules::local_date(board.time_zone, now);
    let recent = settings.recent_communications;
    pb::Board {
        board_id: board.board_id.to_string(),
        user_id: board.user_id.to_string(),
        season_id: board.season_id.clone(),
        time_zone: board.time_zone.name().to_owned(),
        local_date: date(today),
        next_reset_time: Some(timestamp(rules::next_day_close_at(board, now))),
        slots: board
            .slots
            .iter()
            .map(|s| slot(board, s, catalog, today))
            .collect(),
        boss: board.boss.as_ref().map(|b| boss_run(b, catalog)),
        active_effects: board
            .effects
            .iter()
            .filter(|e| e.is_active_at(now))
            .map(|e| effect(e, catalog))
            .collect(),
        communications: board
            .communications
            .iter()
            .rev()
            .take(recent)
            .map(communication)
            .collect(),
        claims: board.claims.iter().rev().take(recent).map(claim).collect(),
        create_time: Some(timestamp(board.generated_at)),
        update_time: Some(timestamp(board.updated_at)),
    }
}

// ---- catalog ----

fn difficulty(difficulty: Difficulty) -> pb::Difficulty {
    match difficulty {
        Difficulty::Low => pb::Difficulty::Low,
        Difficulty::Medium => pb::Difficulty::Medium,
        Difficulty::High => pb::Difficulty::High,
        Difficulty::Epic => pb::Difficulty::Epic,
    }
}

pub fn difficulty_from(value: i32) -> Option<Difficulty> {
    match pb::Difficulty::try_from(value).ok()? {
        pb::Difficulty::Low => Some(Difficulty::Low),
        pb::Difficulty::Medium => Some(Difficulty::Medium),
        pb::Difficulty::High => Some(Difficulty::High),
        pb::Difficulty::Epic => Some(Difficulty::Epic),
        pb::Difficulty::Unspecified => None,
    }
}

fn effect_kind(kind: EffectKind) -> pb::EffectKind {
    match kind {
        EffectKind::Amulet => pb::EffectKind::Amulet,
        EffectKind::Aura => pb::EffectKind::Aura,
    }
}

pub fn effect_kind_from(value: i32) -> Option<EffectKind> {
    match pb::EffectKind::try_from(value).ok()? {
        pb::EffectKind::Amulet => Some(EffectKind::Amulet),
        pb::EffectKind::Aura => Some(EffectKind::Aura),
        pb::EffectKind::Unspecified => None,
    }
}

pub fn mission(mission: &Mission) -> pb::Mission {
    pb::Mission {
        mission_id: mission.mission_id.to_string(),
        slot_key: slot_key(mission.slot_key).into(),
        name: mission.name.clone(),
        summary: mission.summary.clone(),
        requirements: mission.requirements.clone(),
        objective: mission.objective.clone(),
        difficulty: difficulty(mission.difficulty).into(),
        duration_days: mission.duration_days,
        progress_target: mission.progress_target,
        progress_unit: progress_unit(mission.progress_unit).into(),
        targets: mission.targets.iter().map(mission_target).collect(),
        reward: Some(reward(&mission.reward)),
        badge_ids: mission.badge_ids.iter().map(Uuid::to_string).collect(),
        metadata_json: mission.metadata.to_string(),
        active: mission.active,
    }
}

fn mission_target(target: &MissionTarget) -> pb::MissionTarget {
    pb::MissionTarget {
        target_id: target.target_id.to_string(),
        task_id: target.task_id.to_string(),
        name: target.name.clone(),
        tag: target.tag.clone(),
        sort_order: target.sort_order.into(),
    }
}

pub fn level(level: &crate::domain::levels::Level) -> pb::Level {
    pb::Level {
        level: level.level,
        min_xp: level.min_xp,
        name: level.name.clone(),
    }
}

pub fn earned_badge(badge: &crate::app::levels::EarnedBadge) -> pb::EarnedBadge {
    pb::EarnedBadge {
        badge_id: badge.badge_id.to_string(),
        season_id: badge.season_id.clone(),
        claim_id: badge.claim_id.to_string(),
        claim_time: Some(timestamp(badge.claimed_at)),
    }
}

pub fn badge(badge: &Badge) -> pb::Badge {
    pb::Badge {
        badge_id: badge.badge_id.to_string(),
        code: badge.code.clone(),
        name: badge.name.clone(),
        description: badge.description.clone(),
        artwork_url: badge.artwork_url.clone().unwrap_or_default(),
    }
}

pub fn effect_definition(effect: &EffectDefinition) -> pb::EffectDefinition {
    pb::EffectDefinition {
        effect_id: effect.effect_id.to_string(),
        kind: effect_kind(effect.kind).into(),
        name: effect.name.clone(),
        description: effect.description.clone(),
        payload_json: effect.payload.to_string(),
        duration_days: effect.duration_days.unwrap_or(0),
    }
}

pub fn boss(boss: &Boss) -> pb::Boss {
    pb::Boss {
        boss_id: boss.boss_id.to_string(),
        code: boss.code.clone(),
        name: boss.name.clone(),
        description: boss.description.clone(),
        shield_max: boss.shield_max.into(),
        reward: Some(reward(&boss.reward)),
        metadata_json: boss.metadata.to_string(),
    }
}

pub fn catalog(catalog: &Catalog) -> pb::GetCatalogResponse {
    pb::GetCatalogResponse {
        missions: catalog.missions.iter().map(mission).collect(),
        badges: catalog.badges.iter().map(badge).collect(),
        effects: catalog.effects.iter().map(effect_definition).collect(),
        bosses: catalog.bosses.iter().map(boss).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_9999_or_before_year_1_are_shown_at_the_ends() {
        let at = |seconds| DateTime::from_timestamp(seconds, 0).expect("an instant");
        let year_10000 = timestamp(at(convert::LAST_SECOND + 1));
        assert_eq!(
            (year_10000.seconds, year_10000.nanos),
            (convert::LAST_SECOND, 999_999_000)
        );
        let year_0 = timestamp(at(convert::FIRST_SECOND - 86_400));
        assert_eq!((year_0.seconds, year_0.nanos), (convert::FIRST_SECOND, 0));
        let within = at(1_780_000_000);
        assert_eq!(timestamp(within), convert::timestamp(within));
        assert_eq!(
            timestamp(at(convert::LAST_SECOND)).seconds,
            convert::LAST_SECOND
        );
    }
}
