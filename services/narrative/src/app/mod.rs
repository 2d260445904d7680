//! The narrative's use cases: each loads through the store, asks the domain, writes through
//! the store, and appends its events in the same transaction. Every change of a user's
//! progress runs once per idempotency key (`idempotency::once`) under the lock of the user's
//! state row, so a user's changes are serialized and their events carry consecutive versions.
//! The API, tools and tests call these, never the API's internals.

mod catalog;
mod decisions;
mod events;
mod experiences;
mod progress;
mod reactions;

pub use catalog::FragmentView;
pub use decisions::{DecisionOutcome, RevertOutcome};
pub use experiences::{ComponentOutcome, ComponentRevert};
pub use progress::{LockOutcome, UnlockOutcome, UserProgress, VisitOutcome};
pub use reactions::ReactionOutcome;

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use phoenix_runtime::stream::{EventStream, NewEvent};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::progress as store;

/// How long an idempotency key of a progress change is remembered.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Aggregate of a user's narrative events: every progress change of the user.
pub const USER_AGGREGATE: &str = "narrative_user";

#[derive(Debug, Clone)]
pub struct Narrative {
    pool: PgPool,
    events: EventStream,
}

impl Narrative {
    /// The narrative on `pool`, with its event sequencer running until `shutdown`.
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        let events = EventStream::start("narrative", pool.clone(), shutdown);
        Self { pool, events }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The clock to the microsecond PostgreSQL keeps: what is answered is what is stored.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// One change of a user's progress: the user's state locked, the events it makes, each at the
/// next version of the user's stream.
pub(crate) struct UserChange {
    pub user_id: Uuid,
    pub now: DateTime<Utc>,
    version: i64,
    events: Vec<NewEvent>,
}

impl UserChange {
    /// Locks the user's state (the clock is read after the lock is held).
    pub async fn begin(connection: &mut PgConnection, user_id: Uuid) -> Result<Self, Error> {
        let version = store::lock_user(connection, user_id, now()).await?;
        Ok(Self::locked(user_id, version))
    }

    /// The change of a user whose state a statement of the caller locked, at `version`.
    pub fn locked(user_id: Uuid, version: i64) -> Self {
        Self {
            user_id,
            now: now(),
            version,
            events: Vec::new(),
        }
    }

    /// Adds an event of the user's stream.
    pub fn record(&mut self, event_type: &'static str, payload: &impl prost::Message) {
        self.version += 1;
        self.events.push(NewEvent::new(
            USER_AGGREGATE,
            self.user_id,
            self.version,
            event_type,
            payload,
            self.now,
        ));
    }

    /// The user's version after the events recorded so far, and the events, for a statement
    /// that writes them together with its change (instead of [`UserChange::finish`]).
    pub fn into_events(self) -> (i64, Vec<NewEvent>) {
        (self.version, self.events)
    }

    /// Appends the events and moves the user's version on, in one statement; a change without
    /// events writes nothing here.
    pub async fn finish(self, connection: &mut PgConnection) -> Result<(), Error> {
        if self.events.is_empty() {
            return Ok(());
        }
        store::append_and_advance(
            connection,
            self.user_id,
            self.version,
            self.now,
            &self.events,
        )
        .await
    }
}
