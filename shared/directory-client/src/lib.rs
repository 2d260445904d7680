//! The reference client every Phoenix context resolves users and courses with.
//!
//! - **Batching**: lookups that miss the cache within a short window (`batch_window`, 1 ms by
//!   default) travel together in one `BatchGetUsers`/`BatchGetCourses` of at most
//!   `max_batch` ids.
//! - **Single flight**: while an id is being fetched, every other lookup of it waits for that
//!   fetch instead of sending its own.
//! - **Bounded cache with TTL**: answers are fresh for `ttl`; an unknown id is cached too
//!   (negative caching, for `negative_ttl`), so a stream of lookups of a deleted or mistyped id
//!   does not reach the directory each time. At most `capacity` entries; the oldest go first.
//! - **Outage policy per call site** ([`Outage`]): when the directory cannot answer (UNAVAILABLE,
//!   DEADLINE_EXCEEDED, a transport failure, or a refusal of the batch call itself such as
//!   UNAUTHENTICATED or UNIMPLEMENTED, whose cause the error message names), a
//!   [`Outage::Strict`] lookup fails UNAVAILABLE `DIRECTORY_UNAVAILABLE`
//!   (VIP gating, purchases: never act on old data), an [`Outage::StaleUpTo`] lookup answers
//!   the cached value if it is at most that old (display). A stale answer is never given while
//!   the directory answers, and never past its bound (a cached answer older than a bound
//!   shorter than the TTL is fetched again).
//! - **Metrics**: `phoenix_directory_client_lookups_total{kind, outcome}` with outcomes `hit`,
//!   `negative_hit`, `miss`, `stale`, `outage`; and [`Stats`] per client.

mod cache;
mod resolver;

use std::sync::Arc;
use std::time::Duration;

use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_runtime::client::PeerChannel;
use phoenix_runtime::{Error, Refusal};
use uuid::Uuid;

pub use resolver::Stats;
use resolver::{Fetched, Resolver};

/// Largest batch answer the client decodes.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// What a call site does when the directory cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Fail with UNAVAILABLE: for decisions that must be exact (VIP gating, purchases).
    Strict,
    /// Answer the cached value if it is at most this old (for display); else UNAVAILABLE.
    StaleUpTo(Duration),
}

/// The client's tunables.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings {
    /// How long an answer is fresh.
    pub ttl: Duration,
    /// How long "no such id" is fresh.
    pub negative_ttl: Duration,
    /// Most entries kept, per kind.
    pub capacity: usize,
    /// How long a miss waits for others to share its batch.
    pub batch_window: Duration,
    /// Most ids per batch call (the directory takes up to 1,000).
    pub max_batch: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            capacity: 100_000,
            batch_window: Duration::from_millis(1),
            max_batch: 500,
        }
    }
}

/// Resolves users and courses by id. Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct DirectoryClient {
    users: Resolver<pb::User>,
    courses: Resolver<pb::Course>,
}

impl std::fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryClient").finish_non_exhaustive()
    }
}

impl DirectoryClient {
    /// A client over `channel` (e.g. `ServiceContext::peer("directory")`). Needs a Tokio
    /// runtime when it resolves (batches are fetched by spawned tasks).
    pub fn new(channel: PeerChannel, settings: ClientSettings) -> Self {
        // A batch of 500 users with large metadata is more than tonic's 4 MiB default.
        let grpc = DirectoryServiceClient::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES);
        let for_users = grpc.clone();
        let users = Resolver::new("user", settings, move |ids: Vec<Uuid>| {
            let mut grpc = for_users.clone();
            Box::pin(async move {
                let answer = grpc
                    .batch_get_users(pb::BatchGetUsersRequest {
                        ids: ids.iter().map(ToString::to_string).collect(),
                    })
                    .await?
                    .into_inner();
                Ok(found(answer.users, |u| &u.id))
            }) as Fetched<pb::User>
        });
        let courses = Resolver::new("course", settings, move |ids: Vec<Uuid>| {
            let mut grpc = grpc.clone();
            Box::pin(async move {
                let answer = grpc
                    .batch_get_courses(pb::BatchGetCoursesRequest {
                        ids: ids.iter().map(ToString::to_string).collect(),
                    })
                    .await?
                    .into_inner();
                Ok(found(answer.courses, |c| &c.id))
            }) as Fetched<pb::Course>
        });
        Self { users, courses }
    }

    /// The user with `id`, `None` when the directory knows none.
    pub async fn user(&self, id: Uuid, outage: Outage) -> Result<Option<Arc<pb::User>>, Error> {
        self.users.resolve(id, outage).await
    }

    /// The user with `id`; FAILED_PRECONDITION `USER_NOT_FOUND` when there is none (for a
    /// call that names a user who must exist).
    pub async fn existing_user(&self, id: Uuid, outage: Outage) -> Result<Arc<pb::User>, Error> {
        self.user(id, outage).await?.ok_or_else(|| {
            Refusal::precondition("USER_NOT_FOUND", format!("no user has id {id}"))
                .with("user_id", id)
                .into()
        })
    }

    /// The course with `id`, `None` when the directory knows none.
    pub async fn course(&self, id: Uuid, outage: Outage) -> Result<Option<Arc<pb::Course>>, Error> {
        self.courses.resolve(id, outage).await
    }

    /// What the user lookups did so far.
    pub fn user_stats(&self) -> Stats {
        self.users.stats()
    }

    /// What the course lookups did so far.
    pub fn course_stats(&self) -> Stats {
        self.courses.stats()
    }

    /// Forgets a cached user (e.g. on a `UserUpdated` event).
    pub fn forget_user(&self, id: Uuid) {
        self.users.forget(id);
    }
}

/// The answers of a batch by id; an answer whose id does not parse is dropped (and so reads
/// as unknown), which a directory never sends.
fn found<T>(items: Vec<T>, id: impl Fn(&T) -> &String) -> Vec<(Uuid, T)> {
    items
        .into_iter()
        .filter_map(|item| Uuid::parse_str(id(&item)).ok().map(|uuid| (uuid, item)))
        .collect()
}
