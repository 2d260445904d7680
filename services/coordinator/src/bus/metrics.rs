//! The bus's metrics, in the process-wide registry (`/metrics`):
//!
//! - `phoenix_bus_source_position{source}`: the position each relay has put on the bus;
//! - `phoenix_bus_source_lag_seconds{source}`: age of the newest event of the relay's last batch
//!   when it reached the bus (how far behind its stream the relay runs);
//! - `phoenix_bus_relayed_events_total{source}`, `phoenix_bus_relay_failures_total{source}`,
//!   `phoenix_bus_relay_skipped_total{source}` (events without a UUID id);
//! - `phoenix_bus_deliveries_total{group}`, `phoenix_bus_redeliveries_total{group}`,
//!   `phoenix_bus_acks_total{group}`, `phoenix_bus_failed_deliveries_total{group}`;
//! - `phoenix_bus_group_lag{group}`: events not yet delivered and acknowledged, and
//!   `phoenix_bus_dead_letters{group}`, refreshed every few seconds ([`refresh`]).

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use phoenix_runtime::metrics::global;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::Leased;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

struct BusMetrics {
    source_position: Family<SourceLabels, Gauge>,
    source_lag: Family<SourceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    relayed: Family<SourceLabels, Counter>,
    relay_failures: Family<SourceLabels, Counter>,
    relay_skipped: Family<SourceLabels, Counter>,
    deliveries: Family<GroupLabels, Counter>,
    redeliveries: Family<GroupLabels, Counter>,
    acks: Family<GroupLabels, Counter>,
    failures: Family<GroupLabels, Counter>,
    group_lag: Family<GroupLabels, Gauge>,
    dead_letters: Family<GroupLabels, Gauge>,
}

/// A metric registered in the process-wide registry under `phoenix_<name>`.
fn registered<M: prometheus_client::registry::Metric + Clone + Default>(
    name: &str,
    help: &str,
) -> M {
    let metric = M::default();
    global().register(name, help, metric.clone());
    metric
}

fn get() -> &'static BusMetrics {
    static METRICS: OnceLock<BusMetrics> = OnceLock::new();
    METRICS.get_or_init(|| BusMetrics {
        source_position: registered(
            "bus_source_position",
            "Position of each source stream put on the bus",
        ),
        source_lag: registered(
            "bus_source_lag_seconds",
            "Age of the newest event of a relay's last batch when it reached the bus",
        ),
        relayed: registered("bus_relayed_events", "Events relayed from each source"),
        relay_failures: registered(
            "bus_relay_failures",
            "Relay streams that failed and were resumed",
        ),
        relay_skipped: registered(
            "bus_relay_skipped",
            "Events of a source that could not be put on the bus (no UUID id)",
        ),
        deliveries: registered("bus_deliveries", "Deliveries handed out per consumer group"),
        redeliveries: registered(
            "bus_redeliveries",
            "Deliveries handed out again (after a timeout or a failure)",
        ),
        acks: registered("bus_acks", "Deliveries acknowledged"),
        failures: registered(
            "bus_failed_deliveries",
            "Deliveries their consumer reported failed",
        ),
        group_lag: registered(
            "bus_group_lag",
            "Events of each consumer group not yet delivered and acknowledged",
        ),
        dead_letters: registered("bus_dead_letters", "Dead letters of each consumer group"),
    })
}

fn source(name: &str) -> SourceLabels {
    SourceLabels {
        source: name.to_owned(),
    }
}

fn group(name: &str) -> GroupLabels {
    GroupLabels {
        group: name.to_owned(),
    }
}

pub(super) fn relayed(name: &str, position: i64, newest: Option<DateTime<Utc>>, events: usize) {
    let metrics = get();
    metrics
        .source_position
        .get_or_create(&source(name))
        .set(position);
    metrics
        .relayed
        .get_or_create(&source(name))
        .inc_by(u64::try_from(events).unwrap_or(0));
    if let Some(newest) = newest {
        let lag = (Utc::now() - newest).num_milliseconds().max(0);
        #[allow(clippy::cast_precision_loss)]
        metrics
            .source_lag
            .get_or_create(&source(name))
            .set(lag as f64 / 1000.0);
    }
}

pub(super) fn relay_failed(name: &str) {
    get().relay_failures.get_or_create(&source(name)).inc();
}

pub(super) fn relay_skipped(name: &str) {
    get().relay_skipped.get_or_create(&source(name)).inc();
}

pub(super) fn delivered(name: &str, leased: &[Leased]) {
    if leased.is_empty() {
        return;
    }
    let metrics = get();
    let again = leased.iter().filter(|l| l.attempt > 1).count();
    metrics
        .deliveries
        .get_or_create(&group(name))
        .inc_by(leased.len() as u64);
    metrics
        .redeliveries
        .get_or_create(&group(name))
        .inc_by(again as u64);
}

pub(super) fn acknowledged(name: &str, acks: u64, failures: u64) {
    let metrics = get();
    metrics.acks.get_or_create(&group(name)).inc_by(acks);
    metrics
        .failures
        .get_or_create(&group(name))
        .inc_by(failures);
}

/// Refreshes the per-group gauges from the database.
pub async fn refresh(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let metrics = get();
    for (name, lag, dead) in super::store::group_lag(pool).await? {
        metrics.group_lag.get_or_create(&group(&name)).set(lag);
        metrics.dead_letters.get_or_create(&group(&name)).set(dead);
    }
    Ok(())
}
