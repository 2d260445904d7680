//! UnlockExperience, LockExperience, ProgressExperienceComponent, RevertExperienceComponent,
//! AbandonExperience.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;
use uuid::Uuid;

use super::{Access, Answer, decode, keyed};
use crate::app::Narrative;
use crate::domain::Target;
use crate::proto;

/// The user, experience and key every experience change names.
fn decode_common(
    v: &mut Violations,
    user_id: &str,
    experience_id: &str,
    idempotency_key: &str,
) -> (Uuid, Uuid, String) {
    (
        v.uuid("user_id", user_id),
        v.uuid("experience_id", experience_id),
        v.idempotency_key(idempotency_key),
    )
}

pub async fn unlock(
    n: &Narrative,
    body: &pb::UnlockExperienceRequest,
    access: &Access,
) -> Answer<pb::UnlockExperienceResponse> {
    let mut v = Violations::new();
    let (user, experience, key) = decode_common(
        &mut v,
        &body.user_id,
        &body.experience_id,
        &body.idempotency_key,
    );
    let key = keyed(v, access, user, key, "UnlockExperience", body)?;
    let (progress, newly) = n.unlock_experience(user, experience, &key).await?;
    Ok(Response::new(pb::UnlockExperienceResponse {
        progress: Some(proto::experience_progress(&progress)),
        newly_unlocked: newly,
    }))
}

pub async fn lock(
    n: &Narrative,
    body: &pb::LockExperienceRequest,
    access: &Access,
) -> Answer<pb::LockExperienceResponse> {
    let mut v = Violations::new();
    let (user, experience, key) = decode_common(
        &mut v,
        &body.user_id,
        &body.experience_id,
        &body.idempotency_key,
    );
    let key = keyed(v, access, user, key, "LockExperience", body)?;
    let outcome = n.lock_experience(user, experience, &key).await?;
    Ok(Response::new(pb::LockExperienceResponse {
        outcome: proto::reverted(outcome),
    }))
}

/// The user, experience and component a component change names, validated whole, with its
/// key under `method` once the caller may act for the user.
fn component_call(
    body: &impl prost::Message,
    ids: [&str; 3],
    component: Option<&pb::ComponentRef>,
    method: &'static str,
    access: &Access,
) -> Result<(Uuid, Uuid, Target, RequestKey), tonic::Status> {
    let mut v = Violations::new();
    let (user, experience, key) = decode_common(&mut v, ids[0], ids[1], ids[2]);
    let target = decode::component(&mut v, component);
    let target = v.finish_with(target)?;
    let key = keyed(Violations::new(), access, user, key, method, body)?;
    Ok((user, experience, target, key))
}

pub async fn progress(
    n: &Narrative,
    body: &pb::ProgressExperienceComponentRequest,
    access: &Access,
) -> Answer<pb::ProgressExperienceComponentResponse> {
    let ids = [
        body.user_id.as_str(),
        &body.experience_id,
        &body.idempotency_key,
    ];
    let (user, experience, target, key) = component_call(
        body,
        ids,
        body.component.as_ref(),
        "ProgressExperienceComponent",
        access,
    )?;
    let outcome = n
        .progress_component(user, experience, &target, &key)
        .await?;
    Ok(Response::new(pb::ProgressExperienceComponentResponse {
        progress: Some(proto::experience_progress(&outcome.progress)),
        completed_now: outcome.completed_now,
        rewards: Some(proto::rewards(&outcome.rewards)),
    }))
}

pub async fn revert(
    n: &Narrative,
    body: &pb::RevertExperienceComponentRequest,
    access: &Access,
) -> Answer<pb::RevertExperienceComponentResponse> {
    let ids = [
        body.user_id.as_str(),
        &body.experience_id,
        &body.idempotency_key,
    ];
    let (user, experience, target, key) = component_call(
        body,
        ids,
        body.component.as_ref(),
        "RevertExperienceComponent",
        access,
    )?;
    let reverted = n.revert_component(user, experience, &target, &key).await?;
    Ok(Response::new(pb::RevertExperienceComponentResponse {
        outcome: proto::reverted(reverted.outcome),
        progress: Some(proto::experience_progress(&reverted.progress)),
        rewards: Some(proto::rewards(&reverted.rewards)),
    }))
}

pub async fn abandon(
    n: &Narrative,
    body: &pb::AbandonExperienceRequest,
    access: &Access,
) -> Answer<pb::AbandonExperienceResponse> {
    let mut v = Violations::new();
    let (user, experience, key) = decode_common(
        &mut v,
        &body.user_id,
        &body.experience_id,
        &body.idempotency_key,
    );
    let key = keyed(v, access, user, key, "AbandonExperience", body)?;
    let progress = n.abandon_experience(user, experience, &key).await?;
    Ok(Response::new(pb::AbandonExperienceResponse {
        progress: Some(proto::experience_progress(&progress)),
    }))
}
