//! The gRPC face of the directory: decode and validate, call one use case, encode. Each RPC's
//! handler lives in the module of its resource; this file only routes.

mod access;
mod channels;
mod courses;
mod users;
mod vip;

pub use access::ADMIN_ROLE;
use access::Access;

use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_server::DirectoryService;
use phoenix_runtime::Violations;
use phoenix_runtime::stream::{self, ResponseStream};
use tonic::{Request, Response, Status};

use crate::app::Directory;

/// Most ids one batch call resolves.
pub const MAX_BATCH_IDS: usize = 1000;
/// The largest answer the directory sends, whatever `PHOENIX_MAX_MESSAGE_BYTES` says: a
/// BatchGetUsers of [`MAX_BATCH_IDS`] users whose metadata is at its limit. Metadata is bounded
/// as JSON text; as a `google.protobuf.Struct` it can take up to 5.5 times that (a list of
/// zeros: two bytes of JSON, eleven of protobuf each), plus the user's other fields.
pub const LARGEST_ANSWER_BYTES: usize =
    MAX_BATCH_IDS * (crate::domain::MAX_METADATA_BYTES * 11 / 2 + 4096);
/// Page sizes of the list calls.
const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl DirectoryService for Directory {
    async fn create_user(
        &self,
        r: Request<pb::CreateUserRequest>,
    ) -> Answer<pb::CreateUserResponse> {
        users::create(self, r.get_ref(), &access::of(&r)).await
    }
    async fn get_user(&self, r: Request<pb::GetUserRequest>) -> Answer<pb::GetUserResponse> {
        users::get(self, r.get_ref(), &access::of(&r)).await
    }
    async fn lookup_user(
        &self,
        r: Request<pb::LookupUserRequest>,
    ) -> Answer<pb::LookupUserResponse> {
        users::lookup(self, r.get_ref(), &access::of(&r)).await
    }
    async fn batch_get_users(
        &self,
        r: Request<pb::BatchGetUsersRequest>,
    ) -> Answer<pb::BatchGetUsersResponse> {
        users::batch_get(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_users(&self, r: Request<pb::ListUsersRequest>) -> Answer<pb::ListUsersResponse> {
        users::list(self, r.get_ref(), &access::of(&r)).await
    }
    async fn update_user(
        &self,
        r: Request<pb::UpdateUserRequest>,
    ) -> Answer<pb::UpdateUserResponse> {
        users::update(self, r.get_ref(), &access::of(&r)).await
    }
    async fn deactivate_user(
        &self,
        r: Request<pb::DeactivateUserRequest>,
    ) -> Answer<pb::DeactivateUserResponse> {
        users::deactivate(self, r.get_ref(), &access::of(&r)).await
    }

    async fn check_vip(&self, r: Request<pb::CheckVipRequest>) -> Answer<pb::CheckVipResponse> {
        vip::check(self, r.get_ref(), &access::of(&r)).await
    }
    async fn grant_vip(&self, r: Request<pb::GrantVipRequest>) -> Answer<pb::GrantVipResponse> {
        let membership = vip::change(self, r.get_ref(), &access::of(&r)).await?;
        Ok(Response::new(pb::GrantVipResponse {
            membership: Some(membership),
        }))
    }
    async fn extend_vip(&self, r: Request<pb::ExtendVipRequest>) -> Answer<pb::ExtendVipResponse> {
        let membership = vip::change(self, r.get_ref(), &access::of(&r)).await?;
        Ok(Response::new(pb::ExtendVipResponse {
            membership: Some(membership),
        }))
    }
    async fn start_vip_trial(
        &self,
        r: Request<pb::StartVipTrialRequest>,
    ) -> Answer<pb::StartVipTrialResponse> {
        let membership = vip::change(self, r.get_ref(), &access::of(&r)).await?;
        Ok(Response::new(pb::StartVipTrialResponse {
            membership: Some(membership),
        }))
    }
    async fn cancel_vip(&self, r: Request<pb::CancelVipRequest>) -> Answer<pb::CancelVipResponse> {
        let membership = vip::change(self, r.get_ref(), &access::of(&r)).await?;
        Ok(Response::new(pb::CancelVipResponse {
            membership: Some(membership),
        }))
    }
    async fn revoke_vip(&self, r: Request<pb::RevokeVipRequest>) -> Answer<pb::RevokeVipResponse> {
        let membership = vip::change(self, r.get_ref(), &access::of(&r)).await?;
        Ok(Response::new(pb::RevokeVipResponse {
            membership: Some(membership),
        }))
    }
    async fn list_vip_history(
        &self,
        r: Request<pb::ListVipHistoryRequest>,
    ) -> Answer<pb::ListVipHistoryResponse> {
        vip::history(self, r.get_ref(), &access::of(&r)).await
    }

    async fn join_channel(
        &self,
        r: Request<pb::JoinChannelRequest>,
    ) -> Answer<pb::JoinChannelResponse> {
        channels::join(self, r.get_ref(), &access::of(&r)).await
    }
    async fn leave_channel(
        &self,
        r: Request<pb::LeaveChannelRequest>,
    ) -> Answer<pb::LeaveChannelResponse> {
        channels::leave(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_channel_memberships(
        &self,
        r: Request<pb::ListChannelMembershipsRequest>,
    ) -> Answer<pb::ListChannelMembershipsResponse> {
        channels::list(self, r.get_ref(), &access::of(&r)).await
    }
    async fn ensure_channel_membership(
        &self,
        r: Request<pb::EnsureChannelMembershipRequest>,
    ) -> Answer<pb::EnsureChannelMembershipResponse> {
        channels::ensure(self, r.get_ref(), &access::of(&r)).await
    }

    async fn create_course(
        &self,
        r: Request<pb::CreateCourseRequest>,
    ) -> Answer<pb::CreateCourseResponse> {
        courses::create(self, r.get_ref(), &access::of(&r)).await
    }
    async fn get_course(&self, r: Request<pb::GetCourseRequest>) -> Answer<pb::GetCourseResponse> {
        courses::get(self, r.get_ref(), &access::of(&r)).await
    }
    async fn batch_get_courses(
        &self,
        r: Request<pb::BatchGetCoursesRequest>,
    ) -> Answer<pb::BatchGetCoursesResponse> {
        courses::batch_get(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_courses(
        &self,
        r: Request<pb::ListCoursesRequest>,
    ) -> Answer<pb::ListCoursesResponse> {
        courses::list(self, r.get_ref(), &access::of(&r)).await
    }
    async fn update_course(
        &self,
        r: Request<pb::UpdateCourseRequest>,
    ) -> Answer<pb::UpdateCourseResponse> {
        courses::update(self, r.get_ref(), &access::of(&r)).await
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

/// A batch's ids: 1 to [`MAX_BATCH_IDS`] UUIDs, each violation naming `ids[i]`.
fn batch_ids(violations: &mut Violations, ids: &[String]) -> Vec<uuid::Uuid> {
    if ids.is_empty() {
        violations.add("ids", "REQUIRED", "is required: 1 to 1000 ids");
    } else if ids.len() > MAX_BATCH_IDS {
        violations.add(
            "ids",
            "TOO_MANY_IDS",
            format!("must hold at most {MAX_BATCH_IDS} ids, got {}", ids.len()),
        );
        return Vec::new();
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| violations.uuid(&format!("ids[{i}]"), id))
        .collect()
}

/// A page token: the last id of the previous page.
fn page_after(violations: &mut Violations, token: &str) -> Option<uuid::Uuid> {
    violations.page_token(token, |t| {
        t.strip_prefix("after:").and_then(|id| id.parse().ok())
    })
}

fn page_token(next: Option<uuid::Uuid>) -> String {
    next.map(|id| format!("after:{id}")).unwrap_or_default()
}

/// An optional timestamp: unset is none; a set one must be valid.
fn optional_time(
    violations: &mut Violations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    value.and_then(|t| violations.timestamp(field, Some(t)))
}

/// The value a parser gave once the request passed validation: `None` with no violation is a
/// parser that failed without saying why, a broken invariant.
fn decoded<T>(violations: Violations, value: Option<T>) -> Result<T, Status> {
    violations.finish()?;
    value.ok_or_else(|| {
        phoenix_runtime::Error::invariant(
            "DECODED_WITHOUT_VALUE",
            "a request passed validation without a decoded value",
        )
        .into()
    })
}
