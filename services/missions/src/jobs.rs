//! The service's schedules: the batch day close, the analytics refresh and the catalog reload.
//! The catalog reload refreshes this process's cache, so every replica runs it. The day close
//! and the analytics refresh work on the shared database, so they are singletons
//! ([`ServiceContext::singleton`](phoenix_runtime::ServiceContext::singleton)): one replica at a
//! time runs each, the others skip their tick. The day close also skips boards an RPC holds
//! (SKIP LOCKED), so a board's day closes once however many replicas there are.

use std::time::Duration;

use crate::app::Missions;
use crate::config::MissionsSettings;

/// How often the catalog is re-read, so upserts through another replica show up here.
const CATALOG_RELOAD: Duration = Duration::from_secs(30);
/// Boards per transaction of the scheduled day close.
const DAY_CLOSE_BATCH: i64 = 500;

pub fn start(
    context: &phoenix_runtime::ServiceContext,
    missions: &Missions,
    settings: &MissionsSettings,
) {
    let catalog = missions.catalog().clone();
    context.every("missions-catalog-reload", CATALOG_RELOAD, move || {
        let catalog = catalog.clone();
        async move { Ok(catalog.reload().await.map(|_| ())?) }
    });
    if !settings.scheduled_jobs {
        tracing::info!("scheduled jobs paused: no day close or analytics refresh in this process");
        return;
    }
    let day_close = missions.clone();
    context.singleton(
        "missions-day-close",
        settings.day_close_interval,
        move || {
            let missions = day_close.clone();
            async move {
                let tally = missions.close_due(DAY_CLOSE_BATCH).await?;
                if tally.boards > 0 {
                    tracing::info!(boards = tally.boards, "closed the days of due boards");
                }
                Ok(())
            }
        },
    );
    let analytics = missions.clone();
    context.singleton(
        "missions-analytics-refresh",
        settings.analytics_refresh_interval,
        move || {
            let missions = analytics.clone();
            async move { Ok(missions.refresh_analytics().await.map(|_| ())?) }
        },
    );
}
