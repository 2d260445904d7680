//! Running a service: the one pattern every Phoenix service follows.
//!
//! A service crate describes itself with a [`ServiceSpec`] (its name, which is also its schema,
//! its embedded migrations, and a function that builds its tonic services). The runtime does the
//! rest, identically for all six: pool, migrations, health, reflection, the RPC layer
//! (deadline, load shedding, auth, metrics, tracing), TLS and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use include_dir::Dir;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::Authenticator;
use crate::client::{ClientBuilder, PeerChannel};
use crate::config::RuntimeConfig;
use crate::fault::FaultPlan;
use crate::middleware::{DatabaseState, RpcLayer, RpcPolicy};
use crate::migrate::{MigrationSet, Migrator};

/// How long a pooled connection may sit unused and still be handed out without a ping.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// What a service crate hands the runtime.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Service name: `directory`, `ledger`, … It is also the PostgreSQL schema the service owns.
    pub name: &'static str,
    /// The embedded `migrations/<name>` folder.
    pub migrations: &'static Dir<'static>,
    /// Builds the service's tonic services.
    pub build: fn(&ServiceContext) -> anyhow::Result<GrpcServices>,
    /// Re-checks every invariant of the service against its database (`phoenix audit <name>`),
    /// for services that have an auditor.
    pub audit: Option<Audit>,
    /// Compares the service's records with its peers' state over gRPC (`phoenix audit <name>`
    /// for a service whose invariants span contexts: the coordinator's reconciliation).
    pub peer_audit: Option<PeerAudit>,
}

/// An auditor that also asks the service's peers: it gets the service's pool and the
/// configuration its peer channels are built from ([`ServiceContext::peer`]).
pub type PeerAudit = fn(
    PgPool,
    Arc<RuntimeConfig>,
) -> futures_util::future::BoxFuture<'static, anyhow::Result<AuditReport>>;

/// A service's auditor: reads the database on a pool on the service's schema.
pub type Audit =
    fn(PgPool) -> futures_util::future::BoxFuture<'static, anyhow::Result<AuditReport>>;

/// What an auditor found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// What to print, one line each: the checks and the violations they found.
    pub lines: Vec<String>,
    /// How many violations were found.
    pub violations: usize,
    /// What was checked, e.g. `200000 boards`; printed after "no violation".
    pub scope: Option<String>,
}

impl ServiceSpec {
    /// A service without an auditor.
    pub const fn new(
        name: &'static str,
        migrations: &'static Dir<'static>,
        build: fn(&ServiceContext) -> anyhow::Result<GrpcServices>,
    ) -> Self {
        Self {
            name,
            migrations,
            build,
            audit: None,
            peer_audit: None,
        }
    }

    /// The same service with `audit` as its auditor, one that asks its peers too.
    pub const fn with_peer_audit(mut self, audit: PeerAudit) -> Self {
        self.peer_audit = Some(audit);
        self
    }

    /// The same service with `audit` as its auditor.
    pub const fn with_audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    pub fn migration_set(&self) -> anyhow::Result<MigrationSet> {
        Ok(MigrationSet::from_embedded(self.name, self.migrations)?)
    }
}

/// What a service's `build` function gets.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// Pool whose connections have `search_path` set to the service's schema.
    pub pool: PgPool,
    pub config: Arc<RuntimeConfig>,
    /// Cancelled when the service begins to shut down; background work stops with it.
    pub shutdown: CancellationToken,
}

impl ServiceContext {
    /// A channel to another service, from its configured URL (`PHOENIX_<NAME>_URL`), carrying
    /// this service's credentials (`PHOENIX_PEER_TOKEN` or `_TOKEN_FILE`, and for an `https://`
    /// URL `PHOENIX_PEER_TLS_*`).
    pub fn peer(&self, service: &str) -> anyhow::Result<PeerChannel> {
        let url = self.config.peers.url(service).ok_or_else(|| {
            anyhow::anyhow!(
                "PHOENIX_{}_URL: the address of the {service} service is not configured",
                service.to_uppercase()
            )
        })?;
        ClientBuilder::new(url)
            .deadline(self.config.max_deadline)
            .peer_credentials(&self.config.peer_credentials)?
            .connect_lazy()
    }

    /// Runs `job` every `interval` (the first time one interval from now) until shutdown, in the
    /// background, on **every replica**: for work on this process's own state (a cache reload).
    /// A failed run is logged and the next one still happens. See [`crate::jobs`].
    pub fn every<F, Fut>(&self, name: &'static str, interval: Duration, job: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
    {
        crate::jobs::schedule(self, name, interval, crate::jobs::Replicas::Each, job);
    }

    /// Like [`every`](Self::every), but on **one replica at a time**: the service's sweepers
    /// and schedules on the shared database. A tick that finds another replica running the job
    /// (its advisory lock, keyed by schema and `name`) skips. See [`crate::jobs`].
    pub fn singleton<F, Fut>(&self, name: &'static str, interval: Duration, job: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
    {
        crate::jobs::schedule(self, name, interval, crate::jobs::Replicas::One, job);
    }

    /// Largest message a service accepts or sends; apply to each generated server with
    /// [`limited!`](crate::limited).
    pub fn max_message_bytes(&self) -> usize {
        self.config.max_message_bytes as usize
    }
}

/// A generated tonic server with the configured message size limit, both ways:
/// `limited!(context, LedgerServiceServer::new(api))`. (A macro, because the generated
/// servers have the setters as inherent methods, not through a trait.)
#[macro_export]
macro_rules! limited {
    ($context:expr, $server:expr) => {
        $server
            .max_decoding_message_size($context.max_message_bytes())
            .max_encoding_message_size($context.max_message_bytes())
    };
}

/// The tonic services of one Phoenix service, with the names health reports on.
#[derive(Debug, Default)]
pub struct GrpcServices {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl GrpcServices {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn serve<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }
}

/// Connects a pool to `url` with every connection's `search_path` set to `schema`.
pub async fn connect_pool(
    url: &str,
    schema: &str,
    config: &RuntimeConfig,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| anyhow::anyhow!("not a PostgreSQL URL for {schema}: {e}"))?;
    // No statement may outlive the longest deadline: a query abandoned by its call would
    // otherwise keep its connection, and enough of them would drain the pool.
    let statement_timeout = format!("{}ms", config.max_deadline.as_millis());
    let options = options
        .application_name(&format!("phoenix-{schema}"))
        .options([
            ("search_path", format!("{schema},public")),
            ("statement_timeout", statement_timeout.clone()),
            ("lock_timeout", statement_timeout),
            (
                "plan_cache_mode",
                config.db_plan_cache_mode.as_setting().to_owned(),
            ),
        ]);
    // Pools are named after their service's schema, which is the service's name.
    let service: std::sync::Arc<str> = schema.into();
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_acquire_timeout)
        // A connection is pinged before use only after a quiet second. sqlx already pings
        // every connection it takes back (and drops one that does not answer), so the ping
        // before use only re-checks, on the caller's time, one round trip per transaction,
        // what the last release found; it matters only for a connection left idle long
        // enough for the server to end it.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .after_release(move |connection, _| {
            let service = service.clone();
            Box::pin(async move {
                let outside = outside_any_transaction(connection).await;
                if !outside {
                    tracing::warn!(
                        service = &*service,
                        "a connection came back inside a transaction block nothing holds (a \
                         call cancelled while its BEGIN was on the wire, say); closing it, which \
                         rolls the block back"
                    );
                    crate::metrics::global().count_discarded_connection(&service);
                }
                Ok(outside)
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database for {schema}: {e}"))
}

/// Whether the session on `connection` is outside any transaction block: what a connection
/// must be to go back to the pool. sqlx 0.8 counts a transaction only once its BEGIN answered,
/// so a future dropped while BEGIN was on the wire (a cancelled call, a timeout) leaves the
/// session inside a block sqlx knows nothing of, and nothing rolls it back: the next borrower's
/// statements would run in it, hold its locks, and be lost when the connection closes
/// (transact-rs/sqlx#4393). sqlx's own check on release reads the server's answer but not its
/// transaction status, so this asks: within a block, the transaction began before this
/// statement. A simple query, because only then does a statement outside a block start its
/// transaction at its own timestamp (a prepared one is bound, which starts the transaction,
/// before it executes). An error (an aborted block refuses every statement) also means no.
async fn outside_any_transaction(connection: &mut sqlx::PgConnection) -> bool {
    use sqlx::{Executor, Row};
    // Text without parameters goes as a simple query.
    connection
        .fetch_one("SELECT transaction_timestamp() = statement_timestamp()")
        .await
        .and_then(|row| row.try_get::<bool, _>(0))
        .unwrap_or(false)
}

/// A service that is serving. Cancel its token (or call [`RunningService::shutdown`]) to stop.
#[derive(Debug)]
pub struct RunningService {
    pub name: &'static str,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Starts the shutdown sequence without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Health goes NOT_SERVING, then the listener closes and in-flight calls drain.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the service has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("{} crashed: {e}", self.name))?
    }
}

/// Migrates (unless turned off) and serves `spec` on `listener` until `shutdown` is cancelled.
pub async fn start(
    spec: &ServiceSpec,
    config: Arc<RuntimeConfig>,
    pool: PgPool,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningService> {
    let set = spec.migration_set()?;
    if config.migrate_on_start {
        let steps = Migrator::new(&set, &pool).up(None, false).await?;
        if !steps.is_empty() {
            tracing::info!(
                service = spec.name,
                applied = steps.len(),
                "migrated to head"
            );
        }
    }
    crate::metrics::global().watch_pool(spec.name, pool.clone());

    let context = ServiceContext {
        pool: pool.clone(),
        config: config.clone(),
        shutdown: shutdown.clone(),
    };
    let services = (spec.build)(&context)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut names = services.names.clone();
    names.push(""); // the whole server
    set_health(&health, &names, ServingStatus::NotServing).await;

    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(phoenix_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.Status and the error details we send (ErrorInfo, BadRequest,
            // RetryInfo…): grpcurl and buf curl resolve them here to print errors as JSON.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection");
        for name in &services.names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let mut routes = services.routes;
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let authenticator = Authenticator::from_config(&config.auth)?.map(Arc::new);
    if authenticator.is_none() {
        tracing::warn!(
            service = spec.name,
            "AUTHENTICATION IS OFF: every caller is trusted. Set PHOENIX_AUTH_HS256_SECRET or PHOENIX_AUTH_RS256_PUBLIC_KEY_FILE in production"
        );
    }
    let database = DatabaseState::default();
    let known_methods = known_methods(&services.names)?;
    let faults = fault_plan(spec.name, &config, &known_methods)?;
    let layer = RpcLayer::new(RpcPolicy {
        service: spec.name,
        known_methods,
        faults,
        max_deadline: config.max_deadline,
        permits: Arc::new(Semaphore::new(config.max_concurrent_rpcs as usize)),
        authenticator,
        database: database.clone(),
    });
    let mut server = Server::builder().http2_keepalive_interval(Some(Duration::from_secs(30)));
    if let Some(tls) = tls_config(&config)? {
        server = server.tls_config(tls)?;
    }
    let router = server.layer(layer).add_routes(routes.routes());

    let addr = listener.local_addr()?;
    let stop_accepting = CancellationToken::new();
    // No Nagle: a small response waits for nothing (with it, a caller that sends one request
    // at a time on its connection sees ~40 ms of delayed-ACK stall per call).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |stream| {
            if let Ok(stream) = &stream
                && let Err(error) = stream.set_nodelay(true)
            {
                tracing::debug!(%error, "could not disable Nagle on a connection");
            }
            stream
        },
    );
    let mut serving = tokio::spawn(
        router.serve_with_incoming_shutdown(incoming, stop_accepting.clone().cancelled_owned()),
    );

    let health_task = tokio::spawn(watch_database(
        pool.clone(),
        health.clone(),
        database,
        names.clone(),
        config.health_interval,
        shutdown.clone(),
    ));
    let name = spec.name;
    let shutdown_signal = shutdown.clone();
    let task = tokio::spawn(async move {
        shutdown_signal.cancelled().await;
        // Health first, so load balancers stop sending calls before the listener closes.
        health_task.abort();
        let _ = health_task.await;
        set_health(&health, &names, ServingStatus::NotServing).await;
        tracing::info!(service = name, grace = ?config.shutdown_grace, "shutting down: health is NOT_SERVING");
        tokio::time::sleep(config.shutdown_grace).await;
        stop_accepting.cancel();
        // Dropping the statuses ends open health `Watch` streams, which would otherwise hold
        // their connections, and so the drain, open until the timeout.
        let mut health = health;
        for name in &names {
            health.clear_service_status(name).await;
        }
        match tokio::time::timeout(config.drain_timeout, &mut serving).await {
            Ok(result) => result??,
            Err(_) => {
                serving.abort();
                tracing::warn!(service = name, drain = ?config.drain_timeout, "in-flight calls did not finish in time; cut off");
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), pool.close())
            .await
            .is_err()
        {
            tracing::warn!(
                service = name,
                "database connections still busy after 5 s; leaving them"
            );
        }
        tracing::info!(service = name, "stopped");
        Ok(())
    });
    tracing::info!(service = spec.name, %addr, "serving");
    Ok(RunningService {
        name: spec.name,
        addr,
        shutdown,
        task,
    })
}

/// The service's fault layer as `PHOENIX_FAULT_*` say, refused at start when they are wrong,
/// and announced loudly when it is on.
fn fault_plan(
    service: &'static str,
    config: &RuntimeConfig,
    known: &std::collections::HashSet<String>,
) -> anyhow::Result<Option<FaultPlan>> {
    let served = known
        .iter()
        .filter(|method| {
            !crate::middleware::EXEMPT_SERVICES
                .iter()
                .any(|exempt| method.starts_with(&format!("{exempt}/")))
        })
        .cloned()
        .collect();
    let plan = FaultPlan::from_config(&config.faults, service, &served, &contract_methods(None)?)?;
    if let Some(plan) = &plan {
        tracing::warn!(
            service,
            faults = %plan.describe(),
            "FAULTS ARE ON: calls are refused or stalled on purpose (PHOENIX_FAULT_*)"
        );
    }
    Ok(plan)
}

/// `package.Service/Method` of every RPC of the services in `only` (all when `None`) in the
/// descriptors that reflection serves.
fn contract_methods(only: Option<&[&str]>) -> anyhow::Result<std::collections::HashSet<String>> {
    use prost::Message;
    let descriptors = prost_types::FileDescriptorSet::decode(phoenix_proto::FILE_DESCRIPTOR_SET)?;
    let mut methods = std::collections::HashSet::new();
    for file in &descriptors.file {
        for service in &file.service {
            let name = format!("{}.{}", file.package(), service.name());
            if only.is_none_or(|only| only.contains(&name.as_str())) {
                methods.extend(
                    service
                        .method
                        .iter()
                        .map(|method| format!("{name}/{}", method.name())),
                );
            }
        }
    }
    Ok(methods)
}

/// `package.Service/Method` of every RPC of `served` and of health and reflection, read from the
/// descriptors that reflection serves.
fn known_methods(served: &[&str]) -> anyhow::Result<std::collections::HashSet<String>> {
    let mut known: std::collections::HashSet<String> = [
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    known.extend(contract_methods(Some(served))?);
    Ok(known)
}

async fn set_health(health: &HealthReporter, names: &[&str], status: ServingStatus) {
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

/// SERVING only while the database answers: a service without its database can do nothing
/// useful, and a load balancer should route around it. While a check has failed, calls are
/// refused at once (`database`), instead of each waiting out the pool's acquire timeout.
///
/// The check runs on a connection of its own, not one of the pool's: a pool that is merely
/// busy (every connection in a long call) says nothing about the database, and must not turn
/// the service away.
async fn watch_database(
    pool: PgPool,
    health: HealthReporter,
    database: DatabaseState,
    names: Vec<&'static str>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let options = pool.connect_options();
    let limit = every.max(Duration::from_secs(1));
    let mut connection: Option<sqlx::PgConnection> = None;
    let mut last = None;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shutdown.is_cancelled() {
        ticker.tick().await;
        let check = tokio::time::timeout(limit, async {
            if connection.is_none() {
                connection = Some(sqlx::PgConnection::connect_with(&options).await?);
            }
            match connection.as_mut() {
                Some(open) => sqlx::query("SELECT 1").execute(open).await.map(|_| ()),
                None => Ok(()),
            }
        })
        .await;
        let failure = match check {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer within {limit:?}")),
        };
        let status = if failure.is_none() {
            ServingStatus::Serving
        } else {
            // A broken or hung connection is not used again: the next check connects anew.
            connection = None;
            ServingStatus::NotServing
        };
        if let Some(failure) = &failure
            && last != Some(ServingStatus::NotServing)
        {
            tracing::warn!(error = %failure, "database check failed: NOT_SERVING");
        }
        database.set_down(status == ServingStatus::NotServing, every);
        if last != Some(status) && !shutdown.is_cancelled() {
            set_health(&health, &names, status).await;
            if status == ServingStatus::Serving {
                tracing::info!("database answers: SERVING");
            }
            last = Some(status);
        }
    }
}

fn tls_config(config: &RuntimeConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&config.tls.tls_cert_file, &config.tls.tls_key_file) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path, variable: &str| {
        std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{variable}: cannot read {}: {e}", path.display()))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
        read(cert, "PHOENIX_TLS_CERT_FILE")?,
        read(key, "PHOENIX_TLS_KEY_FILE")?,
    ));
    if let Some(ca) = &config.tls.tls_client_ca_file {
        tls = tls.client_ca_root(Certificate::from_pem(read(
            ca,
            "PHOENIX_TLS_CLIENT_CA_FILE",
        )?));
    }
    Ok(Some(tls))
}
