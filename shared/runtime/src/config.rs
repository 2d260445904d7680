//! Settings shared by every service, read from flags and environment variables (a flag wins over
//! its variable). Each value is checked at start; an error names the variable and what it expects.
//! The README's configuration table lists every setting here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

/// Parses a human duration such as `500ms`, `5s` or `1m` (zero included).
pub fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("expected a duration such as 500ms, 5s or 1m ({e})"))
}

/// A duration of at least a millisecond: zero would mean "never" or "always" where it is used.
pub fn positive_duration(value: &str) -> Result<Duration, String> {
    duration(value).and_then(|d| {
        if d >= Duration::from_millis(1) {
            Ok(d)
        } else {
            Err("must be at least 1ms".to_owned())
        }
    })
}

/// Settings of the service runtime.
#[derive(Debug, Clone, Args)]
pub struct RuntimeConfig {
    /// The service's own settings as `--name=value` arguments, which take precedence over the
    /// service's environment variables: how tests and programs that embed a service choose
    /// them (operators use the variables).
    #[arg(skip)]
    pub service_args: Vec<String>,

    /// PostgreSQL connection URL. Unset: Phoenix starts its own embedded PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Largest number of pooled database connections per service.
    #[arg(long, env = "PHOENIX_DB_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// How PostgreSQL plans the services' prepared statements (its `plan_cache_mode`).
    /// Phoenix's statements look rows up by key, so one generic plan per statement serves every
    /// call; PostgreSQL's own default (`auto`) re-plans a statement on each call while the
    /// custom plans look cheaper, which cost the ledger a quarter of its single-transfer rate.
    #[arg(long, env = "PHOENIX_DB_PLAN_CACHE_MODE", value_enum, default_value_t = PlanCacheMode::ForceGenericPlan)]
    pub db_plan_cache_mode: PlanCacheMode,

    /// How long a request waits for a pooled connection before failing with UNAVAILABLE.
    #[arg(long, env = "PHOENIX_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = positive_duration)]
    pub db_acquire_timeout: Duration,

    /// Apply pending migrations when a service starts. Set false when a Kubernetes Job runs them.
    #[arg(long, env = "PHOENIX_MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Upper bound on any call's deadline; also the deadline of calls that send none.
    #[arg(long, env = "PHOENIX_MAX_DEADLINE", default_value = "30s", value_parser = positive_duration)]
    pub max_deadline: Duration,

    /// RPCs a service runs at once; further calls are shed with RESOURCE_EXHAUSTED.
    #[arg(long, env = "PHOENIX_MAX_CONCURRENT_RPCS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_concurrent_rpcs: u32,

    /// Largest request or response message, in bytes.
    #[arg(long, env = "PHOENIX_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u32).range(1024..=256 * 1024 * 1024))]
    pub max_message_bytes: u32,

    /// How often each service checks its database to report health.
    #[arg(long, env = "PHOENIX_HEALTH_INTERVAL", default_value = "2s", value_parser = positive_duration)]
    pub health_interval: Duration,

    /// On SIGTERM, how long health reports NOT_SERVING before the listener closes, so load
    /// balancers stop routing new calls first.
    #[arg(long, env = "PHOENIX_SHUTDOWN_GRACE", default_value = "1s", value_parser = duration)]
    pub shutdown_grace: Duration,

    /// On SIGTERM, how long in-flight calls may take to finish before they are cut off.
    #[arg(long, env = "PHOENIX_DRAIN_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub drain_timeout: Duration,

    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(long, env = "PHOENIX_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,

    #[command(flatten)]
    pub telemetry: TelemetryConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub tls: TlsConfig,

    #[command(flatten)]
    pub embedded: EmbeddedConfig,

    #[command(flatten)]
    pub peers: PeerConfig,

    #[command(flatten)]
    pub peer_credentials: PeerCredentialsConfig,

    /// Faults injected on purpose (off by default): see [`crate::fault`].
    #[command(flatten)]
    pub faults: crate::fault::FaultConfig,

    /// Intervals of the background jobs (`PHOENIX_JOB_INTERVALS`): see [`crate::jobs`].
    #[command(flatten)]
    pub jobs: crate::jobs::JobConfig,
}

impl RuntimeConfig {
    /// The defaults, with no flags and no environment: what tests start from.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: RuntimeConfig,
        }
        // Built from an empty argument list; clap still reads variables, so tests must not
        // depend on the environment they run in beyond what they set themselves.
        <Defaults as clap::Parser>::try_parse_from(["phoenix"])
            .map(|d| d.config)
            .unwrap_or_else(|e| panic!("the default configuration must parse: {e}"))
    }
}

/// PostgreSQL's `plan_cache_mode`, set on every pooled connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanCacheMode {
    /// PostgreSQL's default: custom plans until a generic one looks no worse.
    Auto,
    /// One generic plan per prepared statement.
    ForceGenericPlan,
    /// A new plan for every execution.
    ForceCustomPlan,
}

impl PlanCacheMode {
    /// The setting's value as PostgreSQL spells it.
    pub fn as_setting(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ForceGenericPlan => "force_generic_plan",
            Self::ForceCustomPlan => "force_custom_plan",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON lines, or human-readable text when standard error is a terminal.
    Auto,
    Json,
    Text,
}

/// Logs and traces.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Log filter in `tracing` syntax, e.g. `info` or `info,phoenix_ledger=debug`.
    #[arg(
        long = "log",
        env = "PHOENIX_LOG",
        default_value = "info,sqlx=warn,opentelemetry=warn,opentelemetry_sdk=warn"
    )]
    pub log_filter: String,

    /// Log format.
    #[arg(long, env = "PHOENIX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// OTLP/gRPC endpoint for traces, e.g. `http://otel-collector:4317`. Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Bearer-token authentication. Off unless a key is configured.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Shared secret that verifies HS256 tokens.
    #[arg(long, env = "PHOENIX_AUTH_HS256_SECRET", hide_env_values = true)]
    pub hs256_secret: Option<String>,

    /// PEM file with the RSA public key that verifies RS256 tokens.
    #[arg(long, env = "PHOENIX_AUTH_RS256_PUBLIC_KEY_FILE")]
    pub rs256_public_key_file: Option<PathBuf>,

    /// Required `iss` claim, if set.
    #[arg(long, env = "PHOENIX_AUTH_ISSUER")]
    pub issuer: Option<String>,

    /// Required `aud` claim, if set.
    #[arg(long, env = "PHOENIX_AUTH_AUDIENCE")]
    pub audience: Option<String>,
}

/// TLS for the gRPC listener; mutual TLS when a client CA is given.
#[derive(Debug, Clone, Args)]
pub struct TlsConfig {
    /// PEM certificate chain of the server. Set together with the key to serve TLS.
    #[arg(long, env = "PHOENIX_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of the server.
    #[arg(long, env = "PHOENIX_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM bundle of CAs whose client certificates are accepted; turns on mutual TLS.
    #[arg(long, env = "PHOENIX_TLS_CLIENT_CA_FILE", requires = "tls_cert_file")]
    pub tls_client_ca_file: Option<PathBuf>,
}

/// How this service proves itself to the peers it calls: a bearer token when they require
/// authentication, and TLS (mutual when a client certificate is given) for `https://` peers.
#[derive(Debug, Clone, Args)]
pub struct PeerCredentialsConfig {
    /// Bearer token sent on every call to a peer: this service's identity, from your token
    /// issuer (the peers verify it like any caller's).
    #[arg(
        long,
        env = "PHOENIX_PEER_TOKEN",
        hide_env_values = true,
        conflicts_with = "peer_token_file"
    )]
    pub peer_token: Option<String>,

    /// File holding that token, read again when it changes (a rotated Kubernetes projected
    /// token or mounted secret is picked up without a restart).
    #[arg(long, env = "PHOENIX_PEER_TOKEN_FILE")]
    pub peer_token_file: Option<PathBuf>,

    /// PEM bundle of CAs that verify peers reached over `https://` (needed for them).
    #[arg(long, env = "PHOENIX_PEER_TLS_CA_FILE")]
    pub peer_tls_ca_file: Option<PathBuf>,

    /// PEM client certificate presented to `https://` peers that require mutual TLS.
    #[arg(
        long,
        env = "PHOENIX_PEER_TLS_CERT_FILE",
        requires = "peer_tls_key_file"
    )]
    pub peer_tls_cert_file: Option<PathBuf>,

    /// PEM private key of that certificate.
    #[arg(
        long,
        env = "PHOENIX_PEER_TLS_KEY_FILE",
        requires = "peer_tls_cert_file"
    )]
    pub peer_tls_key_file: Option<PathBuf>,
}

/// The embedded PostgreSQL used when `DATABASE_URL` is unset.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedConfig {
    /// Data folder of the embedded server; kept across runs.
    #[arg(long, env = "PHOENIX_DATA_DIR", default_value = ".phoenix/pgdata")]
    pub data_dir: PathBuf,

    /// Folder with the PostgreSQL server binaries (`postgres`, `initdb`) to use.
    #[arg(long, env = "PHOENIX_PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// Where the downloaded PostgreSQL binaries are cached. Default: `~/.cache/phoenix`, or
    /// `/var/cache/phoenix` when running as root.
    #[arg(long, env = "PHOENIX_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Unprivileged user the server runs as when Phoenix runs as root.
    #[arg(long, env = "PHOENIX_PG_USER", default_value = "nobody")]
    pub pg_user: String,

    /// Server settings of the embedded PostgreSQL, `name=value` separated by commas. The
    /// defaults replace PostgreSQL's stock 128 MB of shared buffers and 1 GB between
    /// checkpoints, made for tiny machines: on them the ledger benchmark ran at half its rate;
    /// `min_wal_size` keeps the WAL segments a checkpoint frees for reuse, so commits do not
    /// wait for new ones to be zero-filled.
    #[arg(long, env = "PHOENIX_PG_SETTINGS", value_delimiter = ',', value_parser = pg_setting, default_value = "shared_buffers=1GB,max_wal_size=8GB,min_wal_size=1GB")]
    pub pg_settings: Vec<String>,
}

/// A `name=value` server setting.
fn pg_setting(value: &str) -> Result<String, String> {
    match value.split_once('=') {
        Some((name, _))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
        {
            Ok(value.to_owned())
        }
        _ => Err("expected name=value, such as shared_buffers=1GB".to_owned()),
    }
}

/// Where the other services are, for service-to-service calls.
#[derive(Debug, Clone, Args)]
pub struct PeerConfig {
    /// URL of the directory service, e.g. `http://directory:50051`.
    #[arg(long, env = "PHOENIX_DIRECTORY_URL")]
    pub directory_url: Option<String>,
    /// URL of the goals service.
    #[arg(long, env = "PHOENIX_GOALS_URL")]
    pub goals_url: Option<String>,
    /// URL of the missions service.
    #[arg(long, env = "PHOENIX_MISSIONS_URL")]
    pub missions_url: Option<String>,
    /// URL of the ledger service.
    #[arg(long, env = "PHOENIX_LEDGER_URL")]
    pub ledger_url: Option<String>,
    /// URL of the coordinator service.
    #[arg(long, env = "PHOENIX_COORDINATOR_URL")]
    pub coordinator_url: Option<String>,
    /// URL of the conversations service.
    #[arg(long, env = "PHOENIX_CONVERSATIONS_URL")]
    pub conversations_url: Option<String>,
    /// URL of the narrative service.
    #[arg(long, env = "PHOENIX_NARRATIVE_URL")]
    pub narrative_url: Option<String>,
}

impl PeerConfig {
    /// The configured URL of a service, by its name.
    pub fn url(&self, service: &str) -> Option<&str> {
        match service {
            "directory" => self.directory_url.as_deref(),
            "goals" => self.goals_url.as_deref(),
            "missions" => self.missions_url.as_deref(),
            "ledger" => self.ledger_url.as_deref(),
            "coordinator" => self.coordinator_url.as_deref(),
            "conversations" => self.conversations_url.as_deref(),
            "narrative" => self.narrative_url.as_deref(),
            _ => None,
        }
    }

    /// Sets a service's URL (used by `phoenix up`, which knows every address).
    pub fn set_url(&mut self, service: &str, url: String) {
        let slot = match service {
            "directory" => &mut self.directory_url,
            "goals" => &mut self.goals_url,
            "missions" => &mut self.missions_url,
            "ledger" => &mut self.ledger_url,
            "coordinator" => &mut self.coordinator_url,
            "conversations" => &mut self.conversations_url,
            "narrative" => &mut self.narrative_url,
            _ => return,
        };
        slot.get_or_insert(url);
    }
}

/// Parses the command line and environment like `P::parse()`, but an invalid value is reported
/// with the name of its environment variable, since that is where a pod's settings come from.
pub fn parse_or_exit<P: clap::Parser>() -> P {
    use clap::error::{ContextKind, ContextValue};
    let error = match P::try_parse() {
        Ok(parsed) => return parsed,
        Err(error) => error,
    };
    if let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg)
        && let Some(long) = arg.strip_prefix("--").and_then(|a| a.split(' ').next())
        && let Some(variable) = env_of(&P::command(), long)
    {
        let value = match error.get(ContextKind::InvalidValue) {
            Some(ContextValue::String(value)) => value.clone(),
            _ => String::new(),
        };
        let reason = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_else(|| error.kind().to_string());
        eprintln!("error: {variable} (--{long}) has an invalid value {value:?}: {reason}");
        std::process::exit(2);
    }
    error.exit()
}

fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
}
