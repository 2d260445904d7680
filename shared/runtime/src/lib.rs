//! The Phoenix service runtime: everything a service needs that is not its domain.
//!
//! A service crate provides a [`ServiceSpec`]; [`run_service_binary`] (its `main`) or the
//! `phoenix` command do the rest. See the README's "Adding a service" for the pattern.

pub mod auth;
pub mod bench;
pub mod client;
pub mod config;
pub mod convert;
pub mod embedded;
pub mod error;
pub mod fault;
pub mod idempotency;
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod migrate;
pub mod server;
pub mod stream;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::RuntimeConfig;
pub use error::{
    Error, FieldViolation, Refusal, RefusalKind, RemoteError, Retry, Violations, fact, quote,
};
pub use server::{
    Audit, AuditReport, GrpcServices, PeerAudit, RunningService, ServiceContext, ServiceSpec,
};
use tokio_util::sync::CancellationToken;

/// Name of the database the embedded server prepares for all services.
pub const EMBEDDED_DATABASE: &str = "phoenix";

/// The database the services use, and the embedded server behind it when there is one.
#[derive(Debug)]
pub struct Database {
    pub url: String,
    pub embedded: Option<embedded::EmbeddedPostgres>,
}

impl Database {
    /// `DATABASE_URL` if set; otherwise the embedded server in `PHOENIX_DATA_DIR`, started and
    /// prepared here.
    pub async fn open(config: &RuntimeConfig) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            return Ok(Self {
                url: url.clone(),
                embedded: None,
            });
        }
        if let Some(url) =
            embedded::running_server_url(&config.embedded.data_dir, EMBEDDED_DATABASE)
        {
            tracing::info!(
                data_dir = %config.embedded.data_dir.display(),
                "joining the PostgreSQL another Phoenix process runs in PHOENIX_DATA_DIR"
            );
            return Ok(Self {
                url,
                embedded: None,
            });
        }
        let settings = config.embedded.clone();
        let server = tokio::task::spawn_blocking(move || {
            embedded::EmbeddedPostgres::start(
                &settings,
                &settings.data_dir,
                embedded::Durability::Durable,
            )
        })
        .await??;
        let url = embedded::prepare_database(&server, EMBEDDED_DATABASE).await?;
        Ok(Self {
            url,
            embedded: Some(server),
        })
    }

    /// Stops the embedded server, if there is one.
    pub async fn close(self) {
        if let Some(server) = self.embedded {
            let _ = tokio::task::spawn_blocking(move || server.stop()).await;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (Kubernetes).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Starts `specs` on the given addresses against one database, with one metrics endpoint, and
/// runs until SIGINT/SIGTERM; then stops them all and the embedded database.
pub async fn run_services(
    specs: &[(ServiceSpec, SocketAddr)],
    config: RuntimeConfig,
    on_ready: impl FnOnce(&[RunningService]),
) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let metrics_addr = metrics::serve(config.metrics_addr, shutdown.clone()).await?;
    tracing::info!(%metrics_addr, "metrics at http://{metrics_addr}/metrics");

    let started = start_all(specs, &config, &database.url, &shutdown).await;
    let running = match started {
        Ok(running) => running,
        Err(error) => {
            shutdown.cancel();
            database.close().await;
            return Err(error);
        }
    };
    on_ready(&running);
    shutdown_signal().await;
    shutdown.cancel();
    let mut result = Ok(());
    for service in running {
        if let Err(error) = service.wait().await {
            tracing::error!(%error, "service stopped with an error");
            result = Err(error);
        }
    }
    database.close().await;
    result
}

async fn start_all(
    specs: &[(ServiceSpec, SocketAddr)],
    config: &Arc<RuntimeConfig>,
    url: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<RunningService>> {
    let mut running = Vec::new();
    for (spec, addr) in specs {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("{}: cannot listen on {addr}: {e}", spec.name))?;
        let pool = server::connect_pool(url, spec.name, config).await?;
        running.push(server::start(spec, config.clone(), pool, listener, shutdown.clone()).await?);
    }
    Ok(running)
}

/// Prints a failed run's error chain (no backtrace: it is for operators) and picks the exit code.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `main` of a service's own binary: one service, configured like `phoenix serve <name>`.
pub fn run_service_binary(spec: ServiceSpec) -> std::process::ExitCode {
    exit_code(serve_one(spec))
}

fn serve_one(spec: ServiceSpec) -> anyhow::Result<()> {
    #[derive(clap::Parser)]
    #[command(about = "Runs one Phoenix service, as a Kubernetes pod does")]
    struct Args {
        /// Address of the gRPC listener.
        #[arg(long, env = "PHOENIX_GRPC_ADDR", default_value = "0.0.0.0:50051")]
        grpc_addr: SocketAddr,
        #[command(flatten)]
        runtime: RuntimeConfig,
    }
    let args: Args = config::parse_or_exit();
    tokio::runtime::Runtime::new()?.block_on(async move {
        let _telemetry =
            telemetry::init(&args.runtime.telemetry, &format!("phoenix-{}", spec.name))?;
        run_services(&[(spec, args.grpc_addr)], args.runtime, |_| {}).await
    })
}
