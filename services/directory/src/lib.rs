//! The directory service: the users and courses that every other context references by plain
//! id and resolves over RPC (with `phoenix-directory-client`), the users' VIP memberships and
//! their channel memberships, and the event stream of every change.
//!
//! It is the reference for how a Phoenix service is built (README, "How a service is built"):
//! `api` decodes and validates a request and calls one use case in `app`, which loads through
//! `store`, asks `domain` and writes through `store`; errors are the runtime's vocabulary, with
//! this service's own refusals in `error`; `ops` holds what an operator runs beside it, `jobs`
//! its background work.

mod api;
pub mod app;
pub mod domain;
pub mod error;
mod jobs;
pub mod ops;
pub mod proto;
mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::directory::v1::directory_service_server::DirectoryServiceServer;
use phoenix_runtime::{AuditReport, GrpcServices, ServiceContext, ServiceSpec, limited};

pub use api::{ADMIN_ROLE, MAX_BATCH_IDS};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/directory");

/// The directory service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("directory", &MIGRATIONS, build)
        .with_audit(|pool| Box::pin(audit_report(pool)))
}

/// What `phoenix audit directory` prints.
async fn audit_report(pool: sqlx::PgPool) -> anyhow::Result<AuditReport> {
    ops::audit::run(&pool).await
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let directory = app::Directory::new(context.pool.clone(), context.shutdown.clone());
    jobs::start(context);
    // Answers may be larger than the configured limit: a full batch of users with the largest
    // metadata must still go out (the reference client decodes up to its own bound).
    let server = limited!(context, DirectoryServiceServer::new(directory))
        .max_encoding_message_size(context.max_message_bytes().max(api::LARGEST_ANSWER_BYTES));
    Ok(GrpcServices::new().serve(server))
}
