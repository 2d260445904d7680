//! The conversations service: chat-bot state: threads, context cache, user states and message buffers (seed 004).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`conversations`); its domain API arrives with the issue that builds the context.

use include_dir::{Dir, include_dir};
use phoenix_proto::conversations::v1::conversations_service_server::{
    ConversationsService, ConversationsServiceServer,
};
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

static MIGRATIONS: Dir<'static> =
    include_dir!("$CARGO_MANIFEST_DIR/../../migrations/conversations");

/// The conversations service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("conversations", &MIGRATIONS, build)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    Ok(GrpcServices::new().serve(limited!(
        context,
        ConversationsServiceServer::new(ConversationsApi)
    )))
}

/// The gRPC face of the context; it has no RPCs yet.
#[derive(Debug)]
struct ConversationsApi;

impl ConversationsService for ConversationsApi {}
