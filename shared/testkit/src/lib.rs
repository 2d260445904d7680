//! The test kit: every integration test talks to a real PostgreSQL and a real server.
//!
//! - One PostgreSQL per test run: `phoenix test` starts a throwaway embedded server (found the
//!   same way as `phoenix up` finds it, fsync off) and hands it to every test binary through
//!   `PHOENIX_TEST_DATABASE_URL`. A test binary run on its own (`cargo test -p …`) starts its own.
//! - A fresh database per test, with the service's migrations applied.
//! - [`spawn`] starts a service on port 0 and hands back its address and a connected channel.
//!
//! Logs are silent unless `PHOENIX_TEST_LOG` holds a filter, e.g. `PHOENIX_TEST_LOG=debug`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use phoenix_runtime::embedded::EmbeddedPostgres;
use phoenix_runtime::migrate::Migrator;
use phoenix_runtime::{RunningService, RuntimeConfig, ServiceSpec};
use sqlx::{Connection, PgPool};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

mod replicas;
pub use replicas::{
    TestReplicas, assert_events_positioned_once, await_count, await_job_ticks, job_runs,
    spawn_replicas, sweeps_expired_keys_once,
};

enum Server {
    Embedded(EmbeddedPostgres),
    External(String),
}

impl Server {
    fn url(&self, database: &str) -> String {
        match self {
            Self::Embedded(server) => server.url(database),
            Self::External(url) => {
                let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
                format!("{base}/{database}")
            }
        }
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("PHOENIX_TEST_DATABASE_URL") {
            return Server::External(url);
        }
        match EmbeddedPostgres::start_throwaway(&RuntimeConfig::defaults().embedded) {
            Ok(server) => Server::Embedded(server),
            Err(error) => panic!("the test kit could not start PostgreSQL: {error:#}"),
        }
    })
}

/// A database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database on the test server.
    pub async fn create() -> Self {
        phoenix_runtime::telemetry::init_for_tests();
        let server = tokio::task::spawn_blocking(server)
            .await
            .expect("starting the test server");
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server.url("postgres"))
            .await
            .expect("connect to the test server");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Self {
            url: server.url(&name),
            name,
        }
    }

    /// Drops the database with every connection to it: the database "goes away".
    pub async fn drop_database(&self) {
        let mut admin = sqlx::PgConnection::connect(&server().url("postgres"))
            .await
            .expect("connect to the test server");
        sqlx::raw_sql(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await
            .expect("drop the test database");
        let _ = admin.close().await;
    }

    /// Closes the database to new connections and ends every open one (`accepting: false`), or
    /// opens it again: the database goes away, and comes back, as in an outage.
    pub async fn set_accepting_connections(&self, accepting: bool) {
        let mut admin = sqlx::PgConnection::connect(&server().url("postgres"))
            .await
            .expect("connect to the test server");
        sqlx::raw_sql(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {accepting}",
            self.name
        ))
        .execute(&mut admin)
        .await
        .expect("change the database");
        if !accepting {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(&self.name)
            .execute(&mut admin)
            .await
            .expect("end the connections");
        }
        let _ = admin.close().await;
    }

    /// A pool on this database with `search_path` set to `schema`, as the service gets it.
    pub async fn pool(&self, schema: &str) -> PgPool {
        phoenix_runtime::server::connect_pool(&self.url, schema, &test_config())
            .await
            .expect("connect the pool")
    }

    /// Which of the schemas `among` exist in this database, sorted: where a service migrated.
    pub async fn schemas(&self, among: &[&str]) -> Vec<String> {
        let pool = self.pool("public").await;
        let among: Vec<String> = among.iter().map(|name| (*name).to_owned()).collect();
        let mut found: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&among)
                .fetch_all(&pool)
                .await
                .expect("list the schemas");
        pool.close().await;
        found.sort();
        found
    }
}

/// A fresh database with `spec`'s migrations applied, and a pool on the service's schema.
pub async fn migrated_database(spec: &ServiceSpec) -> (TestDatabase, PgPool) {
    let database = TestDatabase::create().await;
    let pool = database.pool(spec.name).await;
    let set = spec
        .migration_set()
        .expect("the service's migrations are well-formed");
    Migrator::new(&set, &pool)
        .up(None, false)
        .await
        .expect("migrate the test database");
    (database, pool)
}

/// The configuration services get in tests: production defaults, tightened for speed.
pub fn test_config() -> RuntimeConfig {
    let mut config = RuntimeConfig::defaults();
    config.health_interval = Duration::from_millis(100);
    config.shutdown_grace = Duration::from_millis(100);
    config.drain_timeout = Duration::from_secs(5);
    config.db_max_connections = 5;
    config
}

/// A service running for one test.
pub struct TestService {
    pub addr: SocketAddr,
    pub database: TestDatabase,
    pub pool: PgPool,
    pub channel: Channel,
    spec: ServiceSpec,
    config: Arc<RuntimeConfig>,
    running: Option<RunningService>,
}

impl TestService {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the shutdown sequence (health NOT_SERVING, grace, drain) without waiting.
    pub fn begin_shutdown(&self) {
        if let Some(running) = &self.running {
            running.begin_shutdown();
        }
    }

    /// Stops the service and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
    }

    /// Stops the service and starts it again on the same database and configuration, as a
    /// deploy or a crash followed by a restart would. The new instance has a new address.
    pub async fn restart(mut self) -> TestService {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        let pool =
            phoenix_runtime::server::connect_pool(&self.database.url, self.spec.name, &self.config)
                .await
                .expect("connect the pool");
        start_on(self.spec, self.config.clone(), self.database.clone(), pool).await
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.begin_shutdown();
        }
    }
}

/// Starts `spec` on port 0 over a fresh database with the test configuration.
pub async fn spawn(spec: ServiceSpec) -> TestService {
    spawn_with(spec, |_| {}).await
}

/// Like [`spawn`], after `configure` has adjusted the configuration.
pub async fn spawn_with(
    spec: ServiceSpec,
    configure: impl FnOnce(&mut RuntimeConfig),
) -> TestService {
    let database = TestDatabase::create().await;
    let mut config = test_config();
    configure(&mut config);
    // The pool as the configuration says (size, timeouts), as the service would get it.
    let pool = phoenix_runtime::server::connect_pool(&database.url, spec.name, &config)
        .await
        .expect("connect the pool");
    start_on(spec, Arc::new(config), database, pool).await
}

/// Starts `spec` on the database at `url` (one a test already has, e.g. for another replica),
/// with `config`: the running service and a channel to it.
pub async fn serve_on(
    spec: &ServiceSpec,
    url: &str,
    config: Arc<RuntimeConfig>,
) -> (RunningService, Channel) {
    let pool = phoenix_runtime::server::connect_pool(url, spec.name, &config)
        .await
        .expect("connect the pool");
    serve(spec, config, pool).await
}

async fn serve(
    spec: &ServiceSpec,
    config: Arc<RuntimeConfig>,
    pool: PgPool,
) -> (RunningService, Channel) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let running =
        phoenix_runtime::server::start(spec, config, pool, listener, CancellationToken::new())
            .await
            .expect("start the service");
    // Lazy, so a test of a TLS-only service can still be handed a (plaintext) channel.
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .expect("valid url")
        .connect_lazy();
    (running, channel)
}

pub(crate) async fn start_on(
    spec: ServiceSpec,
    config: Arc<RuntimeConfig>,
    database: TestDatabase,
    pool: PgPool,
) -> TestService {
    let (running, channel) = serve(&spec, config.clone(), pool.clone()).await;
    let addr = running.addr;
    TestService {
        addr,
        database,
        pool,
        channel,
        spec,
        config,
        running: Some(running),
    }
}

/// What a failed call said, read back as a client reads it: the code, ErrorInfo reason and
/// domain, every BadRequest field with its reason, the metadata and RetryInfo.
pub fn error_of(status: &tonic::Status) -> phoenix_runtime::RemoteError {
    phoenix_runtime::RemoteError::from_status(status)
}

/// The ErrorInfo reason of a status ("" when it has none).
pub fn reason(status: &tonic::Status) -> String {
    error_of(status).reason
}

/// An ErrorInfo metadata value of a status.
pub fn metadata(status: &tonic::Status, key: &str) -> Option<String> {
    error_of(status).metadata.get(key).cloned()
}

/// The fields named by a status's BadRequest violations, in order.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    error_of(status)
        .violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Each BadRequest violation of a status as (field, reason), in order.
pub fn field_reasons(status: &tonic::Status) -> Vec<(String, String)> {
    error_of(status)
        .violations
        .into_iter()
        .map(|v| (v.field, v.reason))
        .collect()
}

/// Asserts the code and the ErrorInfo reason of a failed call, showing the whole status when
/// either differs.
#[track_caller]
pub fn assert_refused(status: &tonic::Status, code: tonic::Code, reason: &str) {
    let read = error_of(status);
    assert_eq!(
        (read.code, read.reason.as_str()),
        (code, reason),
        "unexpected error: {status:?}"
    );
}

/// A secret long enough for the runtime's HS256 authentication, for tests that turn it on with
/// `spawn_with(spec, |c| c.auth.hs256_secret = Some(TEST_SECRET.into()))`.
pub const TEST_SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

/// `Bearer <JWT>` for the `authorization` header: `claims` (`sub`, `tenant`, `roles`…; `exp`
/// is added, far in the future, when missing) signed with HS256 and `secret`.
pub fn bearer(secret: &str, mut claims: serde_json::Value) -> MetadataValue<Ascii> {
    if let Some(object) = claims.as_object_mut() {
        object
            .entry("exp")
            .or_insert(serde_json::Value::from(4_102_444_800_u64));
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token");
    format!("Bearer {token}").parse().expect("a header value")
}

/// `message` as a request carrying `authorization: <bearer>`.
pub fn signed<T>(message: T, bearer: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}

/// Registers a user in the directory served on `channel` and answers its id: for tests of
/// the directory and of the services that resolve users there.
pub async fn directory_user(channel: &Channel, email: &str, time_zone: &str) -> String {
    use phoenix_proto::directory::v1 as pb;
    pb::directory_service_client::DirectoryServiceClient::new(channel.clone())
        .create_user(pb::CreateUserRequest {
            email: email.into(),
            display_name: "Test User".into(),
            time_zone: time_zone.into(),
            ..Default::default()
        })
        .await
        .expect("the directory registers the user")
        .into_inner()
        .user
        .expect("a user")
        .id
}
