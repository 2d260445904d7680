//! The ledger's own metrics, in the process-wide registry next to the RPC metrics.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use phoenix_runtime::metrics::{self, KindLabels, ReasonLabels};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::domain::ledger::Transfer;

pub struct LedgerMetrics {
    /// Transfers recorded, by kind.
    pub transfers: Family<KindLabels, Counter>,
    /// Operations refused by a rule, by reason.
    pub refusals: Family<ReasonLabels, Counter>,
    /// Pending transfers and reservations released by the sweeper, by kind.
    pub expired: Family<KindLabels, Counter>,
    /// Idempotency keys removed after their TTL.
    pub keys_removed: Counter,
    /// Groups of coalesced posting calls taken by a writer, and the calls in them: their
    /// ratio is the mean group size.
    pub coalesced_groups: Counter,
    pub coalesced_calls: Counter,
    /// Posting calls held back behind a group being written that names one of their accounts.
    pub coalesce_deferred: Counter,
    /// Posting transactions begun (alone or coalesced, committed or not), and the seconds they
    /// spent in each [`PostingPhase`]: a phase's seconds over the transactions is its mean.
    pub posting_transactions: Counter,
    pub posting_seconds: Family<PhaseLabels, Counter<f64, AtomicU64>>,
}

/// Labels of the posting phases' seconds (`phase="write"`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

/// The steps of a posting transaction, one after the other on its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostingPhase {
    /// Taking a pooled connection, the tenant's policy gate and `BEGIN`.
    Begin,
    /// Locking the accounts, reading what the rules need, and deciding every call.
    Decide,
    /// The one statement that writes the transaction's calls.
    Write,
    /// `COMMIT` (its WAL flush), or the rollback of a try whose keys were taken.
    End,
}

impl PostingPhase {
    pub const ALL: [Self; 4] = [Self::Begin, Self::Decide, Self::Write, Self::End];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Begin => "begin",
            Self::Decide => "decide",
            Self::Write => "write",
            Self::End => "end",
        }
    }
}

pub fn get() -> &'static LedgerMetrics {
    static METRICS: OnceLock<LedgerMetrics> = OnceLock::new();
    METRICS.get_or_init(|| LedgerMetrics {
        transfers: metrics::counter_family("ledger_transfers", "Transfers recorded, by kind"),
        refusals: metrics::counter_family(
            "ledger_refusals",
            "Ledger operations refused by a rule, by reason",
        ),
        expired: metrics::counter_family(
            "ledger_expired",
            "Pending transfers and stock reservations released after their timeout, by kind",
        ),
        keys_removed: metrics::counter(
            "ledger_idempotency_keys_removed",
            "Idempotency keys removed after their TTL",
        ),
        coalesced_groups: metrics::counter(
            "ledger_coalesced_groups",
            "Groups of concurrent posting calls written together (one transaction per tenant)",
        ),
        coalesced_calls: metrics::counter(
            "ledger_coalesced_calls",
            "Posting calls written in coalesced groups",
        ),
        coalesce_deferred: metrics::counter(
            "ledger_coalesce_deferred",
            "Posting calls held back because a group being written names one of their accounts",
        ),
        posting_transactions: metrics::counter(
            "ledger_posting_transactions",
            "Posting transactions begun, alone or coalesced, committed or not",
        ),
        posting_seconds: {
            let family = Family::default();
            metrics::global().register(
                "ledger_posting_seconds",
                "Seconds posting transactions spent in each phase (begin, decide, write, end)",
                family.clone(),
            );
            family
        },
    })
}

/// The seconds posting transactions have spent in `phase` so far.
pub fn posting_seconds(phase: PostingPhase) -> f64 {
    phase_seconds(phase).get()
}

/// The counter of `phase`'s seconds.
fn phase_seconds(
    phase: PostingPhase,
) -> impl std::ops::Deref<Target = Counter<f64, AtomicU64>> + 'static {
    get().posting_seconds.get_or_create(&PhaseLabels {
        phase: phase.as_str(),
    })
}

/// Times one posting transaction's phases into [`LedgerMetrics::posting_seconds`], counting
/// the transaction when started. A phase the transaction failed in counts nothing.
#[derive(Debug)]
pub struct PostingClock {
    lap_start: Instant,
}

impl PostingClock {
    pub fn start() -> Self {
        get().posting_transactions.inc();
        Self {
            lap_start: Instant::now(),
        }
    }

    /// Counts the time since the last lap (or the start) as `phase`'s.
    pub fn lap(&mut self, phase: PostingPhase) {
        let now = Instant::now();
        phase_seconds(phase).inc_by((now - self.lap_start).as_secs_f64());
        self.lap_start = now;
    }
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

/// Counts a posting call held back behind a group being written.
pub fn deferred() {
    get().coalesce_deferred.inc();
}

/// Counts a group of `calls` coalesced posting calls.
pub fn coalesced(calls: usize) {
    get().coalesced_groups.inc();
    get().coalesced_calls.inc_by(calls as u64);
}
