//! The missions service's own metrics, in the process-wide registry next to the RPC metrics.
//! Counters are exposed with the registry's `phoenix_` prefix and the `_total` suffix
//! (`phoenix_missions_heartbeats_total`, ...).

use std::sync::OnceLock;

use phoenix_runtime::metrics::{self, KindLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub struct MissionsMetrics {
    /// Heartbeats recorded (replays excluded).
    pub heartbeats: Counter,
    /// Heartbeats answered as a replay of the day's first one.
    pub duplicate_heartbeats: Counter,
    /// Claims of an already claimed run (or boss), answered with the original claim.
    pub duplicate_claims: Counter,
    /// Petals lost by day closes.
    pub petals_lost: Counter,
    /// Missed days a protecting effect covered instead of a petal.
    pub protected_days: Counter,
    /// Boards whose batch day close the database refused (each stays due).
    pub day_closes_refused: Counter,
    /// DUAL differences between the primary and the secondary store, by kind.
    pub divergences: Family<KindLabels, Counter>,
    /// Goals' TaskCompleted events consumed from the bus, by outcome (`applied`, `unlinked`,
    /// `duplicate`).
    pub task_events: Family<KindLabels, Counter>,
}

pub fn get() -> &'static MissionsMetrics {
    static METRICS: OnceLock<MissionsMetrics> = OnceLock::new();
    METRICS.get_or_init(|| MissionsMetrics {
        heartbeats: metrics::counter(
            "missions_heartbeats",
            "Heartbeats recorded (replays excluded)",
        ),
        duplicate_heartbeats: metrics::counter(
            "missions_duplicate_heartbeats",
            "Heartbeats answered as a replay of the day's first one",
        ),
        duplicate_claims: metrics::counter(
            "missions_duplicate_claims",
            "Claims refused a second grant and answered with the original claim",
        ),
        petals_lost: metrics::counter("missions_petals_lost", "Petals lost by day closes"),
        protected_days: metrics::counter(
            "missions_protected_days",
            "Missed days covered by a protecting effect instead of a petal",
        ),
        day_closes_refused: metrics::counter(
            "missions_day_closes_refused",
            "Boards whose batch day close the database refused; each stays due and is tried again",
        ),
        divergences: metrics::counter_family(
            "missions_divergences",
            "DUAL differences between the primary and the secondary board store, by kind",
        ),
        task_events: metrics::counter_family(
            "missions_task_events",
            "Goals' TaskCompleted events consumed from the bus, by outcome (applied, unlinked, duplicate)",
        ),
    })
}

/// A heartbeat: a new one counts as recorded, a replay as a duplicate.
pub fn heartbeat(replayed: bool) {
    let metrics = get();
    if replayed {
        metrics.duplicate_heartbeats.inc();
    } else {
        metrics.heartbeats.inc();
    }
}

/// A claim answered with the original claim instead of a second grant.
pub fn duplicate_claim() {
    get().duplicate_claims.inc();
}

/// Days closed: `petals_lost` petals lost and `protected` days covered by an effect.
pub fn days_closed(petals_lost: u64, protected: u64) {
    let metrics = get();
    metrics.petals_lost.inc_by(petals_lost);
    metrics.protected_days.inc_by(protected);
}

/// A board whose batch day close the database refused.
pub fn day_close_refused() {
    get().day_closes_refused.inc();
}

/// A DUAL divergence of `kind` (see `store::repo`).
pub fn divergence(kind: &str) {
    get()
        .divergences
        .get_or_create(&KindLabels {
            kind: kind.to_owned(),
        })
        .inc();
}

/// A TaskCompleted event consumed, with its outcome (see `app::tasks`).
pub fn task_event(outcome: &str) {
    get()
        .task_events
        .get_or_create(&KindLabels {
            kind: outcome.to_owned(),
        })
        .inc();
}
