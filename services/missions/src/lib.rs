//! The missions service: the per-user missions board: slots, petals, heartbeats, rerolls, bosses, claims and effects (seed 000).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`missions`); its domain API arrives with the issue that builds the context.

use include_dir::{Dir, include_dir};
use phoenix_proto::missions::v1::missions_service_server::{
    MissionsService, MissionsServiceServer,
};
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec};

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
    let service = MissionsServiceServer::new(MissionsApi)
        .max_decoding_message_size(context.max_message_bytes())
        .max_encoding_message_size(context.max_message_bytes());
    Ok(GrpcServices::new().serve(service))
}

/// The gRPC face of the context; it has no RPCs yet.
#[derive(Debug)]
struct MissionsApi;

impl MissionsService for MissionsApi {}
