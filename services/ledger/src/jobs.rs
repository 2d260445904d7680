//! Background work of the ledger: releasing expired pending transfers and stock reservations,
//! failing import batches whose client stopped, forgetting expired idempotency keys, and
//! keeping new tables analyzed while they grow. Each job is a singleton
//! ([`ServiceContext::singleton`]): with several replicas, one runs it at a time and the others
//! skip their tick, so a pending or reservation expires once, with one event. Each change still
//! takes the same row locks as the RPCs do (reservations are claimed `FOR UPDATE SKIP LOCKED`),
//! so an RPC racing a sweep is safe too.

use std::time::Duration;

use chrono::Utc;
use phoenix_runtime::ServiceContext;

use crate::app::Ledger;
use crate::metrics;

/// Most reservations released per sweep.
const EXPIRY_BATCH: i64 = 500;
/// How often running import batches are checked for staleness.
const STALE_SWEEP: Duration = Duration::from_secs(60);
/// How often new tables are checked for statistics to refresh
/// ([`phoenix_runtime::jobs::analyze_growing_tables`]).
const GROWING_TABLES: Duration = Duration::from_secs(2);
/// Most idempotency keys deleted per sweep.
const KEY_BATCH: i64 = 10_000;

pub fn start(context: &ServiceContext, ledger: &Ledger) {
    let interval = ledger.settings().sweep_interval;
    let sweep = ledger.clone();
    context.singleton("expire-pendings", interval, move || {
        let ledger = sweep.clone();
        async move {
            ledger.expire_pendings().await?;
            Ok(())
        }
    });
    let sweep = ledger.clone();
    context.singleton("expire-reservations", interval, move || {
        let ledger = sweep.clone();
        async move {
            ledger.expire_reservations(Utc::now(), EXPIRY_BATCH).await?;
            Ok(())
        }
    });
    let sweep = ledger.clone();
    context.singleton("fail-stale-import-batches", STALE_SWEEP, move || {
        let ledger = sweep.clone();
        async move {
            ledger.fail_stale_imports(Utc::now()).await?;
            Ok(())
        }
    });
    let pool = ledger.pool().clone();
    context.singleton("analyze-growing-tables", GROWING_TABLES, move || {
        let pool = pool.clone();
        async move {
            phoenix_runtime::jobs::analyze_growing_tables(&pool).await?;
            Ok(())
        }
    });
    let pool = ledger.pool().clone();
    context.singleton("remove-expired-keys", Duration::from_secs(60), move || {
        let pool = pool.clone();
        async move {
            let removed =
                phoenix_runtime::idempotency::remove_expired(&pool, Utc::now(), KEY_BATCH).await?;
            metrics::get().keys_removed.inc_by(removed);
            Ok(())
        }
    });
}
