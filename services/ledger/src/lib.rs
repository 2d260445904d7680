//! The ledger service: tenants, the double-entry ledger, stock, policies, idempotency keys and the event store (seed 003).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`ledger`); its domain API arrives with the issue that builds the context.

use include_dir::{Dir, include_dir};
use phoenix_proto::ledger::v1::ledger_service_server::{LedgerService, LedgerServiceServer};
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/ledger");

/// The ledger service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "ledger",
        migrations: &MIGRATIONS,
        build,
    }
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let service = LedgerServiceServer::new(LedgerApi)
        .max_decoding_message_size(context.max_message_bytes())
        .max_encoding_message_size(context.max_message_bytes());
    Ok(GrpcServices::new().serve(service))
}

/// The gRPC face of the context; it has no RPCs yet.
#[derive(Debug)]
struct LedgerApi;

impl LedgerService for LedgerApi {}
