//! The gRPC face of the context: decode and validate, call one use case, encode. Each RPC's
//! handler lives in the module of its resource; this file only routes.

mod access;
mod buffers;
mod caches;
mod contacts;
mod leases;

use access::Access;
pub use access::{ADMIN_ROLE, BOT_ROLE};

use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_server::ConversationsService;
use phoenix_runtime::Violations;
use phoenix_runtime::stream::{self, ResponseStream};
use tonic::{Request, Response, Status};

use crate::app::Conversations;
use crate::domain::Phone;

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ConversationsService for Conversations {
    async fn save_contact(
        &self,
        r: Request<pb::SaveContactRequest>,
    ) -> Answer<pb::SaveContactResponse> {
        contacts::save(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn get_contact(
        &self,
        r: Request<pb::GetContactRequest>,
    ) -> Answer<pb::GetContactResponse> {
        contacts::get(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn save_thread(
        &self,
        r: Request<pb::SaveThreadRequest>,
    ) -> Answer<pb::SaveThreadResponse> {
        contacts::save_thread(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn get_thread(&self, r: Request<pb::GetThreadRequest>) -> Answer<pb::GetThreadResponse> {
        contacts::get_thread(self, r.get_ref(), &Access::of(&r)).await
    }

    async fn set_context(
        &self,
        r: Request<pb::SetContextRequest>,
    ) -> Answer<pb::SetContextResponse> {
        let b = r.get_ref();
        let entry = caches::set(
            self,
            &b.phone,
            &b.context,
            b.ttl.as_ref(),
            "context",
            crate::domain::CacheKind::Context,
            &Access::of(&r),
        )
        .await?;
        Ok(Response::new(pb::SetContextResponse { entry: Some(entry) }))
    }
    async fn get_context(
        &self,
        r: Request<pb::GetContextRequest>,
    ) -> Answer<pb::GetContextResponse> {
        let b = r.get_ref();
        let entry = caches::get(
            self,
            &b.phone,
            b.refresh,
            crate::domain::CacheKind::Context,
            &Access::of(&r),
        )
        .await?;
        Ok(Response::new(pb::GetContextResponse {
            found: entry.is_some(),
            entry,
        }))
    }
    async fn set_chat_info(
        &self,
        r: Request<pb::SetChatInfoRequest>,
    ) -> Answer<pb::SetChatInfoResponse> {
        let b = r.get_ref();
        let entry = caches::set(
            self,
            &b.phone,
            &b.info,
            b.ttl.as_ref(),
            "info",
            crate::domain::CacheKind::ChatInfo,
            &Access::of(&r),
        )
        .await?;
        Ok(Response::new(pb::SetChatInfoResponse {
            entry: Some(entry),
        }))
    }
    async fn get_chat_info(
        &self,
        r: Request<pb::GetChatInfoRequest>,
    ) -> Answer<pb::GetChatInfoResponse> {
        let b = r.get_ref();
        let entry = caches::get(
            self,
            &b.phone,
            b.refresh,
            crate::domain::CacheKind::ChatInfo,
            &Access::of(&r),
        )
        .await?;
        Ok(Response::new(pb::GetChatInfoResponse {
            found: entry.is_some(),
            entry,
        }))
    }

    async fn get_user_state(
        &self,
        r: Request<pb::GetUserStateRequest>,
    ) -> Answer<pb::GetUserStateResponse> {
        caches::get_state(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn update_user_state(
        &self,
        r: Request<pb::UpdateUserStateRequest>,
    ) -> Answer<pb::UpdateUserStateResponse> {
        caches::update_state(self, r.get_ref(), &Access::of(&r)).await
    }

    async fn append_message(
        &self,
        r: Request<pb::AppendMessageRequest>,
    ) -> Answer<pb::AppendMessageResponse> {
        buffers::append(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn take_ready_buffer(
        &self,
        r: Request<pb::TakeReadyBufferRequest>,
    ) -> Answer<pb::TakeReadyBufferResponse> {
        buffers::take(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn ack_buffer(&self, r: Request<pb::AckBufferRequest>) -> Answer<pb::AckBufferResponse> {
        buffers::ack(self, r.get_ref(), &Access::of(&r)).await
    }

    async fn acquire_processing_lease(
        &self,
        r: Request<pb::AcquireProcessingLeaseRequest>,
    ) -> Answer<pb::AcquireProcessingLeaseResponse> {
        let b = r.get_ref();
        let lease = leases::hold(
            self,
            &b.phone,
            &b.owner,
            b.ttl.as_ref(),
            false,
            &Access::of(&r),
        )
        .await?;
        Ok(Response::new(pb::AcquireProcessingLeaseResponse {
            lease: Some(lease),
        }))
    }
    async fn renew_processing_lease(
        &self,
        r: Request<pb::RenewProcessingLeaseRequest>,
    ) -> Answer<pb::RenewProcessingLeaseResponse> {
        let b = r.get_ref();
        let lease = leases::hold(
            self,
            &b.phone,
            &b.owner,
            b.ttl.as_ref(),
            true,
            &Access::of(&r),
        )
        .await?;
        Ok(Response::new(pb::RenewProcessingLeaseResponse {
            lease: Some(lease),
        }))
    }
    async fn release_processing_lease(
        &self,
        r: Request<pb::ReleaseProcessingLeaseRequest>,
    ) -> Answer<pb::ReleaseProcessingLeaseResponse> {
        leases::release(self, r.get_ref(), &Access::of(&r)).await
    }

    async fn add_pending_image(
        &self,
        r: Request<pb::AddPendingImageRequest>,
    ) -> Answer<pb::AddPendingImageResponse> {
        leases::add_image(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn list_pending_images(
        &self,
        r: Request<pb::ListPendingImagesRequest>,
    ) -> Answer<pb::ListPendingImagesResponse> {
        leases::list_images(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn remove_pending_images(
        &self,
        r: Request<pb::RemovePendingImagesRequest>,
    ) -> Answer<pb::RemovePendingImagesResponse> {
        leases::remove_images(self, r.get_ref(), &Access::of(&r)).await
    }
    async fn record_typing(
        &self,
        r: Request<pb::RecordTypingRequest>,
    ) -> Answer<pb::RecordTypingResponse> {
        leases::typing(self, r.get_ref(), &Access::of(&r)).await
    }

    async fn run_cleanup(
        &self,
        r: Request<pb::RunCleanupRequest>,
    ) -> Answer<pb::RunCleanupResponse> {
        Access::of(&r).admin()?;
        let removed = self.cleanup().await?;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Response::new(pb::RunCleanupResponse {
            removed: Some(pb::CleanupCounts {
                context_entries: count(removed.context_entries),
                chat_info_entries: count(removed.chat_info_entries),
                acknowledged_buffers: count(removed.acknowledged_buffers),
                expired_leases: count(removed.expired_leases),
                typing_stamps: count(removed.typing_stamps),
                idempotency_keys: count(removed.idempotency_keys),
            }),
        }))
    }

    type SubscribeStream = ResponseStream<pb::SubscribeResponse>;

    async fn subscribe(&self, r: Request<pb::SubscribeRequest>) -> Answer<Self::SubscribeStream> {
        Access::of(&r).admin()?;
        let mut violations = Violations::new();
        let after = stream::after_position(&mut violations, r.get_ref().after_position);
        violations.finish()?;
        let events = self.follow_events(after).await?;
        Ok(Response::new(stream::response_stream(events, |event| {
            pb::SubscribeResponse {
                position: event.position,
                event: Some(event.envelope()),
            }
        })))
    }
}

/// The request's phone, normalised; a bad one is recorded under `phone` and answered as an
/// empty placeholder, which nothing may use before `finish()` passed.
fn phone(v: &mut Violations, raw: &str) -> Phone {
    v.take(Phone::parse(raw))
        .unwrap_or_else(|| Phone::stored(String::new()))
}

/// A duration that may be zero: unset is `default`; negative or above `max` is
/// `INVALID_DURATION`.
fn duration_or(
    v: &mut Violations,
    field: &str,
    value: Option<&prost_types::Duration>,
    default: chrono::Duration,
    max: chrono::Duration,
) -> chrono::Duration {
    let Some(value) = value else {
        return default;
    };
    let duration = phoenix_runtime::convert::duration_from_proto(value)
        .filter(|d| *d >= chrono::Duration::zero() && *d <= max);
    match duration {
        Some(duration) => duration,
        None => {
            v.add(
                field,
                "INVALID_DURATION",
                format!("must be between 0 and {} s", max.num_seconds()),
            );
            default
        }
    }
}

/// A positive duration: unset is `default`; zero, negative, above `max` or shorter than the
/// database's microsecond (which would store a zero TTL) is `INVALID_DURATION`.
fn positive_or(
    v: &mut Violations,
    field: &str,
    value: Option<&prost_types::Duration>,
    default: chrono::Duration,
    max: chrono::Duration,
) -> chrono::Duration {
    match v.positive_duration(field, value, max) {
        Some(d) if d < chrono::Duration::microseconds(1) => {
            v.add(
                field,
                "INVALID_DURATION",
                "must be at least 1 microsecond (the database's resolution)",
            );
            default
        }
        Some(d) => d,
        None => default,
    }
}
