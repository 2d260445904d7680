//! The goals context's use cases: each loads through the store, asks the domain, writes
//! through the store, and appends its events in the same transaction. The API, tools and tests
//! call these, never the API's internals.

mod embeddings;
mod events;
mod goals;
mod snapshots;
mod tasks;

pub use embeddings::SearchOutcome;
pub use goals::GoalPage;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use phoenix_directory_client::{DirectoryClient, Outage};
use phoenix_runtime::idempotency::{self, RequestKey};
use phoenix_runtime::stream::{self, EventStream, NewEvent};
use phoenix_runtime::{Error, Refusal};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::embedding::Model;
use crate::store::embeddings::VectorSupport;

/// How long the idempotency key of a create is remembered.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Aggregates of the event log: a goal's events (its own changes and its progress), a task's,
/// a snapshot's (one event each: snapshots never change).
pub const GOAL_AGGREGATE: &str = "goal";
pub const TASK_AGGREGATE: &str = "task";
pub const SNAPSHOT_AGGREGATE: &str = "code_snapshot";

/// How stale a user or course may be when the directory is down: naming them on a new goal
/// harms no one if the directory knew them minutes ago.
const DIRECTORY_STALENESS: Outage = Outage::StaleUpTo(std::time::Duration::from_secs(600));

#[derive(Debug, Clone)]
pub struct Goals {
    pool: PgPool,
    events: EventStream,
    /// Where users and courses are resolved; `None` when no directory is configured (the
    /// service then checks neither, and says so at start).
    directory: Option<DirectoryClient>,
    /// What the installed pgvector offers (read once, at the first search).
    vectors: Arc<OnceCell<VectorSupport>>,
    /// Registered models by name: a model never changes once registered.
    models: Arc<RwLock<HashMap<String, Model>>>,
}

impl Goals {
    /// The context on `pool`, with its event sequencer running until `shutdown`.
    pub fn new(
        pool: PgPool,
        shutdown: CancellationToken,
        directory: Option<DirectoryClient>,
    ) -> Self {
        let events = EventStream::start("goals", pool.clone(), shutdown);
        Self {
            pool,
            events,
            directory,
            vectors: Arc::default(),
            models: Arc::default(),
        }
    }

    /// What the installed pgvector offers.
    pub async fn vector_support(&self) -> Result<&VectorSupport, Error> {
        self.vectors
            .get_or_try_init(|| crate::store::embeddings::support(&self.pool))
            .await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `effect` in one transaction, at most once per `key` when one is given (a retry
    /// with the same key and request answers the first outcome), then wakes the sequencer.
    async fn write<T, F>(&self, key: Option<&RequestKey>, effect: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, Error>>,
    {
        let outcome = match key {
            Some(key) => idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, effect).await?,
            None => {
                let mut transaction = self.pool.begin().await?;
                let outcome = effect(&mut transaction).await?;
                transaction.commit().await?;
                outcome
            }
        };
        self.events.appended();
        Ok(outcome)
    }

    /// FAILED_PRECONDITION `USER_NOT_FOUND` / `COURSE_NOT_FOUND` unless the directory knows
    /// the user and the course (both asked at once).
    async fn resolve(&self, user_id: Uuid, course_id: Option<Uuid>) -> Result<(), Error> {
        let Some(directory) = &self.directory else {
            return Ok(());
        };
        // `Some(found)` for a course asked about.
        let course = async {
            match course_id {
                Some(id) => directory
                    .course(id, DIRECTORY_STALENESS)
                    .await
                    .map(|c| Some(c.is_some())),
                None => Ok(None),
            }
        };
        let (user, course) = tokio::join!(directory.user(user_id, DIRECTORY_STALENESS), course);
        if user?.is_none() {
            return Err(Refusal::precondition(
                "USER_NOT_FOUND",
                format!("no user has id {user_id}"),
            )
            .at("user_id")
            .with("user_id", user_id)
            .into());
        }
        if let (Some(id), Some(false)) = (course_id, course?) {
            return Err(crate::error::course_not_found(id).into());
        }
        Ok(())
    }
}

/// The clock to the microsecond PostgreSQL keeps, so what is answered is what is stored; read
/// inside a transaction after its locks are held.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Appends the events of a change in its transaction (the context has no tenants).
async fn publish(connection: &mut PgConnection, events: &[NewEvent]) -> Result<(), Error> {
    stream::append(connection, Uuid::nil(), events).await
}
