//! The ledger service (seed 003, RFC-PHOENIX-01, and the besitos and items of seed 001):
//! tenants, an append-only double-entry ledger with two-phase transfers, policies as circuit
//! breakers, idempotency keys, stock and holdings, an event store with snapshots, and the
//! Firebase import.
//!
//! A request flows one way: `api` decodes and validates it and calls one use case of `app`,
//! which loads through `store`, asks `domain` and writes through `store`; errors are the
//! runtime's vocabulary, with this service's own refusals in `error`. `ops` holds the tools an
//! operator runs beside the service, `jobs` its background work.

mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod ops;
pub mod proto;
pub mod store;

pub use ops::{audit, bench, import_client, seed};

use include_dir::{Dir, include_dir};
use phoenix_proto::ledger::v1::event_store_service_server::EventStoreServiceServer;
use phoenix_proto::ledger::v1::firebase_import_service_server::FirebaseImportServiceServer;
use phoenix_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use phoenix_proto::ledger::v1::policy_service_server::PolicyServiceServer;
use phoenix_proto::ledger::v1::shop_service_server::ShopServiceServer;
use phoenix_proto::ledger::v1::stock_service_server::StockServiceServer;
use phoenix_runtime::{AuditReport, GrpcServices, ServiceContext, ServiceSpec, limited};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/ledger");

/// The ledger service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "ledger",
        migrations: &MIGRATIONS,
        build,
        audit: Some(|pool| Box::pin(audit_report(pool))),
        peer_audit: None,
    }
}

/// What `phoenix audit ledger` prints: every check, then its violations.
async fn audit_report(pool: sqlx::PgPool) -> anyhow::Result<AuditReport> {
    let report = audit::run(&pool).await?;
    Ok(AuditReport {
        lines: report.render().lines().map(str::to_owned).collect(),
        violations: report.violations(),
        scope: None,
    })
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let ledger = app::Ledger::new(
        context.pool.clone(),
        config::LedgerSettings::parse(&context.config.service_args)?,
        context.shutdown.clone(),
    );
    metrics::get();
    jobs::start(context, &ledger);
    Ok(GrpcServices::new()
        .serve(limited!(context, LedgerServiceServer::new(ledger.clone())))
        .serve(limited!(context, PolicyServiceServer::new(ledger.clone())))
        .serve(limited!(context, StockServiceServer::new(ledger.clone())))
        .serve(limited!(context, ShopServiceServer::new(ledger.clone())))
        .serve(limited!(
            context,
            FirebaseImportServiceServer::new(ledger.clone())
        ))
        .serve(limited!(context, EventStoreServiceServer::new(ledger))))
}
