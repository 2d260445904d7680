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
use phoenix_runtime::{AuditReport, GrpcServices, ServiceContext, ServiceSpec, limited};

use crate::clock::Clock;
use crate::config::{ClockKind, MissionsSettings};
use crate::store::repo::Repository;
use crate::store::sql::SqlBoards;

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/missions");

/// The missions service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "missions",
        migrations: &MIGRATIONS,
        build,
        audit: Some(audit_report),
    }
}

/// `phoenix audit missions`: one line per violation, over every board.
fn audit_report(
    pool: sqlx::PgPool,
) -> futures_util::future::BoxFuture<'static, anyhow::Result<AuditReport>> {
    Box::pin(async move {
        let report = audit::run(&pool).await?;
        Ok(AuditReport {
            lines: report.violations.iter().map(ToString::to_string).collect(),
            violations: report.violations.len(),
            scope: Some(format!("{} boards", report.boards)),
        })
    })
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
    let mut services = GrpcServices::new()
        .serve(limited!(
            context,
            MissionsServiceServer::new(missions.clone())
        ))
        .serve(limited!(
            context,
            CatalogServiceServer::new(missions.clone())
        ))
        .serve(limited!(
            context,
            AnalyticsServiceServer::new(missions.clone())
        ))
        .serve(limited!(
            context,
            MigrationServiceServer::new(missions.clone())
        ));
    if matches!(missions.clock, Clock::Manual(_)) {
        services = services.serve(limited!(context, ClockServiceServer::new(missions)));
    }
    Ok(services)
}
