//! The ledger's use cases: each loads through the store, asks the domain, writes through the
//! store, and makes the call idempotent when it carries a key. The API, the tools (bench, the
//! jobs) and the tests call these, never the API's internals. One module per area.

pub mod accounts;
pub mod coalesce;
pub mod events;
pub mod import;
pub mod policies;
pub mod posting;
pub mod shop;
pub mod stock;
pub mod tenants;

use futures_util::future::BoxFuture;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};
use phoenix_runtime::stream::EventStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use self::coalesce::{Coalescer, Coalescing};
use self::posting::PostingWriter;
use crate::config::LedgerSettings;

/// The ledger's use cases, on one pool.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: PgPool,
    settings: LedgerSettings,
    /// The service's event stream: its sequencer runs until shutdown; writers wake it after
    /// they commit events, and subscriptions follow it.
    events: EventStream,
    /// Writes posting calls, alone or together.
    writer: PostingWriter,
    /// Queues concurrent single-operation posting calls for the writer; `None` when
    /// coalescing is off (a window of 0).
    coalescer: Option<std::sync::Arc<Coalescer>>,
}

impl Ledger {
    /// The use cases on `pool` (whose connections have `search_path` set to `ledger`), with
    /// the event stream's sequencer started; it and every subscription stop at `shutdown`.
    pub fn new(pool: PgPool, settings: LedgerSettings, shutdown: CancellationToken) -> Self {
        let events = EventStream::start("ledger", pool.clone(), shutdown);
        let writer = PostingWriter {
            pool: pool.clone(),
            idempotency_ttl: settings.idempotency_ttl,
            snapshot_every: settings.snapshot_every,
            events: events.clone(),
        };
        let coalescer = (!settings.coalesce_window.is_zero()).then(|| {
            std::sync::Arc::new(Coalescer::start(
                writer.clone(),
                Coalescing {
                    window: settings.coalesce_window,
                    writers: usize::from(settings.coalesce_writers),
                    max_calls: usize::from(settings.coalesce_max_calls),
                },
            ))
        });
        Self {
            pool,
            settings,
            events,
            writer,
            coalescer,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn settings(&self) -> &LedgerSettings {
        &self.settings
    }

    /// Runs `effect` in a transaction at most once per idempotency key (see
    /// [`phoenix_runtime::idempotency::once`]), then wakes the sequencer for the events it
    /// committed. Every keyed change appends events.
    async fn once<T, F>(&self, key: &RequestKey, effect: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, Error>>,
    {
        let outcome =
            idempotency::once(&self.pool, key, self.settings.idempotency_ttl, effect).await?;
        self.events.appended();
        Ok(outcome)
    }
}
