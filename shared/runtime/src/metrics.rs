//! Prometheus metrics in the text format on `GET /metrics`: per-RPC count by status code, latency
//! histogram, in-flight and shed calls, and connection-pool stats. One registry per process, with
//! a `service` label, so `phoenix up` exposes all six services on one port.

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub service: String,
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub service: String,
    pub grpc_service: String,
    pub grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

/// The process-wide metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pools: Mutex<Vec<(String, PgPool)>>,
    pub rpcs_handled: Family<RpcLabels, Counter>,
    pub rpc_duration: Family<MethodLabels, Histogram>,
    pub rpcs_in_flight: Family<ServiceLabels, Gauge>,
    pub rpcs_shed: Family<ServiceLabels, Counter>,
    pub idempotent_replays: Family<ServiceLabels, Counter>,
    pub events_sequenced: Family<ServiceLabels, Counter>,
    pub connections_discarded: Family<ServiceLabels, Counter>,
    pool_connections: Family<ServiceLabels, Gauge>,
    pool_idle: Family<ServiceLabels, Gauge>,
    pool_max: Family<ServiceLabels, Gauge>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("phoenix");
        let rpcs_handled = Family::<RpcLabels, Counter>::default();
        // 0.5 ms .. ~8 s
        let rpc_duration = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        let rpcs_in_flight = Family::<ServiceLabels, Gauge>::default();
        let rpcs_shed = Family::<ServiceLabels, Counter>::default();
        let idempotent_replays = Family::<ServiceLabels, Counter>::default();
        let events_sequenced = Family::<ServiceLabels, Counter>::default();
        let connections_discarded = Family::<ServiceLabels, Counter>::default();
        let pool_connections = Family::<ServiceLabels, Gauge>::default();
        let pool_idle = Family::<ServiceLabels, Gauge>::default();
        let pool_max = Family::<ServiceLabels, Gauge>::default();
        registry.register(
            "grpc_server_handled",
            "RPCs completed, by status code",
            rpcs_handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "RPC latency until the last response byte",
            rpc_duration.clone(),
        );
        registry.register(
            "grpc_server_in_flight",
            "RPCs being handled now",
            rpcs_in_flight.clone(),
        );
        registry.register(
            "grpc_server_shed",
            "RPCs refused with RESOURCE_EXHAUSTED by the concurrency limit",
            rpcs_shed.clone(),
        );
        registry.register(
            "idempotent_replays",
            "Mutating calls answered from their idempotency key's record",
            idempotent_replays.clone(),
        );
        registry.register(
            "events_sequenced",
            "Events given their stream position by the sequencer",
            events_sequenced.clone(),
        );
        registry.register(
            "db_pool_discarded_connections",
            "Connections closed on release because they were left inside a transaction",
            connections_discarded.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured maximum of database connections",
            pool_max.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            pools: Mutex::new(Vec::new()),
            rpcs_handled,
            rpc_duration,
            rpcs_in_flight,
            rpcs_shed,
            idempotent_replays,
            events_sequenced,
            connections_discarded,
            pool_connections,
            pool_idle,
            pool_max,
        }
    }

    /// Lets a service register its own metrics (e.g. `petals_lost`) in the shared registry.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        lock(&self.registry).register(name, help, metric);
    }

    /// Counts a call answered from its idempotency key, for the service serving it.
    pub fn count_replay(&self) {
        let service = crate::middleware::CURRENT_CALL
            .try_with(|call| call.service)
            .unwrap_or("none");
        self.idempotent_replays
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .inc();
    }

    /// Counts events the sequencer gave a position.
    pub fn count_sequenced(&self, service: &str, events: u64) {
        self.events_sequenced
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .inc_by(events);
    }

    pub fn count_discarded_connection(&self, service: &str) {
        self.connections_discarded
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .inc();
    }

    /// Reports a service's pool on every scrape.
    pub fn watch_pool(&self, service: &str, pool: PgPool) {
        let mut pools = lock(&self.pools);
        pools.retain(|(name, _)| name != service);
        pools.push((service.to_owned(), pool));
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        for (service, pool) in lock(&self.pools).iter() {
            let labels = ServiceLabels {
                service: service.clone(),
            };
            self.pool_connections
                .get_or_create(&labels)
                .set(i64::from(pool.size()));
            self.pool_idle
                .get_or_create(&labels)
                .set(i64::try_from(pool.num_idle()).unwrap_or(i64::MAX));
            self.pool_max
                .get_or_create(&labels)
                .set(i64::from(pool.options().get_max_connections()));
        }
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry))
        {
            tracing::error!(%error, "encoding metrics failed");
        }
        text
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these values inconsistent, so keep going.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Serves `GET /metrics` until `shutdown` is cancelled. Returns the bound address.
pub async fn serve(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("PHOENIX_METRICS_ADDR: cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                global().render(),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(%error, "metrics endpoint failed");
        }
    });
    Ok(bound)
}

/// Labels of a counter family counted by kind (`kind="posted"`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// Labels of a counter family counted by reason (`reason="INSUFFICIENT_FUNDS"`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// A counter registered in the process-wide registry under `phoenix_<name>_total`: a service
/// declares and registers each of its metrics in one expression.
pub fn counter(name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    global().register(name, help, counter.clone());
    counter
}

/// A counter family registered like [`counter`].
pub fn counter_family<L>(name: &str, help: &str) -> Family<L, Counter>
where
    L: prometheus_client::encoding::EncodeLabelSet
        + Clone
        + std::hash::Hash
        + Eq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let family = Family::<L, Counter>::default();
    global().register(name, help, family.clone());
    family
}
