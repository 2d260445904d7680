//! Domain → `phoenix.narrative.v1` conversions, for the API's answers and the events'
//! payloads. (Requests are decoded and validated in `api`.)

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::convert::{optional_timestamp, timestamp};
use uuid::Uuid;

use crate::app::FragmentView;
use crate::domain::experience::Status;
use crate::domain::{
    CheckStatus, ContentKind, ContentRef, Decision, Experience, ExperienceProgress, ExternalFact,
    FragmentProgress, ItemAmount, Metrics, Reaction, ReactionReward, RequirementCheck,
    Requirements, Reverted, Rewards, TakenDecision, Target,
};

pub fn ids(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

pub fn optional_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

pub fn millis(ms: i64) -> prost_types::Duration {
    phoenix_runtime::convert::duration(chrono::Duration::milliseconds(ms))
}

fn items(items: &[ItemAmount]) -> Vec<pb::ItemAmount> {
    items
        .iter()
        .map(|i| pb::ItemAmount {
            item_id: i.item_id.clone(),
            quantity: i.quantity,
        })
        .collect()
}

pub fn rewards(r: &Rewards) -> pb::Rewards {
    pb::Rewards {
        besitos: r.besitos,
        items: items(&r.items),
        unlock_fragment_ids: ids(&r.unlock_fragments),
        unlock_experience_ids: ids(&r.unlock_experiences),
        achievement_ids: r.achievements.clone(),
    }
}

pub fn requirements(r: &Requirements) -> pb::Requirements {
    pb::Requirements {
        vip_required: r.vip_required,
        min_level: r.min_level,
        required_items: items(&r.required_items),
        required_achievement_ids: r.required_achievements.clone(),
        required_experience_ids: ids(&r.required_experiences),
        required_fragment_ids: ids(&r.required_fragments),
    }
}

pub fn metrics(m: &Metrics) -> pb::FragmentMetrics {
    pb::FragmentMetrics {
        view_count: m.view_count,
        visitor_count: m.visitor_count,
        completion_count: m.completion_count,
        completion_rate: m.completion_rate_hundredths() as f64 / 100.0,
        average_time_spent: Some(millis(m.average_time_spent_ms())),
    }
}

pub fn decision(d: &Decision) -> pb::Decision {
    pb::Decision {
        id: d.id.to_string(),
        fragment_id: d.fragment_id.to_string(),
        label: d.label.clone(),
        next_fragment_id: optional_id(d.next_fragment),
        rewards: Some(rewards(&d.rewards)),
        position: d.position,
    }
}

pub fn fragment(view: &FragmentView) -> pb::Fragment {
    let f = &view.fragment;
    let input = &f.input;
    pb::Fragment {
        id: input.id.to_string(),
        title: input.title.clone(),
        content: input.content.clone(),
        preview: input.preview.clone(),
        vip_exclusive: input.vip_exclusive,
        experience_id: optional_id(input.experience.map(|(id, _)| id)),
        experience_sequence: input.experience.map_or(0, |(_, s)| s),
        requirements: Some(requirements(&input.requirements)),
        rewards: Some(rewards(&input.rewards)),
        completes_level: input.completes_level,
        metrics: Some(metrics(&f.metrics)),
        decisions: view.decisions.iter().map(decision).collect(),
        create_time: Some(timestamp(f.created_at)),
        update_time: Some(timestamp(f.updated_at)),
    }
}

pub fn check(c: &RequirementCheck) -> pb::RequirementCheck {
    use pb::external_fact::Fact;
    let status = match c.status {
        CheckStatus::Met => pb::RequirementStatus::Met,
        CheckStatus::NeedsExternalFacts => pb::RequirementStatus::NeedsExternalFacts,
        CheckStatus::NotMet => pb::RequirementStatus::NotMet,
    };
    pb::RequirementCheck {
        status: status.into(),
        missing_fragment_ids: ids(&c.missing_fragments),
        missing_experience_ids: ids(&c.missing_experiences),
        external_facts: c
            .external
            .iter()
            .map(|fact| pb::ExternalFact {
                fact: Some(match fact {
                    ExternalFact::Vip => Fact::Vip(true),
                    ExternalFact::MinLevel(level) => Fact::MinLevel(*level),
                    ExternalFact::Item(item) => Fact::Item(pb::ItemAmount {
                        item_id: item.item_id.clone(),
                        quantity: item.quantity,
                    }),
                    ExternalFact::Achievement(id) => Fact::AchievementId(id.clone()),
                }),
            })
            .collect(),
    }
}

pub fn fragment_progress(p: &FragmentProgress) -> pb::FragmentProgress {
    pb::FragmentProgress {
        fragment_id: p.fragment_id.to_string(),
        unlocked: p.unlocked_at.is_some(),
        unlock_time: optional_timestamp(p.unlocked_at),
        visit_count: p.visit_count,
        time_spent: Some(millis(p.time_spent_ms)),
        first_visit_time: optional_timestamp(p.first_visit_at),
        last_visit_time: optional_timestamp(p.last_visit_at),
        decision_id: optional_id(p.decision.map(|(id, _)| id)),
        decision_time: optional_timestamp(p.decision.map(|(_, at)| at)),
    }
}

pub fn taken_decision(t: &TakenDecision) -> pb::TakenDecision {
    pb::TakenDecision {
        user_id: t.user_id.to_string(),
        fragment_id: t.fragment_id.to_string(),
        decision_id: t.decision_id.to_string(),
        take_time: Some(timestamp(t.taken_at)),
    }
}

pub fn reverted(r: Reverted) -> i32 {
    match r {
        Reverted::Reverted => pb::RevertOutcome::Reverted,
        Reverted::NotApplied => pb::RevertOutcome::NotApplied,
    }
    .into()
}

pub fn experience(
    e: &Experience,
    created: chrono::DateTime<chrono::Utc>,
    updated: chrono::DateTime<chrono::Utc>,
) -> pb::Experience {
    use pb::experience_component::Target as T;
    pb::Experience {
        id: e.id.to_string(),
        title: e.title.clone(),
        description: e.description.clone(),
        components: e
            .components
            .iter()
            .enumerate()
            .map(|(i, target)| pb::ExperienceComponent {
                sequence: i32::try_from(i + 1).unwrap_or(i32::MAX),
                target: Some(match target {
                    Target::Fragment(id) => T::FragmentId(id.to_string()),
                    Target::Mission(id) => T::MissionId(id.clone()),
                }),
            })
            .collect(),
        rewards: Some(rewards(&e.rewards)),
        create_time: Some(timestamp(created)),
        update_time: Some(timestamp(updated)),
    }
}

pub fn experience_progress(p: &ExperienceProgress) -> pb::ExperienceProgress {
    let status = match p.status {
        Status::NotStarted => pb::ExperienceStatus::NotStarted,
        Status::Started => pb::ExperienceStatus::Started,
        Status::Completed => pb::ExperienceStatus::Completed,
        Status::Abandoned => pb::ExperienceStatus::Abandoned,
    };
    pb::ExperienceProgress {
        experience_id: p.experience_id.to_string(),
        status: status.into(),
        unlocked: p.unlocked_at.is_some(),
        completed_sequences: p.completed.clone(),
        start_time: optional_timestamp(p.started_at),
        complete_time: optional_timestamp(p.completed_at),
        abandon_time: optional_timestamp(p.abandoned_at),
        component_count: p.component_count,
    }
}

pub fn content(c: &ContentRef) -> pb::ContentRef {
    let kind = match c.kind {
        ContentKind::Fragment => pb::ContentKind::Fragment,
        ContentKind::Experience => pb::ContentKind::Experience,
        ContentKind::ChannelPost => pb::ContentKind::ChannelPost,
    };
    pb::ContentRef {
        kind: kind.into(),
        content_id: c.id.clone(),
    }
}

pub fn reaction(r: &Reaction) -> pb::Reaction {
    pb::Reaction {
        user_id: r.user_id.to_string(),
        content: Some(content(&r.content)),
        reaction: r.reaction.clone(),
        create_time: Some(timestamp(r.created_at)),
        besitos: r.besitos,
    }
}

pub fn reaction_reward(r: &ReactionReward) -> pb::ReactionReward {
    pb::ReactionReward {
        content: Some(content(&r.content)),
        reaction: r.reaction.clone(),
        besitos: r.besitos,
        active: r.active,
    }
}
