//! The conversations service: a chat bot's state off process memory and JSON files (seed
//! 004): contacts and their assistant threads, the context and chat-info caches with TTL,
//! user states, debounced message buffers leased to one worker at a time, processing leases,
//! pending images and typing stamps, with the event stream of contact, thread and buffer
//! changes, a scheduled cleanup, and the import of and rollback to the legacy files.
//!
//! Built like the directory (README, "How a service is built"): `api` decodes and validates a
//! request and calls one use case in `app`, which loads through `store`, asks `domain` and
//! writes through `store`; `ops` holds what an operator runs beside it, `jobs` its background
//! work.

mod api;
pub mod app;
pub mod domain;
pub mod error;
mod jobs;
pub mod metrics;
pub mod ops;
pub mod proto;
mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::conversations::v1::conversations_service_server::ConversationsServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

pub use api::{ADMIN_ROLE, BOT_ROLE};

static MIGRATIONS: Dir<'static> =
    include_dir!("$CARGO_MANIFEST_DIR/../../migrations/conversations");

/// The conversations service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("conversations", &MIGRATIONS, build)
        .with_audit(|pool| Box::pin(audit_report(pool)))
}

/// What `phoenix audit conversations` prints.
async fn audit_report(pool: sqlx::PgPool) -> anyhow::Result<phoenix_runtime::AuditReport> {
    ops::audit::run(&pool).await
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    // Registered at start, so /metrics lists them before the first event.
    metrics::get();
    let conversations = app::Conversations::new(context.pool.clone(), context.shutdown.clone());
    jobs::start(context, &conversations);
    Ok(GrpcServices::new().serve(limited!(
        context,
        ConversationsServiceServer::new(conversations)
    )))
}
