//! CheckFragmentRequirements, RecordVisit, ApplyDecision, RevertDecision, UnlockFragments,
//! LockFragments, GetUserProgress.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;
use uuid::Uuid;

use super::{Access, Answer, MAX_BATCH_IDS, decode, keyed};
use crate::app::Narrative;
use crate::proto;

pub async fn check(
    n: &Narrative,
    body: &pb::CheckFragmentRequirementsRequest,
    access: &Access,
) -> Answer<pb::CheckFragmentRequirementsResponse> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", &body.user_id);
    let fragment = v.uuid("fragment_id", &body.fragment_id);
    v.finish()?;
    access.owner(user)?;
    let check = n.check_requirements(user, fragment).await?;
    Ok(Response::new(pb::CheckFragmentRequirementsResponse {
        check: Some(proto::check(&check)),
    }))
}

pub async fn visit(
    n: &Narrative,
    body: &pb::RecordVisitRequest,
    access: &Access,
) -> Answer<pb::RecordVisitResponse> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", &body.user_id);
    let fragment = v.uuid("fragment_id", &body.fragment_id);
    let ms = decode::time_spent(&mut v, body.time_spent.as_ref());
    let key = v.idempotency_key(&body.idempotency_key);
    let key = keyed(v, access, user, key, "RecordVisit", body)?;
    let outcome = n.record_visit(user, fragment, ms, &key).await?;
    Ok(Response::new(pb::RecordVisitResponse {
        progress: Some(proto::fragment_progress(&outcome.progress)),
        metrics: Some(proto::metrics(&outcome.metrics)),
    }))
}

/// The user, fragment and decision an ApplyDecision or RevertDecision names, validated whole,
/// with its key under `method` once the caller may act for the user.
fn decision_call(
    body: &impl prost::Message,
    ids: [&str; 3],
    key: &str,
    method: &'static str,
    access: &Access,
) -> Result<([Uuid; 3], RequestKey), tonic::Status> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", ids[0]);
    let fragment = v.uuid("fragment_id", ids[1]);
    let decision = v.uuid("decision_id", ids[2]);
    let key = v.idempotency_key(key);
    let key = keyed(v, access, user, key, method, body)?;
    Ok(([user, fragment, decision], key))
}

/// The user and the 1 to [`MAX_BATCH_IDS`] fragments an UnlockFragments or LockFragments
/// names, validated whole, with its key under `method`.
fn batch_call(
    body: &impl prost::Message,
    user: &str,
    fragments: &[String],
    key: &str,
    method: &'static str,
    access: &Access,
) -> Result<(Uuid, Vec<Uuid>, RequestKey), tonic::Status> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", user);
    let fragments = decode::id_batch(&mut v, "fragment_ids", fragments, MAX_BATCH_IDS);
    let key = v.idempotency_key(key);
    let key = keyed(v, access, user, key, method, body)?;
    Ok((user, fragments, key))
}

pub async fn apply(
    n: &Narrative,
    body: &pb::ApplyDecisionRequest,
    access: &Access,
) -> Answer<pb::ApplyDecisionResponse> {
    let ids = [body.user_id.as_str(), &body.fragment_id, &body.decision_id];
    let ([user, fragment, decision], key) =
        decision_call(body, ids, &body.idempotency_key, "ApplyDecision", access)?;
    let outcome = n.apply_decision(user, fragment, decision, &key).await?;
    Ok(Response::new(pb::ApplyDecisionResponse {
        decision: Some(proto::taken_decision(&outcome.taken)),
        rewards: Some(proto::rewards(&outcome.rewards)),
        next_fragment_id: proto::optional_id(outcome.next_fragment),
        completed_level: outcome.completed_level,
    }))
}

pub async fn revert(
    n: &Narrative,
    body: &pb::RevertDecisionRequest,
    access: &Access,
) -> Answer<pb::RevertDecisionResponse> {
    let ids = [body.user_id.as_str(), &body.fragment_id, &body.decision_id];
    let ([user, fragment, decision], key) =
        decision_call(body, ids, &body.idempotency_key, "RevertDecision", access)?;
    let outcome = n.revert_decision(user, fragment, decision, &key).await?;
    Ok(Response::new(pb::RevertDecisionResponse {
        outcome: proto::reverted(outcome.outcome),
        rewards: Some(proto::rewards(&outcome.rewards)),
    }))
}

pub async fn unlock(
    n: &Narrative,
    body: &pb::UnlockFragmentsRequest,
    access: &Access,
) -> Answer<pb::UnlockFragmentsResponse> {
    let (user, fragments, key) = batch_call(
        body,
        &body.user_id,
        &body.fragment_ids,
        &body.idempotency_key,
        "UnlockFragments",
        access,
    )?;
    let outcome = n.unlock_fragments(user, &fragments, &key).await?;
    Ok(Response::new(pb::UnlockFragmentsResponse {
        unlocked_fragment_ids: proto::ids(&outcome.unlocked),
        already_unlocked_fragment_ids: proto::ids(&outcome.already_unlocked),
    }))
}

pub async fn lock(
    n: &Narrative,
    body: &pb::LockFragmentsRequest,
    access: &Access,
) -> Answer<pb::LockFragmentsResponse> {
    let (user, fragments, key) = batch_call(
        body,
        &body.user_id,
        &body.fragment_ids,
        &body.idempotency_key,
        "LockFragments",
        access,
    )?;
    let outcome = n.lock_fragments(user, &fragments, &key).await?;
    Ok(Response::new(pb::LockFragmentsResponse {
        locked_fragment_ids: proto::ids(&outcome.locked),
        not_unlocked_fragment_ids: proto::ids(&outcome.not_unlocked),
    }))
}

pub async fn user_progress(
    n: &Narrative,
    body: &pb::GetUserProgressRequest,
    access: &Access,
) -> Answer<pb::GetUserProgressResponse> {
    let mut v = Violations::new();
    let user = v.uuid("user_id", &body.user_id);
    v.finish()?;
    access.owner(user)?;
    let p = n.user_progress(user).await?;
    let unlocked: Vec<uuid::Uuid> = p
        .fragments
        .iter()
        .filter(|f| f.unlocked_at.is_some())
        .map(|f| f.fragment_id)
        .collect();
    Ok(Response::new(pb::GetUserProgressResponse {
        user_id: user.to_string(),
        fragments: p.fragments.iter().map(proto::fragment_progress).collect(),
        decisions: p.decisions.iter().map(proto::taken_decision).collect(),
        unlocked_fragment_ids: proto::ids(&unlocked),
        completed_levels: p.completed_levels,
        experiences: p
            .experiences
            .iter()
            .map(proto::experience_progress)
            .collect(),
        reactions: p.reactions.iter().map(proto::reaction).collect(),
        last_activity_time: phoenix_runtime::convert::optional_timestamp(p.last_activity_at),
    }))
}
