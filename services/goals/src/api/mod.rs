//! The gRPC face of the goals context: decode and validate, call one use case, encode. Each
//! RPC's handler lives in the module of its resource; this file only routes.

mod access;
mod embeddings;
mod goals;
mod snapshots;
mod tasks;

pub use access::ADMIN_ROLE;
use access::Access;

use chrono::{DateTime, Utc};
use phoenix_proto::goals::v1 as pb;
use phoenix_proto::goals::v1::goals_service_server::GoalsService;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::stream::{self, ResponseStream};
use tonic::{Request, Response, Status};

use crate::app::Goals;

/// Page sizes of the list calls.
const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl GoalsService for Goals {
    async fn create_goal(
        &self,
        r: Request<pb::CreateGoalRequest>,
    ) -> Answer<pb::CreateGoalResponse> {
        goals::create(self, r.get_ref(), &access::of(&r)).await
    }
    async fn get_goal(&self, r: Request<pb::GetGoalRequest>) -> Answer<pb::GetGoalResponse> {
        goals::get(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_goals(&self, r: Request<pb::ListGoalsRequest>) -> Answer<pb::ListGoalsResponse> {
        goals::list(self, r.get_ref(), &access::of(&r)).await
    }
    async fn update_goal(
        &self,
        r: Request<pb::UpdateGoalRequest>,
    ) -> Answer<pb::UpdateGoalResponse> {
        goals::update(self, r.get_ref(), &access::of(&r)).await
    }

    async fn create_task(
        &self,
        r: Request<pb::CreateTaskRequest>,
    ) -> Answer<pb::CreateTaskResponse> {
        tasks::create(self, r.get_ref(), &access::of(&r)).await
    }
    async fn get_task(&self, r: Request<pb::GetTaskRequest>) -> Answer<pb::GetTaskResponse> {
        tasks::get(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_tasks(&self, r: Request<pb::ListTasksRequest>) -> Answer<pb::ListTasksResponse> {
        tasks::list(self, r.get_ref(), &access::of(&r)).await
    }
    async fn update_task(
        &self,
        r: Request<pb::UpdateTaskRequest>,
    ) -> Answer<pb::UpdateTaskResponse> {
        tasks::update(self, r.get_ref(), &access::of(&r)).await
    }

    async fn create_code_snapshot(
        &self,
        r: Request<pb::CreateCodeSnapshotRequest>,
    ) -> Answer<pb::CreateCodeSnapshotResponse> {
        snapshots::create(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_code_snapshots(
        &self,
        r: Request<pb::ListCodeSnapshotsRequest>,
    ) -> Answer<pb::ListCodeSnapshotsResponse> {
        snapshots::list(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_latest_code_snapshots(
        &self,
        r: Request<pb::ListLatestCodeSnapshotsRequest>,
    ) -> Answer<pb::ListLatestCodeSnapshotsResponse> {
        snapshots::latest(self, r.get_ref(), &access::of(&r)).await
    }

    async fn register_embedding_model(
        &self,
        r: Request<pb::RegisterEmbeddingModelRequest>,
    ) -> Answer<pb::RegisterEmbeddingModelResponse> {
        embeddings::register(self, r.get_ref(), &access::of(&r)).await
    }
    async fn list_embedding_models(
        &self,
        r: Request<pb::ListEmbeddingModelsRequest>,
    ) -> Answer<pb::ListEmbeddingModelsResponse> {
        embeddings::models(self, r.get_ref(), &access::of(&r)).await
    }
    async fn upsert_embeddings(
        &self,
        r: Request<pb::UpsertEmbeddingsRequest>,
    ) -> Answer<pb::UpsertEmbeddingsResponse> {
        embeddings::upsert(self, r.get_ref(), &access::of(&r)).await
    }
    async fn delete_embeddings(
        &self,
        r: Request<pb::DeleteEmbeddingsRequest>,
    ) -> Answer<pb::DeleteEmbeddingsResponse> {
        embeddings::delete(self, r.get_ref(), &access::of(&r)).await
    }
    async fn search_similar(
        &self,
        r: Request<pb::SearchSimilarRequest>,
    ) -> Answer<pb::SearchSimilarResponse> {
        embeddings::search(self, r.get_ref(), &access::of(&r)).await
    }

    type SubscribeStream = ResponseStream<pb::SubscribeResponse>;

    async fn subscribe(&self, r: Request<pb::SubscribeRequest>) -> Answer<Self::SubscribeStream> {
        access::of(&r).admin()?;
        let answer = stream::subscription(
            r.get_ref().after_position,
            |after| self.events().follow(None, after),
            |event| pb::SubscribeResponse {
                position: event.position,
                event: Some(event.envelope()),
            },
        )
        .await?;
        Ok(Response::new(answer))
    }
}

/// The optional idempotency key of a create: when given it must be valid, and it makes the
/// call answer its first outcome on a retry.
fn optional_key(
    v: &mut Violations,
    key: &str,
    method: &'static str,
    request: &impl prost::Message,
) -> Option<RequestKey> {
    if key.is_empty() {
        return None;
    }
    let key = v.idempotency_key(key);
    Some(RequestKey::new("", key, method, request))
}

/// An optional timestamp: unset is none; a set one must be valid.
fn optional_time(
    v: &mut Violations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    value.and_then(|t| v.timestamp(field, Some(t)))
}

/// Page tokens: fields joined by '/', times as microseconds since the epoch.
fn token(parts: &[String]) -> String {
    parts.join("/")
}

fn micros(time: DateTime<Utc>) -> String {
    time.timestamp_micros().to_string()
}

fn time_of(micros: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros.parse().ok()?)
}

/// An enum value as the caller sent it: unspecified is `None`, an unknown number a violation.
fn known<E: TryFrom<i32>, T>(
    v: &mut Violations,
    field: &str,
    value: i32,
    what: &str,
    to_domain: fn(E) -> Option<T>,
) -> Option<T> {
    match E::try_from(value) {
        Ok(known) => to_domain(known),
        Err(_) => {
            v.add(
                field,
                "INVALID_ENUM",
                format!("{value} is not a known {what}"),
            );
            None
        }
    }
}

/// A message field a request must carry (the update's record), or its default, noted.
fn required<T: Clone + Default>(
    v: &mut Violations,
    field: &str,
    value: Option<&T>,
    what: &str,
) -> T {
    if value.is_none() {
        v.add(field, "REQUIRED", format!("is required: {what}"));
    }
    value.cloned().unwrap_or_default()
}
