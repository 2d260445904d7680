//! UnlockExperience, LockExperience, ProgressExperienceComponent, RevertExperienceComponent,
//! AbandonExperience.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;
use uuid::Uuid;

use super::{Access, Answer, decode};
use crate::app::Narrative;
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
    v.finish()?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "UnlockExperience", body);
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
    v.finish()?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "LockExperience", body);
    let outcome = n.lock_experience(user, experience, &key).await?;
    Ok(Response::new(pb::LockExperienceResponse {
        outcome: proto::reverted(outcome),
    }))
}

pub async fn progress(
    n: &Narrative,
    body: &pb::ProgressExperienceComponentRequest,
    access: &Access,
) -> Answer<pb::ProgressExperienceComponentResponse> {
    let mut v = Violations::new();
    let (user, experience, key) = decode_common(
        &mut v,
        &body.user_id,
        &body.experience_id,
        &body.idempotency_key,
    );
    let target = decode::component(&mut v, body.component.as_ref());
    let target = v.finish_with(target)?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "ProgressExperienceComponent", body);
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
    let mut v = Violations::new();
    let (user, experience, key) = decode_common(
        &mut v,
        &body.user_id,
        &body.experience_id,
        &body.idempotency_key,
    );
    let target = decode::component(&mut v, body.component.as_ref());
    let target = v.finish_with(target)?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "RevertExperienceComponent", body);
    let (outcome, progress) = n.revert_component(user, experience, &target, &key).await?;
    Ok(Response::new(pb::RevertExperienceComponentResponse {
        outcome: proto::reverted(outcome),
        progress: Some(proto::experience_progress(&progress)),
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
    v.finish()?;
    access.owner(user)?;
    let key = RequestKey::new("", key, "AbandonExperience", body);
    let progress = n.abandon_experience(user, experience, &key).await?;
    Ok(Response::new(pb::AbandonExperienceResponse {
        progress: Some(proto::experience_progress(&progress)),
    }))
}
