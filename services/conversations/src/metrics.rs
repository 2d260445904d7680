//! The context's own metrics, in the process-wide registry next to the RPC metrics.

use std::sync::OnceLock;

use phoenix_runtime::metrics::{self, KindLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub struct ConversationsMetrics {
    /// Rows the cleanup removed, by kind.
    pub cleaned: Family<KindLabels, Counter>,
    /// Buffer events: `taken`, `redelivered` (a take of a buffer whose last lease expired
    /// unacknowledged), `acknowledged`, and `messages_acknowledged`.
    pub buffers: Family<KindLabels, Counter>,
}

pub fn get() -> &'static ConversationsMetrics {
    static METRICS: OnceLock<ConversationsMetrics> = OnceLock::new();
    METRICS.get_or_init(|| ConversationsMetrics {
        cleaned: metrics::counter_family(
            "conversations_cleaned",
            "Rows the conversations cleanup removed, by kind",
        ),
        buffers: metrics::counter_family(
            "conversations_buffers",
            "Message buffers taken, redelivered after an expired lease, and acknowledged",
        ),
    })
}

/// Adds `count` to `family`'s `kind`.
pub fn count(family: &Family<KindLabels, Counter>, kind: &str, count: u64) {
    if count > 0 {
        family
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc_by(count);
    }
}
