//! Background work of the ledger: releasing expired pending transfers and stock reservations,
//! and forgetting expired idempotency keys. Each job runs on every replica; they are safe to run concurrently because
//! each change takes the same row locks as the RPCs do.

use std::time::Duration;

use chrono::Utc;
use phoenix_runtime::ServiceContext;

use crate::api::Ledger;
use crate::domain::ledger::{Linking, Operation};
use crate::metrics::{self, KindLabels};
use crate::store;

/// Most pending transfers released per sweep.
const EXPIRY_BATCH: i64 = 500;
/// Most idempotency keys deleted per sweep.
const KEY_BATCH: i64 = 10_000;

pub fn start(context: &ServiceContext, ledger: &Ledger) {
    let sweep = ledger.clone();
    context.every(
        "expire-pendings",
        ledger.settings.sweep_interval,
        move || {
            let ledger = sweep.clone();
            async move { expire_pendings(&ledger).await.map(|_| ()) }
        },
    );
    let pool = ledger.pool.clone();
    context.every(
        "expire-reservations",
        ledger.settings.sweep_interval,
        move || {
            let pool = pool.clone();
            async move {
                store::stock::expire_reservations(&pool, Utc::now(), EXPIRY_BATCH).await?;
                Ok(())
            }
        },
    );
    let pool = ledger.pool.clone();
    context.every("remove-expired-keys", Duration::from_secs(60), move || {
        let pool = pool.clone();
        async move {
            let removed =
                phoenix_runtime::idempotency::remove_expired(&pool, Utc::now(), KEY_BATCH).await?;
            metrics::get().keys_removed.inc_by(removed);
            Ok(())
        }
    });
}

/// Releases every open pending transfer whose timeout has passed; returns how many.
pub async fn expire_pendings(ledger: &Ledger) -> anyhow::Result<u64> {
    let due = store::ledger::expired_pendings(&ledger.pool, Utc::now(), EXPIRY_BATCH).await?;
    let mut released = 0;
    for (tenant_id, pending_id) in due {
        let mut transaction = ledger.pool.begin().await?;
        // A pending posted or voided meanwhile is refused (PENDING_NOT_OPEN): skipped.
        let posted = store::ledger::post(
            &mut transaction,
            tenant_id,
            None,
            &[Operation::ExpirePending { pending_id }],
            Linking::Linked,
            ledger.settings.snapshot_every,
        )
        .await?;
        let Ok(posting) = posted else {
            continue;
        };
        transaction.commit().await?;
        metrics::made(&posting.transfers);
        released += posting.transfers.len() as u64;
    }
    if released > 0 {
        metrics::get()
            .expired
            .get_or_create(&KindLabels {
                kind: "pending_transfer".to_owned(),
            })
            .inc_by(released);
        tracing::info!(released, "expired pending transfers released");
    }
    Ok(released)
}
