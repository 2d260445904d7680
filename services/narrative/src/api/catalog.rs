//! GetFragment, GetExperience and the catalog upserts.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use tonic::Response;

use super::{Access, Answer, decode};
use crate::app::Narrative;
use crate::domain::ReactionReward;
use crate::proto;

pub async fn get_fragment(
    n: &Narrative,
    body: &pb::GetFragmentRequest,
    access: &Access,
) -> Answer<pb::GetFragmentResponse> {
    let mut v = Violations::new();
    let fragment_id = v.uuid("fragment_id", &body.fragment_id);
    let user = v.optional_uuid("user_id", &body.user_id);
    v.finish()?;
    if let Some(user) = user {
        access.owner(user)?;
    }
    if body.include_content {
        access.admin()?;
    }
    let view = n.fragment(fragment_id, user, body.include_content).await?;
    Ok(Response::new(pb::GetFragmentResponse {
        fragment: Some(proto::fragment(&view)),
        content_shown: view.content_shown,
        check: view.check.as_ref().map(proto::check),
        progress: view.progress.as_ref().map(proto::fragment_progress),
    }))
}

pub async fn get_experience(
    n: &Narrative,
    body: &pb::GetExperienceRequest,
) -> Answer<pb::GetExperienceResponse> {
    let mut v = Violations::new();
    let id = v.uuid("experience_id", &body.experience_id);
    v.finish()?;
    let (experience, created, updated) = n.experience(id).await?;
    Ok(Response::new(pb::GetExperienceResponse {
        experience: Some(proto::experience(&experience, created, updated)),
    }))
}

pub async fn upsert_fragment(
    n: &Narrative,
    body: &pb::UpsertFragmentRequest,
    access: &Access,
) -> Answer<pb::UpsertFragmentResponse> {
    let mut v = Violations::new();
    let input = decode::fragment(&mut v, body.fragment.as_ref());
    v.finish()?;
    access.admin()?;
    let (view, created) = n.upsert_fragment(&input).await?;
    Ok(Response::new(pb::UpsertFragmentResponse {
        fragment: Some(proto::fragment(&view)),
        created,
    }))
}

pub async fn upsert_decision(
    n: &Narrative,
    body: &pb::UpsertDecisionRequest,
    access: &Access,
) -> Answer<pb::UpsertDecisionResponse> {
    let mut v = Violations::new();
    let decision = decode::decision(&mut v, body.decision.as_ref());
    v.finish()?;
    access.admin()?;
    let created = n.upsert_decision(&decision).await?;
    Ok(Response::new(pb::UpsertDecisionResponse {
        decision: Some(proto::decision(&decision)),
        created,
    }))
}

pub async fn upsert_experience(
    n: &Narrative,
    body: &pb::UpsertExperienceRequest,
    access: &Access,
) -> Answer<pb::UpsertExperienceResponse> {
    let mut v = Violations::new();
    let experience = decode::experience(&mut v, body.experience.as_ref());
    v.finish()?;
    access.admin()?;
    let (stored, created_at, updated_at, created) = n.upsert_experience(&experience).await?;
    Ok(Response::new(pb::UpsertExperienceResponse {
        experience: Some(proto::experience(&stored, created_at, updated_at)),
        created,
    }))
}

pub async fn upsert_reaction_reward(
    n: &Narrative,
    body: &pb::UpsertReactionRewardRequest,
    access: &Access,
) -> Answer<pb::UpsertReactionRewardResponse> {
    let mut v = Violations::new();
    let reward = body.reward.clone().unwrap_or_default();
    if body.reward.is_none() {
        v.add("reward", "REQUIRED", "is required");
    }
    let content = decode::content(&mut v, "reward.content", reward.content.as_ref());
    let reaction = decode::reaction_text(&mut v, "reward.reaction", &reward.reaction);
    if reward.besitos < 1 || reward.besitos > crate::domain::rules::MAX_AMOUNT {
        v.add(
            "reward.besitos",
            if reward.besitos < 0 {
                "NEGATIVE_AMOUNT"
            } else {
                "INVALID_AMOUNT"
            },
            format!(
                "must be between 1 and {}, got {}",
                crate::domain::rules::MAX_AMOUNT,
                reward.besitos
            ),
        );
    }
    let content = v.finish_with(content)?;
    access.admin()?;
    let reward = ReactionReward {
        content,
        reaction,
        besitos: reward.besitos,
        active: reward.active,
    };
    n.upsert_reaction_reward(&reward).await?;
    Ok(Response::new(pb::UpsertReactionRewardResponse {
        reward: Some(proto::reaction_reward(&reward)),
    }))
}
