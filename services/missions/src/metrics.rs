//! The missions service's own metrics, in the process-wide registry next to the RPC metrics.
//! Counters are exposed with the registry's `phoenix_` prefix and the `_total` suffix
//! (`phoenix_missions_heartbeats_total`, ...).

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

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
}

pub fn get() -> &'static MissionsMetrics {
    static METRICS: OnceLock<MissionsMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics = MissionsMetrics {
            heartbeats: Counter::default(),
            duplicate_heartbeats: Counter::default(),
            duplicate_claims: Counter::default(),
            petals_lost: Counter::default(),
            protected_days: Counter::default(),
            day_closes_refused: Counter::default(),
            divergences: Family::default(),
        };
        let registry = phoenix_runtime::metrics::global();
        registry.register(
            "missions_heartbeats",
            "Heartbeats recorded (replays excluded)",
            metrics.heartbeats.clone(),
        );
        registry.register(
            "missions_duplicate_heartbeats",
            "Heartbeats answered as a replay of the day's first one",
            metrics.duplicate_heartbeats.clone(),
        );
        registry.register(
            "missions_duplicate_claims",
            "Claims refused a second grant and answered with the original claim",
            metrics.duplicate_claims.clone(),
        );
        registry.register(
            "missions_petals_lost",
            "Petals lost by day closes",
            metrics.petals_lost.clone(),
        );
        registry.register(
            "missions_protected_days",
            "Missed days covered by a protecting effect instead of a petal",
            metrics.protected_days.clone(),
        );
        registry.register(
            "missions_day_closes_refused",
            "Boards whose batch day close the database refused; each stays due and is tried again",
            metrics.day_closes_refused.clone(),
        );
        registry.register(
            "missions_divergences",
            "DUAL differences between the primary and the secondary board store, by kind",
            metrics.divergences.clone(),
        );
        metrics
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
