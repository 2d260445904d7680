//! The conversations use cases: each loads through the store, asks the domain, writes through
//! the store, and appends its events in the same transaction. The API, tools and tests call
//! these, never the API's internals.

mod buffers;
mod caches;
mod cleanup;
mod contacts;
mod events;
mod leases;
pub mod legacy;
pub use crate::store::legacy::ExportRow;

pub use cleanup::Removed;
pub use contacts::{ContactView, SavedThread};

use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, EventStream, NewEvent};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::Phone;

/// Aggregate of a contact's events: profile, thread and buffer changes share one version
/// sequence (the contact row's `version`), so a consumer sees them in the order they happened.
pub const CONTACT_AGGREGATE: &str = "contact";

#[derive(Debug, Clone)]
pub struct Conversations {
    pool: PgPool,
    events: EventStream,
}

impl Conversations {
    /// The context on `pool`, with its event sequencer running until `shutdown`.
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        let events = EventStream::start("conversations", pool.clone(), shutdown);
        Self { pool, events }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Appends the events of a change in its transaction (the context has no tenants).
async fn publish(connection: &mut PgConnection, events: &[NewEvent]) -> Result<(), Error> {
    stream::append(connection, Uuid::nil(), events).await
}

/// An event of the contact's stream at `version`.
fn contact_event(
    phone: &Phone,
    version: i64,
    event_type: &'static str,
    payload: &impl prost::Message,
    at: chrono::DateTime<chrono::Utc>,
) -> NewEvent {
    NewEvent::new(
        CONTACT_AGGREGATE,
        phone.as_str(),
        version,
        event_type,
        payload,
        at,
    )
}
