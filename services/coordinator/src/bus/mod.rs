//! The event bus (issue 15, item 4): relays that follow every context's event stream, `Publish`
//! for callers, consumer groups with acknowledgements, redelivery, dead letters and priorities,
//! all on the coordinator's own tables (migration 0003_bus).
//!
//! - [`domain`]: group names, patterns, the line's order, the backoff (pure rules);
//! - [`store`]: every statement;
//! - [`relay`]: one task per source, each holding the source's lease while it relays;
//! - [`api`]: the `EventBusService` RPCs;
//! - [`catalog`]: the seed's event catalogue with default priorities;
//! - [`nats`]: the same bus on NATS JetStream (`PHOENIX_BUS_BACKEND=nats`), chosen in [`Bus`].
//!
//! Consumers inside the coordinator (the analytics writer) use [`Bus::consume`], the same
//! lease/ack cycle a gRPC subscriber gets, without the network.

pub mod api;
pub mod bench;
pub mod catalog;
pub mod domain;
pub mod metrics;
pub mod nats;
pub mod relay;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use phoenix_proto::events::v1 as pb;
use phoenix_runtime::error::Error;
use prost::Message;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use store::Leased;

/// The role an authenticated caller needs for the bus's RPCs (every caller when
/// authentication is off).
pub const BUS_ADMIN_ROLE: &str = "coordinator-admin";

/// How often a waiting subscriber looks for deliveries when nothing in this process woke it
/// (events relayed or published by another coordinator, leases expiring).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The contexts whose `Subscribe` stream the bus follows when their URL is configured.
pub const PEER_SOURCES: [&str; 4] = ["directory", "narrative", "goals", "conversations"];

/// Starts the bus of this coordinator — a relay per source (the configured peers' streams, the
/// ledger's for each tenant of `PHOENIX_BUS_LEDGER_TENANTS`, the coordinator's own), the
/// analytics writer and its partition upkeep, the metrics refresh — and adds
/// `EventBusService` and `AnalyticsService` to `services`. `own` is the coordinator's own
/// event stream when the caller has started it; without it, the bus starts one on the
/// coordinator's `events` table if the schema has one.
pub fn start(
    context: &phoenix_runtime::ServiceContext,
    services: phoenix_runtime::GrpcServices,
    own: Option<phoenix_runtime::stream::EventStream>,
) -> anyhow::Result<phoenix_runtime::GrpcServices> {
    use phoenix_proto::coordinator::v1::analytics_service_server::AnalyticsServiceServer;
    use phoenix_proto::coordinator::v1::event_bus_service_server::EventBusServiceServer;

    let mut bus = Bus::new(context.pool.clone(), context.shutdown.clone());
    let settings = nats::BusSettings::parse(&context.config.service_args)?;
    if settings.bus_backend == nats::Backend::Nats {
        let backend = Arc::new(nats::NatsBus::new(
            settings,
            bus_retention()?,
            context.pool.clone(),
        ));
        tokio::spawn({
            let backend = backend.clone();
            async move { backend.prepare().await }
        });
        bus = bus.on_nats(backend);
    }
    let relays = match std::env::var("PHOENIX_BUS_RELAYS").as_deref() {
        Err(_) | Ok("true") => true,
        Ok("false") => false,
        Ok(other) => anyhow::bail!("PHOENIX_BUS_RELAYS: expected true or false, got {other:?}"),
    };
    let mut sources = Vec::new();
    for service in PEER_SOURCES {
        if context.config.peers.url(service).is_some() {
            sources.push(relay::Source::peer(service, context.peer(service)?));
        }
    }
    if let Ok(tenants) = std::env::var("PHOENIX_BUS_LEDGER_TENANTS") {
        for tenant in tenants.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let tenant = Uuid::try_parse(tenant).map_err(|_| {
                anyhow::anyhow!("PHOENIX_BUS_LEDGER_TENANTS: {tenant:?} is not a tenant UUID")
            })?;
            sources.push(relay::Source::ledger_tenant(
                tenant,
                context.peer("ledger")?,
            ));
        }
    }
    if !relays {
        tracing::warn!(
            "PHOENIX_BUS_RELAYS=false: the bus follows no stream, only Publish feeds it"
        );
        sources.clear();
    }
    for source in sources {
        tokio::spawn(relay::run(bus.clone(), source, context.shutdown.clone()));
    }
    match own {
        _ if !relays => {}
        Some(stream) => {
            tokio::spawn(relay::run(
                bus.clone(),
                relay::Source::own(stream),
                context.shutdown.clone(),
            ));
        }
        None => {
            tokio::spawn(relay_own_stream(bus.clone(), context.shutdown.clone()));
        }
    }

    let retention = crate::analytics::Retention::from_env()?;
    let writer = crate::analytics::Writer::new(context.pool.clone(), retention);
    tokio::spawn(writer.run(bus.clone()));
    let pool = context.pool.clone();
    tokio::spawn(async move {
        if let Err(error) = crate::analytics::maintain(&pool, retention, chrono::Utc::now()).await {
            tracing::warn!(%error, "analytics partitions could not be prepared");
        }
    });
    // The upkeep and the purge work on the shared tables: one replica at a time. The metrics
    // refresh reads into this process's gauges, so every replica runs it.
    let pool = context.pool.clone();
    context.singleton(
        "analytics-partitions",
        Duration::from_secs(3600),
        move || {
            let pool = pool.clone();
            async move {
                crate::analytics::maintain(&pool, retention, chrono::Utc::now()).await?;
                Ok(())
            }
        },
    );
    let retention = bus_retention()?;
    let pool = context.pool.clone();
    context.singleton("bus-purge", Duration::from_secs(60), move || {
        let pool = pool.clone();
        async move {
            // Up to 100,000 a minute, in batches, so one pass never holds locks for long.
            for _ in 0..20 {
                if store::purge(&pool, retention, 5_000).await? < 5_000 {
                    break;
                }
            }
            nats::store::purge(&pool, retention).await?;
            Ok(())
        }
    });
    let pool = context.pool.clone();
    context.every("bus-metrics", Duration::from_secs(5), move || {
        let pool = pool.clone();
        async move { metrics::refresh(&pool).await }
    });

    Ok(services
        .serve(phoenix_runtime::limited!(
            context,
            EventBusServiceServer::new(api::EventBusApi::new(bus))
        ))
        .serve(phoenix_runtime::limited!(
            context,
            AnalyticsServiceServer::new(crate::analytics::api::AnalyticsApi::new(
                context.pool.clone()
            ))
        )))
}

/// How long the bus keeps an event every group is done with: `PHOENIX_BUS_RETENTION` (a
/// duration such as `7d` or `12h`; default 7 days).
fn bus_retention() -> anyhow::Result<Duration> {
    match std::env::var("PHOENIX_BUS_RETENTION") {
        Ok(value) => humantime::parse_duration(&value)
            .ok()
            .filter(|d| *d >= Duration::from_secs(60))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "PHOENIX_BUS_RETENTION: expected a duration of at least 1m such as 12h or 7d, got {value:?}"
                )
            }),
        Err(_) => Ok(Duration::from_secs(7 * 24 * 3600)),
    }
}

/// Relays the coordinator's own `events` table (the sagas' on-commit events) once it exists.
async fn relay_own_stream(bus: Bus, shutdown: CancellationToken) {
    let exists: Result<bool, sqlx::Error> = sqlx::query_scalar(
        "SELECT to_regclass('events') IS NOT NULL AND to_regclass('event_sequencer') IS NOT NULL",
    )
    .fetch_one(bus.pool())
    .await;
    match exists {
        Ok(true) => {
            let stream = phoenix_runtime::stream::EventStream::start(
                "coordinator",
                bus.pool().clone(),
                shutdown.clone(),
            );
            relay::run(bus, relay::Source::own(stream), shutdown).await;
        }
        Ok(false) => {
            tracing::info!("the coordinator has no events table yet: its own stream is not relayed")
        }
        Err(error) => tracing::warn!(%error, "could not look for the coordinator's events table"),
    }
}

/// The bus of one coordinator process.
#[derive(Debug, Clone)]
pub struct Bus {
    pool: PgPool,
    /// Rung when events reached the bus or deliveries were acknowledged in this process.
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    /// The NATS JetStream backend, when the bus runs on it; PostgreSQL otherwise.
    nats: Option<Arc<nats::NatsBus>>,
}

impl Bus {
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        Self {
            pool,
            wake: Arc::new(Notify::new()),
            shutdown,
            nats: None,
        }
    }

    /// The same bus on NATS JetStream.
    pub fn on_nats(mut self, backend: Arc<nats::NatsBus>) -> Self {
        self.nats = Some(backend);
        self
    }

    /// A relay's batch, with the source's position fenced by its lease (see [`store::ingest`]).
    pub async fn ingest(
        &self,
        events: &[store::Ingest],
        relay: (&str, Uuid, i64),
    ) -> Result<Option<u64>, Error> {
        match &self.nats {
            Some(nats) => nats.relay(events, relay).await,
            None => store::ingest(&self.pool, events, Some(relay)).await,
        }
    }

    /// Creates or joins `group` with `patterns` (see [`store::join_group`]); on NATS, its
    /// durable consumers too.
    pub async fn join(
        &self,
        group: &str,
        patterns: &domain::Patterns,
        max_deliveries: Option<i32>,
        ack_timeout: Duration,
    ) -> Result<(), Error> {
        store::join_group(&self.pool, group, patterns, max_deliveries).await?;
        if let Some(nats) = &self.nats {
            nats.join(group, patterns, ack_timeout).await?;
        }
        Ok(())
    }

    /// Hands what `member` held back for redelivery at once (its stream ended).
    pub async fn release_member(&self, member: Uuid) -> Result<(), Error> {
        match &self.nats {
            Some(nats) => nats.release_member(member).await,
            None => store::release_member(&self.pool, member).await,
        }
    }

    /// Up to `limit` dead letters of `group` after `after` (dead_at, sequence).
    pub async fn dead_letters(
        &self,
        group: &str,
        after: Option<(chrono::DateTime<chrono::Utc>, i64)>,
        limit: i64,
    ) -> Result<Vec<store::Dead>, Error> {
        match &self.nats {
            Some(nats) => nats.dead_letters(group, after, limit).await,
            None => store::dead_letters(&self.pool, group, after, limit).await,
        }
    }

    /// Puts dead letters of `group` back for delivery (those of `event_ids`, or all).
    pub async fn replay(&self, group: &str, event_ids: Option<&[Uuid]>) -> Result<u64, Error> {
        let replayed = match &self.nats {
            Some(nats) => nats.replay(group, event_ids).await?,
            None => store::replay(&self.pool, group, event_ids).await?,
        };
        if replayed > 0 {
            self.wake();
        }
        Ok(replayed)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Wakes this process's waiting subscribers.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Puts events on the bus: answers (accepted, duplicates).
    pub async fn publish(&self, events: &[store::Ingest]) -> Result<(u64, u64), Error> {
        if let Some(nats) = &self.nats {
            let (accepted, duplicates) = nats.publish(events).await?;
            if accepted > 0 {
                self.wake();
            }
            return Ok((accepted, duplicates));
        }
        let accepted = store::ingest(&self.pool, events, None)
            .await?
            .unwrap_or_default();
        if accepted > 0 {
            self.wake();
        }
        let total = u64::try_from(events.len()).unwrap_or(u64::MAX);
        Ok((accepted, total - accepted))
    }

    /// One lease pass for `member` of `group` (see [`store::lease`]).
    pub async fn lease(
        &self,
        group: &str,
        member: Uuid,
        limit: i64,
        ack_timeout: Duration,
    ) -> Result<Vec<Leased>, Error> {
        let leased = match &self.nats {
            Some(nats) => nats.lease(group, member, limit, ack_timeout).await?,
            None => store::lease(&self.pool, group, member, limit, ack_timeout).await?,
        };
        metrics::delivered(group, &leased);
        Ok(leased)
    }

    /// Waits until something may have become deliverable: a wake-up of this process, the poll
    /// interval (doubled after each of the first two empty passes in a row, `idle`, so an idle
    /// subscriber costs a pass every 400 ms), or shutdown (false).
    pub async fn wait(
        &self,
        woken: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        idle: u32,
    ) -> bool {
        let poll = POLL_INTERVAL * 2_u32.pow(idle.min(2));
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = woken => true,
            () = tokio::time::sleep(poll) => true,
        }
    }

    /// A future that completes at the next [`wake`](Self::wake), armed now.
    pub fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Acknowledges and fails deliveries of `group`: (acknowledged, failed).
    pub async fn ack(
        &self,
        group: &str,
        done: &[Uuid],
        failed: &[(Uuid, String)],
    ) -> Result<(u64, u64), Error> {
        let (acknowledged, failures) = match &self.nats {
            Some(nats) => nats.ack(group, done, failed).await?,
            None => (
                store::ack(&self.pool, group, done).await?,
                store::fail(&self.pool, group, failed).await?,
            ),
        };
        metrics::acknowledged(group, acknowledged, failures);
        if acknowledged + failures > 0 {
            self.wake();
        }
        Ok((acknowledged, failures))
    }

    /// Runs an in-process consumer: `group` with `patterns`, `handle` called with each batch of
    /// deliveries; what it answers (done, failed with a reason) is acknowledged. Stops at
    /// shutdown.
    pub async fn consume<F, Fut>(
        &self,
        group: &str,
        patterns: &domain::Patterns,
        batch: i64,
        ack_timeout: Duration,
        handle: F,
    ) where
        F: Fn(Vec<Leased>) -> Fut,
        Fut: std::future::Future<Output = (Vec<Uuid>, Vec<(Uuid, String)>)>,
    {
        let member = Uuid::new_v4();
        let mut joined = false;
        let mut idle = 0;
        while !self.shutdown.is_cancelled() {
            let woken = self.woken();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let pass = async {
                if !joined {
                    self.join(group, patterns, None, ack_timeout).await?;
                    joined = true;
                }
                let leased = self.lease(group, member, batch, ack_timeout).await?;
                if leased.is_empty() {
                    return Ok::<bool, Error>(false);
                }
                let (done, failed) = handle(leased).await;
                self.ack(group, &done, &failed).await?;
                Ok(true)
            };
            match pass.await {
                Ok(true) => {
                    idle = 0;
                    continue;
                }
                Ok(false) => idle += 1,
                Err(error) => {
                    tracing::warn!(group, error = %error, "bus consumer pass failed; retrying");
                }
            }
            if !self.wait(woken, idle).await {
                break;
            }
        }
    }
}

/// The event on the bus a context's stream (or a caller) gave: priority filled in from the
/// catalogue when unspecified, catalogue name and ordering key computed.
pub fn ingest_of(
    mut event: pb::Event,
    source: &str,
    source_position: i64,
) -> Result<store::Ingest, String> {
    let event_id =
        Uuid::try_parse(&event.id).map_err(|_| format!("event id {:?} is not a UUID", event.id))?;
    let payload = event
        .payload
        .as_ref()
        .map_or(&[][..], |p| p.value.as_slice());
    let catalog_type = catalog::catalog_name(&event.r#type, payload).map(str::to_owned);
    // A stream names a payload after its event type; a catalogue type's payload is the
    // catalogue's message, so the Any says which one (a JSON payload keeps the type's name).
    if let (Some(entry), Some(any)) = (catalog::by_name(&event.r#type), event.payload.as_mut())
        && any.type_url.rsplit('/').next() == Some(event.r#type.as_str())
        && !catalog::is_json(&any.value)
    {
        any.type_url = format!("type.googleapis.com/{}", entry.payload);
    }
    // A stream cannot say "unspecified" (its priority column defaults to NORMAL), so a relayed
    // catalogue event at NORMAL takes the catalogue's default too.
    let relayed_default = source_position > 0 && catalog_type.is_some();
    let priority = match pb::Priority::try_from(event.priority) {
        Ok(pb::Priority::Unspecified) | Err(_) => None,
        Ok(pb::Priority::Normal) if relayed_default => None,
        Ok(given) => Some(given as i32),
    }
    .unwrap_or_else(|| {
        catalog::default_priority(catalog_type.as_deref().unwrap_or(&event.r#type)) as i32
    });
    event.priority = priority;
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(phoenix_runtime::convert::time_from_proto)
        .unwrap_or_else(chrono::Utc::now);
    event.occurred_at = Some(phoenix_runtime::convert::timestamp(occurred_at));
    Ok(store::Ingest {
        event_id,
        source: source.to_owned(),
        source_position,
        aggregate_key: domain::aggregate_key(
            &event.tenant_id,
            &event.aggregate_type,
            &event.aggregate_id,
        ),
        catalog_type,
        priority: i16::try_from(priority).unwrap_or(2),
        occurred_at,
        event_type: event.r#type.clone(),
        envelope: event.encode_to_vec(),
    })
}
