//! The directory service: the users (and, with their issue, courses) that every other context
//! references by plain id and resolves over RPC.
//!
//! It is the reference for how a Phoenix service is built (README, "How a service is built"):
//! `api` decodes and validates a request and calls one use case in `app`, which loads through
//! `store`, asks `domain` and writes through `store`; errors are the runtime's vocabulary, with
//! this service's own refusals in `error`.

mod api;
pub mod app;
pub mod domain;
pub mod error;
mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::directory::v1::directory_service_server::DirectoryServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/directory");

/// The directory service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("directory", &MIGRATIONS, build)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let directory = app::Directory::new(context.pool.clone());
    Ok(GrpcServices::new().serve(limited!(context, DirectoryServiceServer::new(directory))))
}
