//! The missions service (seed 000): the per-user missions board — slots, petals, heartbeats,
//! day closes, rerolls, claims, bosses, effects and communications — with its repositories
//! (FILE, SQL, DUAL), the migration tooling from the legacy JSON store, analytics views, and
//! the benchmark and audit the `phoenix` command runs.
//!
//! Built like every Phoenix service (README, "How a service is built"): `api` decodes and
//! validates a request and calls one use case in `app`, which loads through `store`, asks the
//! rules in `domain` and writes through `store`; errors are the runtime's vocabulary, with this
//! service's own refusals in `error`; `ops` holds the benchmark.

mod api;
pub mod app;
pub mod config;
mod consumer;
pub mod domain;
pub mod error;
mod jobs;
pub mod metrics;
pub mod ops;
pub mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::missions::v1::analytics_service_server::AnalyticsServiceServer;
use phoenix_proto::missions::v1::catalog_service_server::CatalogServiceServer;
use phoenix_proto::missions::v1::clock_service_server::ClockServiceServer;
use phoenix_proto::missions::v1::migration_service_server::MigrationServiceServer;
use phoenix_proto::missions::v1::missions_service_server::MissionsServiceServer;
use phoenix_runtime::{AuditReport, GrpcServices, ServiceContext, ServiceSpec, limited};

use crate::app::Missions;
use crate::app::clock::Clock;
use crate::config::MissionsSettings;

/// Role that may act on every user's board, edit the catalog, run the migration tooling and
/// move a manual clock when authentication is on.
pub const ADMIN_ROLE: &str = "missions-admin";

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/missions");

/// The missions service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "missions",
        migrations: &MIGRATIONS,
        build,
        audit: Some(audit_report),
        peer_audit: None,
    }
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let settings = MissionsSettings::parse(&context.config.service_args)?;
    let mut missions = Missions::open(&settings, context.pool.clone())?;
    if context.config.peers.url("directory").is_some() {
        let directory = context.peer("directory")?;
        missions = missions.with_directory(phoenix_directory_client::DirectoryClient::new(
            directory,
            phoenix_directory_client::ClientSettings::default(),
        ));
    } else {
        tracing::warn!(
            "PHOENIX_DIRECTORY_URL is not set: CreateBoard checks no user and needs a time zone"
        );
    }
    metrics::get();
    jobs::start(context, &missions, &settings);
    if context.config.peers.url("coordinator").is_some() {
        consumer::start(
            missions.clone(),
            context.peer("coordinator")?,
            context.shutdown.clone(),
        );
    } else {
        tracing::warn!(
            "PHOENIX_COORDINATOR_URL is not set: goals' TaskCompleted does not reach the bosses"
        );
    }
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
    if matches!(missions.clock(), Clock::Manual(_)) {
        services = services.serve(limited!(context, ClockServiceServer::new(missions)));
    }
    Ok(services)
}

/// `phoenix audit missions`: one line per violation, over every board.
fn audit_report(
    pool: sqlx::PgPool,
) -> futures_util::future::BoxFuture<'static, anyhow::Result<AuditReport>> {
    Box::pin(async move {
        let report = app::migration::audit(&pool).await?;
        Ok(AuditReport {
            lines: report.violations.iter().map(ToString::to_string).collect(),
            violations: report.violations.len(),
            scope: Some(format!("{} boards", report.boards)),
        })
    })
}
