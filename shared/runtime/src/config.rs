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

    /// PostgreSQL connection URL of every service without one of its own (below). Unset:
    /// Phoenix starts its own embedded PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub databases: ServiceDatabases,

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

/// Each service's own PostgreSQL, for a context that outgrew the shared server: set, it wins
/// over `DATABASE_URL` for that service alone (see [`RuntimeConfig::database_of`]).
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceDatabases {
    /// PostgreSQL URL of the directory service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_DIRECTORY_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub directory_database_url: Option<String>,
    /// PostgreSQL URL of the goals service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_GOALS_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub goals_database_url: Option<String>,
    /// PostgreSQL URL of the missions service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_MISSIONS_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub missions_database_url: Option<String>,
    /// PostgreSQL URL of the ledger service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_LEDGER_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub ledger_database_url: Option<String>,
    /// PostgreSQL URL of the coordinator service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_COORDINATOR_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub coordinator_database_url: Option<String>,
    /// PostgreSQL URL of the conversations service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_CONVERSATIONS_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub conversations_database_url: Option<String>,
    /// PostgreSQL URL of the narrative service (default: DATABASE_URL).
    #[arg(long, env = "PHOENIX_NARRATIVE_DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub narrative_database_url: Option<String>,
}

impl ServiceDatabases {
    /// The URL a service has of its own, by the service's name.
    pub fn url(&self, service: &str) -> Option<&str> {
        self.slot(service)?.as_deref()
    }

    /// Gives a service a database of its own (what `--<service>-database-url` does).
    pub fn set_url(&mut self, service: &str, url: String) -> anyhow::Result<()> {
        let slot = self.slot_mut(service).ok_or_else(|| {
            anyhow::anyhow!("{service} is not a Phoenix service; it has no database setting")
        })?;
        *slot = Some(url);
        Ok(())
    }

    fn slot(&self, service: &str) -> Option<&Option<String>> {
        Some(match service {
            "directory" => &self.directory_database_url,
            "goals" => &self.goals_database_url,
            "missions" => &self.missions_database_url,
            "ledger" => &self.ledger_database_url,
            "coordinator" => &self.coordinator_database_url,
            "conversations" => &self.conversations_database_url,
            "narrative" => &self.narrative_database_url,
            _ => return None,
        })
    }

    fn slot_mut(&mut self, service: &str) -> Option<&mut Option<String>> {
        Some(match service {
            "directory" => &mut self.directory_database_url,
            "goals" => &mut self.goals_database_url,
            "missions" => &mut self.missions_database_url,
            "ledger" => &mut self.ledger_database_url,
            "coordinator" => &mut self.coordinator_database_url,
            "conversations" => &mut self.conversations_database_url,
            "narrative" => &mut self.narrative_database_url,
            _ => return None,
        })
    }
}

/// The variable that gives `service` a database of its own: `PHOENIX_LEDGER_DATABASE_URL`.
pub fn database_variable(service: &str) -> String {
    format!("PHOENIX_{}_DATABASE_URL", service.to_ascii_uppercase())
}

/// Where a service's database is, and which setting said so (for errors and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSource<'a> {
    /// `PHOENIX_<SERVICE>_DATABASE_URL`: a server (or database) of its own.
    Own { variable: String, url: &'a str },
    /// `DATABASE_URL`, shared with the other services without a URL of their own.
    Shared { url: &'a str },
    /// Neither is set: the embedded PostgreSQL.
    Embedded,
}

impl DatabaseSource<'_> {
    /// The setting behind it, as an operator would look it up.
    pub fn variable(&self) -> String {
        match self {
            Self::Own { variable, .. } => variable.clone(),
            Self::Shared { .. } => "DATABASE_URL".to_owned(),
            Self::Embedded => "the embedded PostgreSQL (DATABASE_URL unset)".to_owned(),
        }
    }
}

impl RuntimeConfig {
    /// The database of `service`: its own `PHOENIX_<SERVICE>_DATABASE_URL`, else the shared
    /// `DATABASE_URL`, else the embedded server. Each service keeps its own schema wherever it
    /// is, so moving one to another server changes no code and no table name.
    pub fn database_of(&self, service: &str) -> DatabaseSource<'_> {
        if let Some(url) = self.databases.url(service) {
            return DatabaseSource::Own {
                variable: database_variable(service),
                url,
            };
        }
        match &self.database_url {
            Some(url) => DatabaseSource::Shared { url },
            None => DatabaseSource::Embedded,
        }
    }

    /// Checks every database URL the given services would use, before anything starts: an error
    /// names the variable and what is wrong, never the URL (it holds a password).
    pub fn check_database_urls<'a>(
        &self,
        services: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<()> {
        for service in services {
            let source = self.database_of(service);
            let url = match &source {
                DatabaseSource::Own { url, .. } | DatabaseSource::Shared { url } => *url,
                DatabaseSource::Embedded => continue,
            };
            postgres_url(url).map_err(|reason| {
                anyhow::anyhow!("{} (database of {service}): {reason}", source.variable())
            })?;
        }
        Ok(())
    }
}

/// A PostgreSQL URL: `postgres://user:password@host:5432/database`. The reason never repeats
/// the value, which holds a password.
pub fn postgres_url(value: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected postgres://user:password@host:5432/database";
    if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
        return Err(format!("not a PostgreSQL URL ({EXPECTED})"));
    }
    value
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|e| format!("not a valid PostgreSQL URL ({EXPECTED}): {e}"))?;
    Ok(value.to_owned())
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

    /// Which spans are traced, in `tracing` filter syntax; apart from the log filter, so quieter
    /// logs do not thin the traces.
    #[arg(
        long = "trace-filter",
        env = "PHOENIX_TRACE_FILTER",
        default_value = "info,sqlx=warn,opentelemetry=warn,opentelemetry_sdk=warn"
    )]
    pub trace_filter: String,
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
            // A secret (a database URL with its password) is not echoed to the logs.
            _ if is_secret(&P::command(), long) => String::new(),
            Some(ContextValue::String(value)) => format!(" {value:?}"),
            _ => String::new(),
        };
        let reason = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_else(|| error.kind().to_string());
        eprintln!("error: {variable} (--{long}) has an invalid value{value}: {reason}");
        std::process::exit(2);
    }
    error.exit()
}

fn is_secret(command: &clap::Command, long: &str) -> bool {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .map(clap::Arg::is_hide_env_values_set)
        .unwrap_or_else(|| command.get_subcommands().any(|sub| is_secret(sub, long)))
}

fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_urls(shared: Option<&str>, own: &[(&str, &str)]) -> RuntimeConfig {
        let mut config = RuntimeConfig::defaults();
        config.database_url = shared.map(str::to_owned);
        config.databases = ServiceDatabases::default();
        for (service, url) in own {
            config
                .databases
                .set_url(service, (*url).to_owned())
                .expect("a known service");
        }
        config
    }

    #[test]
    fn a_service_url_wins_over_the_shared_one_for_that_service_only() {
        let config = with_urls(
            Some("postgres://shared/phoenix"),
            &[("ledger", "postgres://ledger-db/ledger")],
        );
        assert_eq!(
            config.database_of("ledger"),
            DatabaseSource::Own {
                variable: "PHOENIX_LEDGER_DATABASE_URL".to_owned(),
                url: "postgres://ledger-db/ledger",
            }
        );
        assert_eq!(
            config.database_of("directory"),
            DatabaseSource::Shared {
                url: "postgres://shared/phoenix"
            }
        );
    }

    #[test]
    fn without_any_url_a_service_uses_the_embedded_server() {
        let config = with_urls(None, &[("goals", "postgres://goals-db/goals")]);
        assert_eq!(config.database_of("missions"), DatabaseSource::Embedded);
        assert_eq!(
            config.database_of("goals").variable(),
            "PHOENIX_GOALS_DATABASE_URL"
        );
        assert_eq!(config.database_of("nonexistent"), DatabaseSource::Embedded);
    }

    #[test]
    fn every_service_has_its_own_variable() {
        let mut databases = ServiceDatabases::default();
        for service in [
            "directory",
            "goals",
            "missions",
            "ledger",
            "coordinator",
            "conversations",
            "narrative",
        ] {
            databases
                .set_url(service, format!("postgres://h/{service}"))
                .expect("a known service");
            assert_eq!(
                databases.url(service),
                Some(format!("postgres://h/{service}").as_str())
            );
        }
        let error = databases
            .set_url("billing", "postgres://h/billing".to_owned())
            .expect_err("an unknown service");
        assert!(
            error
                .to_string()
                .contains("billing is not a Phoenix service")
        );
    }

    #[test]
    fn a_bad_url_is_refused_naming_its_variable_and_not_its_password() {
        let config = with_urls(
            Some("postgres://phoenix:pw@db/phoenix"),
            &[("ledger", "mysql://root:secret-password@db/ledger")],
        );
        config
            .check_database_urls(["directory"])
            .expect("the shared URL is fine");
        let error = config
            .check_database_urls(["directory", "ledger"])
            .expect_err("the ledger's URL is not PostgreSQL's")
            .to_string();
        assert!(
            error.starts_with(
                "PHOENIX_LEDGER_DATABASE_URL (database of ledger): not a PostgreSQL URL"
            ),
            "{error}"
        );
        assert!(!error.contains("secret-password"), "{error}");

        let config = with_urls(Some("postgres://phoenix:pw@db:notaport/phoenix"), &[]);
        let error = config
            .check_database_urls(["goals"])
            .expect_err("a port that is not a number")
            .to_string();
        assert!(
            error.starts_with("DATABASE_URL (database of goals): not a valid PostgreSQL URL"),
            "{error}"
        );
        assert!(!error.contains("pw@"), "{error}");
    }

    #[test]
    fn the_variables_are_read_from_the_command_line_too() {
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            config: RuntimeConfig,
        }
        let args = <Args as clap::Parser>::try_parse_from([
            "phoenix",
            "--database-url",
            "postgres://shared/phoenix",
            "--ledger-database-url",
            "postgres://ledger-db/ledger",
        ])
        .expect("valid URLs");
        assert_eq!(
            args.config.database_of("ledger").variable(),
            "PHOENIX_LEDGER_DATABASE_URL"
        );
        assert_eq!(args.config.database_of("goals").variable(), "DATABASE_URL");
        let refused = <Args as clap::Parser>::try_parse_from([
            "phoenix",
            "--coordinator-database-url",
            "http://not-a-database",
        ]);
        let error = refused.err().expect("not a PostgreSQL URL").to_string();
        assert!(error.contains("--coordinator-database-url"), "{error}");
        assert!(error.contains("not a PostgreSQL URL"), "{error}");
    }
}
