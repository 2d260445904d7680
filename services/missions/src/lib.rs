//! The missions service: the per-user missions board: slots, petals, heartbeats, rerolls, bosses, claims and effects (seed 000).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`missions`); its domain API arrives with the issue that builds the context.

pub mod audit;
pub mod domain;
pub mod error;
pub mod store;

use include_dir::{Dir, include_dir};
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

fn build(_context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    // The API is being built (issue 4); see DESIGN.md.
    Ok(GrpcServices::new())
}
