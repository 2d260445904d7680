//! The directory service: the users (and, with their issue, courses) that every other context
//! references by plain id and resolves over RPC.

mod api;
pub mod domain;
pub mod error;
mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::directory::v1::directory_service_server::DirectoryServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/directory");

/// The directory service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "directory",
        migrations: &MIGRATIONS,
        build,
    }
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let service = DirectoryServiceServer::new(api::DirectoryApi::new(context.pool.clone()))
        .max_decoding_message_size(context.max_message_bytes())
        .max_encoding_message_size(context.max_message_bytes());
    Ok(GrpcServices::new().serve(service))
}
