//! The goals service: learners' goals, their tasks, the code snapshots submitted for them, the
//! append-only event log of every change (exported to Parquet) and pgvector embeddings for
//! retrieval (seed 002). Users and courses are the directory's, resolved through
//! `phoenix-directory-client`.
//!
//! Built like the directory (README, "How a service is built"): `api` decodes and validates a
//! request and calls one use case in `app`, which loads through `store`, asks `domain` and
//! writes through `store`; errors are the runtime's vocabulary, with this service's own
//! refusals in `error`; `ops` holds what an operator runs beside it (export, bench).

mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod ops;
pub mod proto;
pub mod store;

use include_dir::{Dir, include_dir};
use phoenix_directory_client::{ClientSettings, DirectoryClient};
use phoenix_proto::goals::v1::goals_service_server::GoalsServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

pub use api::ADMIN_ROLE;

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/goals");

/// The goals service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("goals", &MIGRATIONS, build).with_audit(|pool| Box::pin(audit_report(pool)))
}

/// What `phoenix audit goals` prints.
async fn audit_report(pool: sqlx::PgPool) -> anyhow::Result<phoenix_runtime::AuditReport> {
    ops::audit::run(&pool).await
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let directory = if context.config.peers.url("directory").is_some() {
        Some(DirectoryClient::new(
            context.peer("directory")?,
            ClientSettings::default(),
        ))
    } else {
        tracing::warn!(
            "PHOENIX_DIRECTORY_URL is not set: goals are created without checking their user and course"
        );
        None
    };
    let goals = app::Goals::new(context.pool.clone(), context.shutdown.clone(), directory);
    // Every minute one replica (a singleton job) forgets up to 10,000 expired keys of the creates.
    phoenix_runtime::idempotency::sweep_expired_keys(
        context,
        "goals-remove-expired-keys",
        std::time::Duration::from_secs(60),
        10_000,
    );
    Ok(GrpcServices::new().serve(limited!(context, GoalsServiceServer::new(goals))))
}
