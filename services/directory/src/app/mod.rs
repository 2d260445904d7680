//! The directory's use cases: each loads through the store, asks the domain, writes through the
//! store, and appends its events in the same transaction. The API, tools and tests call these,
//! never the API's internals.

mod channels;
mod courses;
mod events;
mod users;
mod vip;

pub use users::{ImportedUser, UserPage};

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, EventStream, NewEvent};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long an idempotency key of a VIP change is remembered: a purchase retried within a
/// week grants once.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Aggregate of a user's events (profile, VIP and channel changes share one version sequence).
pub const USER_AGGREGATE: &str = "user";
/// Aggregate of a course's events.
pub const COURSE_AGGREGATE: &str = "course";

#[derive(Debug, Clone)]
pub struct Directory {
    pool: PgPool,
    events: EventStream,
}

impl Directory {
    /// The directory on `pool`, with its event sequencer running until `shutdown`.
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        let events = EventStream::start("directory", pool.clone(), shutdown);
        Self { pool, events }
    }

    /// The time of a change, to the microsecond PostgreSQL keeps: what is answered is what is
    /// stored.
    pub fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// The clock to the microsecond PostgreSQL keeps (what [`Directory::now`] answers), for code
/// that must read it inside a transaction, after its locks are held.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Appends the events of a change in its transaction (the directory has no tenants).
async fn publish(connection: &mut PgConnection, events: &[NewEvent]) -> Result<(), Error> {
    stream::append(connection, Uuid::nil(), events).await
}
