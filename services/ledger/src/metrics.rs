//! The ledger's own metrics, in the process-wide registry next to the RPC metrics.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::domain::ledger::Transfer;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

pub struct LedgerMetrics {
    /// Transfers recorded, by kind.
    pub transfers: Family<KindLabels, Counter>,
    /// Operations refused by a rule, by reason.
    pub refusals: Family<ReasonLabels, Counter>,
    /// Pending transfers and reservations released by the sweeper, by kind.
    pub expired: Family<KindLabels, Counter>,
    /// Idempotency keys removed after their TTL.
    pub keys_removed: Counter,
}

pub fn get() -> &'static LedgerMetrics {
    static METRICS: OnceLock<LedgerMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics = LedgerMetrics {
            transfers: Family::default(),
            refusals: Family::default(),
            expired: Family::default(),
            keys_removed: Counter::default(),
        };
        let registry = phoenix_runtime::metrics::global();
        registry.register(
            "ledger_transfers",
            "Transfers recorded, by kind",
            metrics.transfers.clone(),
        );
        registry.register(
            "ledger_refusals",
            "Ledger operations refused by a rule, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "ledger_expired",
            "Pending transfers and stock reservations released after their timeout, by kind",
            metrics.expired.clone(),
        );
        registry.register(
            "ledger_idempotency_keys_removed",
            "Idempotency keys removed after their TTL",
            metrics.keys_removed.clone(),
        );
        metrics
    })
}

/// Counts committed transfers by kind (after the commit: a replay's rolled-back effect and a
/// failed transaction count nothing).
pub fn made<'t>(transfers: impl IntoIterator<Item = &'t Transfer>) {
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for transfer in transfers {
        *by_kind.entry(transfer.kind.as_str()).or_default() += 1;
    }
    for (kind, count) in by_kind {
        get()
            .transfers
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc_by(count);
    }
}

/// Counts a refusal by its reason.
pub fn refused(reason: &str) {
    get()
        .refusals
        .get_or_create(&ReasonLabels {
            reason: reason.to_owned(),
        })
        .inc();
}

/// Counts pending transfers or reservations (`kind`) released after their timeout.
pub fn expired(kind: &str, count: u64) {
    get()
        .expired
        .get_or_create(&KindLabels {
            kind: kind.to_owned(),
        })
        .inc_by(count);
}
