//! The goals service: goals, tasks, code snapshots, the event log and pgvector embeddings (seed 002).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`goals`); its domain API arrives with the issue that builds the context.

use include_dir::{Dir, include_dir};
use phoenix_proto::goals::v1::goals_service_server::{GoalsService, GoalsServiceServer};
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/goals");

/// The goals service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("goals", &MIGRATIONS, build)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    Ok(GrpcServices::new().serve(limited!(context, GoalsServiceServer::new(GoalsApi))))
}

/// The gRPC face of the context; it has no RPCs yet.
#[derive(Debug)]
struct GoalsApi;

impl GoalsService for GoalsApi {}
