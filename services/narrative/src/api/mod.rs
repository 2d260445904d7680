//! The gRPC face of the narrative: decode and validate, call one use case, encode. Each RPC's
//! handler lives in the module of its resource; this file only routes.

mod access;
mod catalog;
mod decode;
mod experiences;
mod progress;
mod reactions;

pub use access::ADMIN_ROLE;
use access::Access;

use phoenix_proto::narrative::v1 as pb;
use phoenix_proto::narrative::v1::narrative_service_server::NarrativeService;
use phoenix_runtime::stream::{self, ResponseStream};
use tonic::{Request, Response, Status};

use crate::app::Narrative;

/// Most fragments one UnlockFragments or LockFragments names.
pub const MAX_BATCH_IDS: usize = 100;

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl NarrativeService for Narrative {
    async fn get_fragment(
        &self,
        r: Request<pb::GetFragmentRequest>,
    ) -> Answer<pb::GetFragmentResponse> {
        catalog::get_fragment(self, r.get_ref(), &access::of(&r)).await
    }
    async fn check_fragment_requirements(
        &self,
        r: Request<pb::CheckFragmentRequirementsRequest>,
    ) -> Answer<pb::CheckFragmentRequirementsResponse> {
        progress::check(self, r.get_ref(), &access::of(&r)).await
    }
    async fn record_visit(
        &self,
        r: Request<pb::RecordVisitRequest>,
    ) -> Answer<pb::RecordVisitResponse> {
        progress::visit(self, r.get_ref(), &access::of(&r)).await
    }
    async fn apply_decision(
        &self,
        r: Request<pb::ApplyDecisionRequest>,
    ) -> Answer<pb::ApplyDecisionResponse> {
        progress::apply(self, r.get_ref(), &access::of(&r)).await
    }
    async fn revert_decision(
        &self,
        r: Request<pb::RevertDecisionRequest>,
    ) -> Answer<pb::RevertDecisionResponse> {
        progress::revert(self, r.get_ref(), &access::of(&r)).await
    }
    async fn unlock_fragments(
        &self,
        r: Request<pb::UnlockFragmentsRequest>,
    ) -> Answer<pb::UnlockFragmentsResponse> {
        progress::unlock(self, r.get_ref(), &access::of(&r)).await
    }
    async fn lock_fragments(
        &self,
        r: Request<pb::LockFragmentsRequest>,
    ) -> Answer<pb::LockFragmentsResponse> {
        progress::lock(self, r.get_ref(), &access::of(&r)).await
    }
    async fn get_user_progress(
        &self,
        r: Request<pb::GetUserProgressRequest>,
    ) -> Answer<pb::GetUserProgressResponse> {
        progress::user_progress(self, r.get_ref(), &access::of(&r)).await
    }

    async fn get_experience(
        &self,
        r: Request<pb::GetExperienceRequest>,
    ) -> Answer<pb::GetExperienceResponse> {
        catalog::get_experience(self, r.get_ref()).await
    }
    async fn unlock_experience(
        &self,
        r: Request<pb::UnlockExperienceRequest>,
    ) -> Answer<pb::UnlockExperienceResponse> {
        experiences::unlock(self, r.get_ref(), &access::of(&r)).await
    }
    async fn lock_experience(
        &self,
        r: Request<pb::LockExperienceRequest>,
    ) -> Answer<pb::LockExperienceResponse> {
        experiences::lock(self, r.get_ref(), &access::of(&r)).await
    }
    async fn progress_experience_component(
        &self,
        r: Request<pb::ProgressExperienceComponentRequest>,
    ) -> Answer<pb::ProgressExperienceComponentResponse> {
        experiences::progress(self, r.get_ref(), &access::of(&r)).await
    }
    async fn revert_experience_component(
        &self,
        r: Request<pb::RevertExperienceComponentRequest>,
    ) -> Answer<pb::RevertExperienceComponentResponse> {
        experiences::revert(self, r.get_ref(), &access::of(&r)).await
    }
    async fn abandon_experience(
        &self,
        r: Request<pb::AbandonExperienceRequest>,
    ) -> Answer<pb::AbandonExperienceResponse> {
        experiences::abandon(self, r.get_ref(), &access::of(&r)).await
    }

    async fn register_reaction(
        &self,
        r: Request<pb::RegisterReactionRequest>,
    ) -> Answer<pb::RegisterReactionResponse> {
        reactions::register(self, r.get_ref(), &access::of(&r)).await
    }
    async fn revert_reaction(
        &self,
        r: Request<pb::RevertReactionRequest>,
    ) -> Answer<pb::RevertReactionResponse> {
        reactions::revert(self, r.get_ref(), &access::of(&r)).await
    }

    async fn upsert_fragment(
        &self,
        r: Request<pb::UpsertFragmentRequest>,
    ) -> Answer<pb::UpsertFragmentResponse> {
        catalog::upsert_fragment(self, r.get_ref(), &access::of(&r)).await
    }
    async fn upsert_decision(
        &self,
        r: Request<pb::UpsertDecisionRequest>,
    ) -> Answer<pb::UpsertDecisionResponse> {
        catalog::upsert_decision(self, r.get_ref(), &access::of(&r)).await
    }
    async fn upsert_experience(
        &self,
        r: Request<pb::UpsertExperienceRequest>,
    ) -> Answer<pb::UpsertExperienceResponse> {
        catalog::upsert_experience(self, r.get_ref(), &access::of(&r)).await
    }
    async fn upsert_reaction_reward(
        &self,
        r: Request<pb::UpsertReactionRewardRequest>,
    ) -> Answer<pb::UpsertReactionRewardResponse> {
        catalog::upsert_reaction_reward(self, r.get_ref(), &access::of(&r)).await
    }

    type SubscribeStream = ResponseStream<pb::SubscribeResponse>;

    async fn subscribe(&self, r: Request<pb::SubscribeRequest>) -> Answer<Self::SubscribeStream> {
        access::of(&r).admin()?;
        let answer = stream::subscription(
            r.get_ref().after_position,
            |after| self.follow_events(after),
            |event| pb::SubscribeResponse {
                position: event.position,
                event: Some(event.envelope()),
            },
        )
        .await?;
        Ok(Response::new(answer))
    }
}

/// The end of a mutating request's decoding: every field valid, the caller `user` or an
/// admin (only an admin for the [`access::SAGA_ONLY`] methods), and the request's idempotency
/// key under `method` (fingerprinting the whole body).
fn keyed(
    violations: phoenix_runtime::Violations,
    access: &Access,
    user: uuid::Uuid,
    key: String,
    method: &'static str,
    body: &impl prost::Message,
) -> Result<phoenix_runtime::idempotency::RequestKey, Status> {
    violations.finish()?;
    if access::SAGA_ONLY.contains(&method) {
        access.admin()?;
    } else {
        access.owner(user)?;
    }
    Ok(phoenix_runtime::idempotency::RequestKey::new(
        "", key, method, body,
    ))
}
