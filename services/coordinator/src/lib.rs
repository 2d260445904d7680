//! The coordinator service: cross-context sagas with compensation and the prioritized event bus (seed 001).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`coordinator`); its domain API arrives with the issue that builds the context.

use include_dir::{Dir, include_dir};
use phoenix_proto::coordinator::v1::coordinator_service_server::{
    CoordinatorService, CoordinatorServiceServer,
};
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

pub mod analytics;
pub mod bus;

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/coordinator");

/// The coordinator service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("coordinator", &MIGRATIONS, build)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let services = GrpcServices::new().serve(limited!(
        context,
        CoordinatorServiceServer::new(CoordinatorApi)
    ));
    let services = bus::start(context, services, None)?;
    Ok(services)
}

/// The gRPC face of the context; it has no RPCs yet.
#[derive(Debug)]
struct CoordinatorApi;

impl CoordinatorService for CoordinatorApi {}
