//! The ledger service (seed 003, RFC-PHOENIX-01, and the besitos and items of seed 001):
//! tenants, an append-only double-entry ledger with two-phase transfers, policies as circuit
//! breakers, idempotency keys, stock and holdings, an event store with snapshots, and the
//! Firebase import.

pub mod api;
pub mod audit;
pub mod bench;
pub mod config;
pub mod domain;
pub mod error;
pub mod import_client;
pub mod jobs;
pub mod metrics;
pub mod proto;
pub mod seed;
pub mod store;

use include_dir::{Dir, include_dir};
use phoenix_proto::ledger::v1::event_store_service_server::EventStoreServiceServer;
use phoenix_proto::ledger::v1::firebase_import_service_server::FirebaseImportServiceServer;
use phoenix_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use phoenix_proto::ledger::v1::policy_service_server::PolicyServiceServer;
use phoenix_proto::ledger::v1::stock_service_server::StockServiceServer;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec};

/// Applies the message size limit to a generated server.
macro_rules! limited {
    ($server:expr, $limit:expr) => {
        $server
            .max_decoding_message_size($limit)
            .max_encoding_message_size($limit)
    };
}

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
        settings: config::LedgerSettings::parse(&context.config.service_args)?,
        shutdown: context.shutdown.clone(),
    };
    metrics::get();
    let limit = context.max_message_bytes();
    jobs::start(context, &ledger);
    Ok(GrpcServices::new()
        .serve(limited!(LedgerServiceServer::new(ledger.clone()), limit))
        .serve(limited!(PolicyServiceServer::new(ledger.clone()), limit))
        .serve(limited!(StockServiceServer::new(ledger.clone()), limit))
        .serve(limited!(
            FirebaseImportServiceServer::new(ledger.clone()),
            limit
        ))
        .serve(limited!(EventStoreServiceServer::new(ledger), limit)))
}
