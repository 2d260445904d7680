//! The narrative service (seed 001): the story content — fragments with their decisions,
//! composite requirements and extended rewards, experiences of ordered components, reaction
//! rewards — and each user's progress through it: visits, decisions, unlocked fragments,
//! experience progress and reactions, with the event stream of every change.
//!
//! It owns no user, item, achievement or mission: those ids are kept as given. What it cannot
//! check (VIP, level, items, achievements) it answers as external facts, and the rewards it
//! answers are granted by the coordinator's sagas; the reverts here are their compensations.
//!
//! Layout as in the directory: `api` decodes and validates, calls one use case in `app`, which
//! loads through `store`, asks `domain` and writes through `store`.

mod api;
pub mod app;
pub mod domain;
pub mod error;
mod jobs;
pub mod ops;
pub mod proto;
mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::narrative::v1::narrative_service_server::NarrativeServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

pub use api::ADMIN_ROLE;

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/narrative");

/// The narrative service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("narrative", &MIGRATIONS, build)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let narrative = app::Narrative::new(context.pool.clone(), context.shutdown.clone());
    jobs::start(context);
    Ok(GrpcServices::new().serve(limited!(context, NarrativeServiceServer::new(narrative))))
}
