//! The ledger service (seed 003, RFC-PHOENIX-01, and the besitos and items of seed 001):
//! tenants, an append-only double-entry ledger with two-phase transfers, policies as circuit
//! breakers, idempotency keys, stock and holdings, an event store with snapshots, and the
//! Firebase import.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod import_client;
pub mod metrics;
pub mod proto;
pub mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::ledger::v1::firebase_import_service_server::FirebaseImportServiceServer;
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
    let ledger = api::Ledger {
        pool: context.pool.clone(),
        settings: config::LedgerSettings::from_env()?,
    };
    metrics::get();
    let limit = context.max_message_bytes();
    Ok(GrpcServices::new().serve(
        FirebaseImportServiceServer::new(ledger.clone())
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    ))
}
