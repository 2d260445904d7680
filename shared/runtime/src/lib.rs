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

/// The allocator of every Phoenix binary (each links the runtime, so it is chosen here, once).
/// Under load glibc's malloc spent 13% of the ledger bench process's CPU allocating and freeing
/// across the worker threads (`perf`, 32-client phase); with mimalloc gRPC transfers went up
/// 2.6–4.4% in four alternating pairs of runs (README, benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Name of the database the embedded server prepares for all services.
pub const EMBEDDED_DATABASE: &str = "phoenix";

/// The databases the services use, and the embedded server behind them when there is one.
#[derive(Debug)]
pub struct Database {
    /// `DATABASE_URL`, or the embedded server's database: the database of every service without
    /// a URL of its own. `None` when each service it was opened for has its own.
    shared: Option<String>,
    /// `PHOENIX_<SERVICE>_DATABASE_URL`s, as configured.
    own: config::ServiceDatabases,
    pub embedded: Option<embedded::EmbeddedPostgres>,
}

impl Database {
    /// The shared database, as for a service without a URL of its own: see [`Self::open_for`].
    pub async fn open(config: &RuntimeConfig) -> anyhow::Result<Self> {
        Self::open_for(config, &[]).await
    }

    /// The databases of `services` (see [`RuntimeConfig::database_of`]): the URLs are checked
    /// first, and the embedded server in `PHOENIX_DATA_DIR` is started (or joined) only when a
    /// service has no URL at all. An empty list asks for the shared database.
    pub async fn open_for(config: &RuntimeConfig, services: &[&str]) -> anyhow::Result<Self> {
        config.check_database_urls(services.iter().copied())?;
        let needs_shared =
            services.is_empty() || services.iter().any(|s| config.databases.url(s).is_none());
        let (shared, embedded) = if !needs_shared {
            (None, None)
        } else if let Some(url) = &config.database_url {
            config::postgres_url(url)
                .map_err(|reason| anyhow::anyhow!("DATABASE_URL: {reason}"))?;
            (Some(url.clone()), None)
        } else {
            let (url, server) = Self::embedded(config).await?;
            (Some(url), server)
        };
        for service in services {
            if let config::DatabaseSource::Own { variable, .. } = config.database_of(service) {
                tracing::info!(service, variable, "the service uses a database of its own");
            }
        }
        Ok(Self {
            shared,
            own: config.databases.clone(),
            embedded,
        })
    }

    async fn embedded(
        config: &RuntimeConfig,
    ) -> anyhow::Result<(String, Option<embedded::EmbeddedPostgres>)> {
        if let Some(url) =
            embedded::running_server_url(&config.embedded.data_dir, EMBEDDED_DATABASE)
        {
            tracing::info!(
                data_dir = %config.embedded.data_dir.display(),
                "joining the PostgreSQL another Phoenix process runs in PHOENIX_DATA_DIR"
            );
            return Ok((url, None));
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
        Ok((url, Some(server)))
    }

    /// The shared database's URL (`DATABASE_URL` or the embedded server's), if it was opened.
    pub fn shared_url(&self) -> Option<&str> {
        self.shared.as_deref()
    }

    /// The URL `service` connects to: its own, or the shared one.
    pub fn url_for(&self, service: &str) -> anyhow::Result<&str> {
        self.own
            .url(service)
            .or(self.shared.as_deref())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no database for {service}: it was not among the services this database was opened for"
                )
            })
    }

    /// A pool on `service`'s database and schema; errors name the setting the URL came from.
    pub async fn connect(
        &self,
        service: &str,
        config: &RuntimeConfig,
    ) -> anyhow::Result<sqlx::PgPool> {
        let url = self.url_for(service)?;
        server::connect_pool(url, service, config)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#} (from {})", config.database_of(service).variable()))
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
    let names: Vec<&str> = specs.iter().map(|(spec, _)| spec.name).collect();
    let database = Database::open_for(&config, &names).await?;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let metrics_addr = metrics::serve(config.metrics_addr, shutdown.clone()).await?;
    tracing::info!(%metrics_addr, "metrics at http://{metrics_addr}/metrics");

    let started = start_all(specs, &config, &database, &shutdown).await;
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

/// Starts `specs` on their addresses, each on its own database from `database` (what
/// [`run_services`] does before it waits for a signal).
pub async fn start_all(
    specs: &[(ServiceSpec, SocketAddr)],
    config: &Arc<RuntimeConfig>,
    database: &Database,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<RunningService>> {
    let mut running = Vec::new();
    for (spec, addr) in specs {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("{}: cannot listen on {addr}: {e}", spec.name))?;
        let pool = database.connect(spec.name, config).await?;
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
