//! The missions service (seed 000): the per-user missions board — slots, petals, heartbeats,
//! day closes, rerolls, claims, bosses, effects and communications — with its repositories
//! (FILE, SQL, DUAL), the migration tooling from the legacy JSON store, analytics views, and
//! the benchmark and audit the `phoenix` command runs.

pub mod api;
pub mod audit;
pub mod bench;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod migration;
pub mod proto;
pub mod store;

use std::sync::Arc;

use include_dir::{Dir, include_dir};
use phoenix_proto::missions::v1::analytics_service_server::AnalyticsServiceServer;
use phoenix_proto::missions::v1::catalog_service_server::CatalogServiceServer;
use phoenix_proto::missions::v1::clock_service_server::ClockServiceServer;
use phoenix_proto::missions::v1::migration_service_server::MigrationServiceServer;
use phoenix_proto::missions::v1::missions_service_server::MissionsServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec};

use crate::clock::Clock;
use crate::config::{ClockKind, MissionsSettings};
use crate::store::repo::Repository;
use crate::store::sql::SqlBoards;

/// Applies the message size limit to a generated server.
macro_rules! limited {
    ($server:expr, $limit:expr) => {
        $server
            .max_decoding_message_size($limit)
            .max_encoding_message_size($limit)
    };
}

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/missions");

/// The missions service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "missions",
        migrations: &MIGRATIONS,
        build,
    }
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let settings = MissionsSettings::parse(&context.config.service_args)?;
    let missions = api::Missions {
        repo: Arc::new(Repository::open(&settings, context.pool.clone())?),
        sql: SqlBoards::new(context.pool.clone()),
        pool: context.pool.clone(),
        catalog: api::CatalogCache::new(context.pool.clone()),
        clock: match settings.clock {
            ClockKind::System => Clock::System,
            ClockKind::Manual => Clock::manual(chrono::Utc::now()),
        },
        rules: Arc::new(settings.rules()),
        store_path: settings.store_path.clone(),
    };
    metrics::get();
    jobs::start(context, &missions, &settings);
    let limit = context.max_message_bytes();
    let mut services = GrpcServices::new()
        .serve(limited!(
            MissionsServiceServer::new(missions.clone()),
            limit
        ))
        .serve(limited!(CatalogServiceServer::new(missions.clone()), limit))
        .serve(limited!(
            AnalyticsServiceServer::new(missions.clone()),
            limit
        ))
        .serve(limited!(
            MigrationServiceServer::new(missions.clone()),
            limit
        ));
    if matches!(missions.clock, Clock::Manual(_)) {
        services = services.serve(limited!(ClockServiceServer::new(missions), limit));
    }
    Ok(services)
}
