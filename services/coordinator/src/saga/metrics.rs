//! The engine's metrics: sagas started and ended by outcome, adoptions, sagas stuck now, and
//! the latency of each step's attempts.

use std::sync::OnceLock;
use std::time::Duration;

use phoenix_runtime::metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::log::SagaState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    saga_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    saga_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    saga_type: String,
    step: String,
}

struct SagaMetrics {
    started: Family<TypeLabels, Counter>,
    ended: Family<OutcomeLabels, Counter>,
    adopted: Counter,
    stuck: Gauge,
    step_seconds: Family<StepLabels, Histogram>,
}

fn get() -> &'static SagaMetrics {
    static METRICS: OnceLock<SagaMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let stuck = Gauge::default();
        metrics::global().register(
            "sagas_stuck",
            "Sagas STUCK now (the database's count, refreshed every few seconds)",
            stuck.clone(),
        );
        // 1 ms .. ~16 s
        let step_seconds = Family::<StepLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        metrics::global().register(
            "saga_step_seconds",
            "Latency of one attempt of a saga step's action or compensation",
            step_seconds.clone(),
        );
        SagaMetrics {
            started: metrics::counter_family("sagas_started", "Sagas started, by type"),
            ended: metrics::counter_family(
                "sagas_ended",
                "Sagas that completed, were compensated or got stuck, by type and outcome",
            ),
            adopted: metrics::counter(
                "sagas_adopted",
                "Sagas taken over from an owner whose lease expired",
            ),
            stuck,
            step_seconds,
        }
    })
}

pub fn saga_started(saga_type: &str) {
    get()
        .started
        .get_or_create(&TypeLabels {
            saga_type: saga_type.to_owned(),
        })
        .inc();
}

pub fn saga_finished(saga_type: &str, state: SagaState) {
    get()
        .ended
        .get_or_create(&OutcomeLabels {
            saga_type: saga_type.to_owned(),
            outcome: state.as_str().to_ascii_lowercase(),
        })
        .inc();
}

pub fn saga_adopted() {
    get().adopted.inc();
}

pub fn set_stuck(count: i64) {
    get().stuck.set(count);
}

pub fn step_finished(saga_type: &str, step: &str, took: Duration) {
    get()
        .step_seconds
        .get_or_create(&StepLabels {
            saga_type: saga_type.to_owned(),
            step: step.to_owned(),
        })
        .observe(took.as_secs_f64());
}
