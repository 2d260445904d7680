//! The engine's background work: adopting sagas whose owner's lease expired, renewing the
//! leases of the sagas this engine drives, and refreshing the stuck gauge.
//!
//! Adoption is one conditional UPDATE per saga (`lease_expires_at < now()`), so when two
//! replicas race for the same saga exactly one gets it; each adopted saga is resumed on a task
//! of its own, so one that fails (or panics) never stops the others.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use phoenix_runtime::Error;
use tokio_util::sync::CancellationToken;

use super::engine::SagaEngine;
use super::metrics;
use super::store::{self, Takeover};

/// How often the stuck gauge is refreshed from the database.
const STUCK_GAUGE_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) fn start(engine: SagaEngine, shutdown: CancellationToken) {
    let config = engine.0.config.clone();
    let recovering = engine.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.recovery_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = pass(&recovering).await {
                tracing::warn!(%error, "saga recovery pass failed; trying again");
            }
        }
    });
    let renewing = engine.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.lease / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = renew(&renewing).await {
                tracing::warn!(%error, "renewing saga leases failed; trying again");
            }
        }
    });
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(STUCK_GAUGE_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match store::count_stuck(&engine.0.pool).await {
                Ok(count) => metrics::set_stuck(count),
                Err(error) => tracing::debug!(%error, "counting stuck sagas failed"),
            }
        }
    });
}

/// Sagas whose definition this process lacks, already reported (reported once each).
fn reported() -> &'static Mutex<HashSet<uuid::Uuid>> {
    static REPORTED: std::sync::OnceLock<Mutex<HashSet<uuid::Uuid>>> = std::sync::OnceLock::new();
    REPORTED.get_or_init(Default::default)
}

/// One pass: adopts every expired saga it can (up to the batch) and resumes each on its task.
pub(crate) async fn pass(engine: &SagaEngine) -> Result<usize, Error> {
    let config = &engine.0.config;
    let expired = store::expired(&engine.0.pool, config.recovery_batch).await?;
    let mut adopted = 0;
    for (saga_id, saga_type, version) in expired {
        // Still driven here (a lease lapsed while its renewal failed): the driver's next write
        // tells it whether it still holds the saga; adopting it here would run it twice.
        let driven_here = engine
            .0
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&saga_id);
        if driven_here {
            continue;
        }
        if engine.definition(&saga_type, Some(version)).is_none() {
            let first = reported()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(saga_id);
            if first {
                tracing::error!(%saga_id, saga_type, version, "a saga's definition version is not registered here: it is left for a coordinator that has it");
            }
            continue;
        }
        let taken = store::take_over(
            &engine.0.pool,
            saga_id,
            config.owner_id,
            config.lease,
            Takeover::Expired,
        )
        .await;
        let generation = match taken {
            Ok(Some(generation)) => generation,
            // Another replica adopted it first, or its owner renewed it just now.
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%saga_id, %error, "adopting a saga failed; the others go on");
                continue;
            }
        };
        metrics::saga_adopted();
        adopted += 1;
        tracing::info!(%saga_id, saga_type, generation, "adopted a saga whose lease expired");
        let engine = engine.clone();
        tokio::spawn(async move {
            match super::runs::resume(&engine, saga_id, generation).await {
                Ok(outcome) => {
                    tracing::info!(%saga_id, state = outcome.state.as_str(), "resumed saga reached its end")
                }
                Err(error) => tracing::warn!(%saga_id, %error, "a resumed saga stopped"),
            }
        });
    }
    Ok(adopted)
}

/// Renews the leases this engine holds; a saga whose lease another owner took is abandoned.
async fn renew(engine: &SagaEngine) -> Result<(), Error> {
    let held: Vec<(uuid::Uuid, i64)> = engine
        .0
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(id, saga)| (*id, saga.generation))
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let still: HashSet<uuid::Uuid> = store::renew(&engine.0.pool, &held, engine.0.config.lease)
        .await?
        .into_iter()
        .collect();
    let running = engine
        .0
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (saga_id, generation) in held {
        if !still.contains(&saga_id)
            && let Some(saga) = running.get(&saga_id)
            && saga.generation == generation
        {
            tracing::warn!(%saga_id, "lost the lease of a saga: stop driving it");
            saga.abandon.cancel();
        }
    }
    Ok(())
}
