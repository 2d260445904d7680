//! The coordinator service: cross-context sagas with compensation and the prioritized event bus (seed 001).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`coordinator`). Its sagas run on the durable engine in [`saga`] (README: "The saga
//! engine").

pub mod reconcile;
pub mod saga;

use include_dir::{Dir, include_dir};
use phoenix_proto::coordinator::v1::coordinator_service_server::{
    CoordinatorService, CoordinatorServiceServer,
};
use phoenix_runtime::stream::EventStream;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/coordinator");

/// The coordinator service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("coordinator", &MIGRATIONS, build).with_peer_audit(reconcile::audit)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let events = EventStream::start(
        "coordinator",
        context.pool.clone(),
        context.shutdown.clone(),
    );
    let engine = saga::SagaEngine::new(
        context.pool.clone(),
        Some(events),
        saga::EngineConfig::default(),
    );
    // Each operation registers its saga definitions here, before recovery starts, so that a
    // saga adopted from a crashed replica finds its definition:
    //     engine.register(purchase::definition(context)?)?;
    engine.start_background(context.shutdown.clone());
    reconcile::schedule(context)?;
    Ok(GrpcServices::new().serve(limited!(
        context,
        CoordinatorServiceServer::new(CoordinatorApi)
    )))
}

/// The gRPC face of the context; it has no RPCs yet.
#[derive(Debug)]
struct CoordinatorApi;

impl CoordinatorService for CoordinatorApi {}
