//! `phoenix`: run every service on one machine, run one as a pod would, or manage migrations.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use phoenix_runtime::embedded::EmbeddedPostgres;
use phoenix_runtime::migrate::{Direction, MigrationSet, Migrator, Step};
use phoenix_runtime::{Database, RuntimeConfig, ServiceSpec};

#[derive(Debug, Parser)]
#[command(
    name = "phoenix",
    version,
    about = "Phoenix: gRPC services on PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs all six services in this process, each on its own port, on the embedded PostgreSQL
    /// unless DATABASE_URL is set.
    Up {
        /// Port of the first service; the others follow in the order printed.
        #[arg(long, env = "PHOENIX_BASE_PORT", default_value_t = 50051)]
        base_port: u16,
        /// Address the services listen on.
        #[arg(long, env = "PHOENIX_LISTEN_IP", default_value = "127.0.0.1")]
        listen_ip: IpAddr,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Runs one service, as a Kubernetes pod does.
    Serve {
        /// directory, goals, missions, ledger, coordinator or conversations.
        #[arg(value_parser = service_names())]
        service: String,
        /// Address of the gRPC listener.
        #[arg(long, env = "PHOENIX_GRPC_ADDR", default_value = "0.0.0.0:50051")]
        grpc_addr: SocketAddr,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Runs every test of the workspace against one throwaway PostgreSQL.
    Test {
        /// Extra arguments for `cargo test`, e.g. `-p phoenix-directory` or `-- a_test_name`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Benchmarks a service; ends with one machine-readable line.
    Bench {
        #[command(subcommand)]
        service: BenchTarget,
    },
    /// Checks every invariant of a service against its database, prints each violation, and
    /// exits non-zero when there is one (the nightly reconciliation).
    Audit {
        /// The service to audit.
        #[arg(value_parser = ["ledger", "missions"])]
        service: String,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// The move off a legacy store: backfill, rebuild from events, compare, export (rollback).
    Legacy {
        #[command(subcommand)]
        store: LegacyTarget,
    },
    /// Loads a service's demo data through its API; running it again changes nothing.
    Seed {
        /// The service to seed.
        #[arg(value_parser = ["ledger"])]
        service: String,
        /// A running service to seed instead of one started here on the embedded database.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Imports a legacy export into a service, idempotently, with a validation report.
    Import {
        #[command(subcommand)]
        service: ImportTarget,
    },
    /// Manages a service's schema migrations (`all` for every service).
    Migrate {
        /// A service name, or `all`.
        #[arg(value_parser = migrate_targets())]
        service: String,
        #[command(subcommand)]
        action: MigrateAction,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

#[derive(Debug, Subcommand)]
enum BenchTarget {
    /// Single transfers over gRPC vs the same write straight through SQL, and batches.
    Ledger {
        #[command(flatten)]
        args: phoenix_ledger::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Heartbeats over gRPC vs the same rows through SQL, GetBoard latency, and the day close
    /// of every board.
    Missions {
        #[command(flatten)]
        args: phoenix_missions::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

#[derive(Debug, Subcommand)]
enum LegacyTarget {
    /// The missions v2 JSON store (`missions_v2_store.json`) and its event log.
    Missions {
        #[command(subcommand)]
        action: LegacyAction,
        /// A running missions service instead of one started here on the embedded database.
        #[arg(long, global = true)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

#[derive(Debug, Subcommand)]
enum LegacyAction {
    /// Copies every board of the JSON store into SQL, per board and idempotently; boards that
    /// break an invariant are quarantined with their reason.
    Backfill {
        /// The JSON store (default: the service's PHOENIX_MISSIONS_STORE_PATH).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Rebuilds heartbeats, progress and boss runs from an NDJSON log of past missions events.
    Rebuild {
        /// The NDJSON log.
        #[arg(long)]
        log: PathBuf,
    },
    /// Renders the boards of a season from the JSON store and from SQL and prints every
    /// difference; exits non-zero when there is one.
    Compare {
        /// The season.
        #[arg(long)]
        season: String,
        /// Users to compare (default: every board of the season in either store).
        #[arg(long = "user", value_name = "UUID")]
        users: Vec<String>,
        /// The JSON store (default: the service's PHOENIX_MISSIONS_STORE_PATH).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// The rollback: writes every board in SQL to a JSON store that MISSIONS_REPO=FILE reads.
    Export {
        /// The JSON store to write (replaced atomically).
        #[arg(long)]
        store: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ImportTarget {
    /// Firestore exports (JSON or NDJSON) of raw signals, campaigns and audit logs.
    Ledger {
        #[command(flatten)]
        args: phoenix_ledger::import_client::ImportArgs,
        /// A running ledger service instead of one started here on the embedded database.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Applies pending migrations, to head or up to and including VERSION.
    Up {
        version: Option<i64>,
        /// Print the SQL that would run, and run nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Reverts the last STEPS applied migrations (default 1), or all of them with --all.
    Down {
        #[arg(default_value_t = 1)]
        steps: usize,
        /// Revert every applied migration: the full rollback.
        #[arg(long, conflicts_with = "steps")]
        all: bool,
        /// Print the SQL that would run, and run nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Current version, head, pending count, and applied migrations whose file changed.
    Status,
    /// Every migration, with when it was applied.
    History,
    /// Creates the up/down pair of a new migration under migrations/<service>/.
    New {
        name: String,
        /// The project's migrations folder.
        #[arg(long, default_value = "migrations")]
        dir: PathBuf,
    },
    /// Drops the service's schema with all its data and migrates to head again.
    Reset {
        /// Must repeat the service name: there is no undo.
        #[arg(long)]
        confirm: Option<String>,
    },
}

fn services() -> [ServiceSpec; 6] {
    [
        phoenix_directory::spec(),
        phoenix_goals::spec(),
        phoenix_missions::spec(),
        phoenix_ledger::spec(),
        phoenix_coordinator::spec(),
        phoenix_conversations::spec(),
    ]
}

fn service_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(services().map(|s| s.name))
}

fn migrate_targets() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(services().iter().map(|s| s.name).chain(["all"]))
}

fn main() -> std::process::ExitCode {
    let cli: Cli = phoenix_runtime::config::parse_or_exit();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    phoenix_runtime::exit_code(result)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            base_port,
            listen_ip,
            runtime: mut config,
        } => {
            let _telemetry = phoenix_runtime::telemetry::init(&config.telemetry, "phoenix")?;
            let specs: Vec<(ServiceSpec, SocketAddr)> = services()
                .into_iter()
                .zip(base_port..)
                .map(|(spec, port)| (spec, SocketAddr::new(listen_ip, port)))
                .collect();
            for (spec, addr) in &specs {
                let host = if addr.ip().is_unspecified() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    addr.ip()
                };
                config.peers.set_url(
                    spec.name,
                    format!("http://{}", SocketAddr::new(host, addr.port())),
                );
            }
            phoenix_runtime::run_services(&specs, config, print_addresses).await
        }
        Command::Serve {
            service,
            grpc_addr,
            runtime: config,
        } => {
            let spec = find(&service)?;
            let _telemetry =
                phoenix_runtime::telemetry::init(&config.telemetry, &format!("phoenix-{service}"))?;
            phoenix_runtime::run_services(&[(spec, grpc_addr)], config, |_| {}).await
        }
        Command::Migrate {
            service,
            action,
            runtime: config,
        } => migrate(&service, action, config).await,
        Command::Test {
            cargo_args,
            runtime: config,
        } => test(&cargo_args, &config),
        Command::Bench {
            service: BenchTarget::Ledger { args, runtime },
        } => {
            let reached =
                Reached::start(phoenix_ledger::spec(), args.target.clone(), runtime).await?;
            let result =
                phoenix_ledger::bench::run(reached.channel.clone(), reached.pool.clone(), &args)
                    .await;
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        Command::Bench {
            service: BenchTarget::Missions { args, mut runtime },
        } => {
            // The day close is measured by moving the service's clock on, and by the one call
            // the benchmark times: the schedule is pushed out of the way.
            runtime.service_args.extend([
                "--clock=manual".to_owned(),
                "--day-close-interval=24h".to_owned(),
            ]);
            let reached =
                Reached::start(phoenix_missions::spec(), args.target.clone(), runtime).await?;
            let result = match reached.pool.clone() {
                Some(pool) => phoenix_missions::bench::run(&reached.url, pool, &args).await,
                None => Err(anyhow::anyhow!(
                    "loading the boards needs the database: set DATABASE_URL with --target"
                )),
            };
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        Command::Legacy {
            store:
                LegacyTarget::Missions {
                    action,
                    target,
                    runtime,
                },
        } => {
            let reached = Reached::start(phoenix_missions::spec(), target, runtime).await?;
            let local = reached
                .local
                .is_some()
                .then(|| reached.pool.clone())
                .flatten();
            let result = legacy_missions(reached.channel.clone(), local, action).await;
            reached.close().await;
            result
        }
        Command::Import {
            service:
                ImportTarget::Ledger {
                    args,
                    target,
                    runtime,
                },
        } => {
            let reached = Reached::start(phoenix_ledger::spec(), target, runtime).await?;
            let result = phoenix_ledger::import_client::run(reached.channel.clone(), args).await;
            reached.close().await;
            let summary = result?;
            anyhow::ensure!(
                summary.matches,
                "the validation report does not match the source: batch {} is {:?}",
                summary.batch_id,
                summary.status
            );
            Ok(())
        }
        Command::Audit {
            service,
            runtime: config,
        } if service == "missions" => {
            let database = Database::open(&config).await?;
            let result = async {
                let pool =
                    phoenix_runtime::server::connect_pool(&database.url, "missions", &config)
                        .await?;
                Ok::<_, anyhow::Error>(phoenix_missions::audit::run(&pool).await?)
            }
            .await;
            database.close().await;
            let report = result?;
            for violation in &report.violations {
                println!("{violation}");
            }
            anyhow::ensure!(
                report.violations.is_empty(),
                "{} violation(s) found in {} boards",
                report.violations.len(),
                report.boards
            );
            println!("no violation ({} boards)", report.boards);
            Ok(())
        }
        Command::Audit {
            service: _,
            runtime: config,
        } => {
            let database = Database::open(&config).await?;
            let result = async {
                let pool =
                    phoenix_runtime::server::connect_pool(&database.url, "ledger", &config).await?;
                phoenix_ledger::audit::run(&pool).await
            }
            .await;
            database.close().await;
            let report = result?;
            print!("{}", report.render());
            anyhow::ensure!(
                report.violations() == 0,
                "{} violation(s) found",
                report.violations()
            );
            println!("no violation");
            Ok(())
        }
        Command::Seed {
            service: _,
            target,
            runtime,
        } => {
            let reached = Reached::start(phoenix_ledger::spec(), target, runtime).await?;
            let result = phoenix_ledger::seed::run(reached.channel.clone()).await;
            reached.close().await;
            match result? {
                phoenix_ledger::seed::Seeded::Created {
                    tenant_id,
                    accounts,
                    transfers,
                } => println!(
                    "seeded tenant {:?} ({tenant_id}): {accounts} accounts, {transfers} transfers, a pending transfer, a policy, 3 inventory items with a reservation, 2 holdings",
                    phoenix_ledger::seed::DEMO_TENANT
                ),
                phoenix_ledger::seed::Seeded::AlreadyThere { tenant_id } => println!(
                    "tenant {:?} ({tenant_id}) is already seeded; nothing to do",
                    phoenix_ledger::seed::DEMO_TENANT
                ),
            }
            Ok(())
        }
    }
}

/// A service a command talks to: one already running (`--target`), or one started here, in
/// this process, on the embedded database (or DATABASE_URL). Either way, a pool on the
/// service's schema when a database is known, for what a command does below the API.
struct Reached {
    /// Where the service listens.
    url: String,
    channel: tonic::transport::Channel,
    pool: Option<sqlx::PgPool>,
    local: Option<(phoenix_runtime::RunningService, Database)>,
}

impl Reached {
    async fn start(
        spec: ServiceSpec,
        target: Option<String>,
        config: RuntimeConfig,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        if let Some(url) = target {
            let channel = tonic::transport::Channel::from_shared(url.clone())
                .with_context(|| format!("--target {url:?} is not a URL"))?
                .connect()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            let pool = match &config.database_url {
                Some(url) => {
                    Some(phoenix_runtime::server::connect_pool(url, spec.name, &config).await?)
                }
                None => None,
            };
            return Ok(Self {
                url,
                channel,
                pool,
                local: None,
            });
        }
        let database = Database::open(&config).await?;
        let started = async {
            let pool =
                phoenix_runtime::server::connect_pool(&database.url, spec.name, &config).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let running = phoenix_runtime::server::start(
                &spec,
                config.clone(),
                pool.clone(),
                listener,
                tokio_util::sync::CancellationToken::new(),
            )
            .await?;
            let url = format!("http://{}", running.addr);
            let channel = tonic::transport::Channel::from_shared(url.clone())?
                .connect()
                .await?;
            anyhow::Ok((url, channel, pool, running))
        }
        .await;
        match started {
            Ok((url, channel, pool, running)) => Ok(Self {
                url,
                channel,
                pool: Some(pool),
                local: Some((running, database)),
            }),
            Err(error) => {
                database.close().await;
                Err(error)
            }
        }
    }

    /// Stops what was started here.
    async fn close(self) {
        if let Some((running, database)) = self.local {
            if let Err(error) = running.shutdown().await {
                eprintln!("warning: the local service stopped with an error: {error:#}");
            }
            database.close().await;
        }
    }
}

/// The missions legacy-store tooling, through the MigrationService (so a running service, or
/// the one started here, does the work with its own settings).
async fn legacy_missions(
    channel: tonic::transport::Channel,
    local_pool: Option<sqlx::PgPool>,
    action: LegacyAction,
) -> anyhow::Result<()> {
    use phoenix_proto::missions::v1 as pb;
    let mut client = pb::migration_service_client::MigrationServiceClient::new(channel)
        .max_decoding_message_size(256 * 1024 * 1024);
    let path = |p: Option<PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
    let print_quarantined = |items: &[pb::Quarantined]| {
        for q in items {
            println!("quarantined {} user={} {}", q.location, q.user_id, q.reason);
        }
    };
    match action {
        // Here, the backfill runs in this process, with a progress bar over the boards.
        LegacyAction::Backfill { store } if local_pool.is_some() => {
            let pool = local_pool.expect("checked above");
            let settings = phoenix_missions::config::MissionsSettings::parse(&[])?;
            let store = store.unwrap_or(settings.store_path);
            let bar = progress_bar();
            let report = phoenix_missions::migration::backfill(
                &store,
                &phoenix_missions::store::sql::SqlBoards::new(pool),
                &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                },
            )
            .await;
            bar.finish_and_clear();
            let report = report?;
            for q in &report.quarantined {
                println!(
                    "quarantined {} user={} {}",
                    q.location,
                    q.user_id.map(|u| u.to_string()).unwrap_or_default(),
                    q.reason
                );
            }
            println!(
                "backfill: read={} inserted={} skipped={} quarantined={}",
                report.read,
                report.inserted,
                report.skipped,
                report.quarantined.len()
            );
        }
        LegacyAction::Backfill { store } => {
            let spinner = spinner("backfilling the JSON store into SQL");
            let report = client
                .backfill(pb::BackfillRequest {
                    store_path: path(store),
                })
                .await?
                .into_inner();
            spinner.finish_and_clear();
            print_quarantined(&report.quarantined);
            println!(
                "backfill: read={} inserted={} skipped={} quarantined={}",
                report.read,
                report.inserted,
                report.skipped,
                report.quarantined.len()
            );
        }
        LegacyAction::Rebuild { log } => {
            let spinner = spinner("replaying the event log");
            let report = client
                .rebuild_from_events(pb::RebuildFromEventsRequest {
                    log_path: log.display().to_string(),
                })
                .await?
                .into_inner();
            spinner.finish_and_clear();
            print_quarantined(&report.quarantined);
            println!(
                "rebuild: read={} applied={} already_applied={} quarantined={}",
                report.read,
                report.applied,
                report.already_applied,
                report.quarantined.len()
            );
        }
        LegacyAction::Compare {
            season,
            users,
            store,
        } => {
            let report = client
                .compare(pb::CompareRequest {
                    store_path: path(store),
                    season_id: season,
                    user_ids: users,
                })
                .await?
                .into_inner();
            for d in &report.differences {
                println!(
                    "user={} {}: file={} sql={}",
                    d.user_id, d.path, d.file_value, d.sql_value
                );
            }
            anyhow::ensure!(
                report.differences.is_empty(),
                "{} difference(s) in {} boards",
                report.differences.len(),
                report.compared
            );
            println!("compare: {} boards, no difference", report.compared);
        }
        LegacyAction::Export { store } => {
            let report = client
                .export(pb::ExportRequest {
                    store_path: store.display().to_string(),
                })
                .await?
                .into_inner();
            println!(
                "export: {} boards written to {}",
                report.boards,
                store.display()
            );
        }
    }
    Ok(())
}

/// A bar over the boards on a terminal (nothing otherwise).
fn progress_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} boards")
    {
        bar.set_style(style);
    }
    bar
}

/// A spinner on a terminal (nothing otherwise) while a long call runs.
fn spinner(message: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

/// One server for the whole run, shared by every test binary through the test kit.
fn test(cargo_args: &[String], config: &RuntimeConfig) -> anyhow::Result<()> {
    let server = EmbeddedPostgres::start_throwaway(&config.embedded)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The whole workspace unless the caller picked packages.
    let picked = cargo_args
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package") || a.starts_with("-p"));
    let mut command = std::process::Command::new(cargo);
    command.arg("test");
    if !picked {
        command.arg("--workspace");
    }
    let status = command
        .args(cargo_args)
        .env("PHOENIX_TEST_DATABASE_URL", server.url("postgres"))
        .status()
        .context("cannot run cargo test")?;
    server.stop();
    anyhow::ensure!(status.success(), "tests failed ({status})");
    Ok(())
}

fn find(name: &str) -> anyhow::Result<ServiceSpec> {
    services()
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no service named {name:?}"))
}

fn print_addresses(running: &[phoenix_runtime::RunningService]) {
    println!("\nPhoenix is up. Ctrl-C stops everything.\n");
    for service in running {
        let port = service.addr.port();
        println!(
            "  {:<14} localhost:{port:<6} grpcurl -plaintext localhost:{port} list",
            service.name
        );
    }
    if let Some(first) = running.first() {
        println!(
            "\n  health:        grpcurl -plaintext localhost:{} grpc.health.v1.Health/Check",
            first.addr.port()
        );
    }
    println!();
}

async fn migrate(target: &str, action: MigrateAction, config: RuntimeConfig) -> anyhow::Result<()> {
    let specs: Vec<ServiceSpec> = if target == "all" {
        services().to_vec()
    } else {
        vec![find(target)?]
    };
    if let MigrateAction::New { name, dir } = &action {
        anyhow::ensure!(
            target != "all",
            "`new` creates a migration for one service; name it"
        );
        let (up, down) = phoenix_runtime::migrate::new_migration(&dir.join(target), name)?;
        println!("created {}\ncreated {}", up.display(), down.display());
        return Ok(());
    }
    if let MigrateAction::Reset { confirm } = &action {
        anyhow::ensure!(
            confirm.as_deref() == Some(target) && target != "all",
            "reset drops every table and row of {target}; to go ahead, run again with --confirm {target}"
        );
    }
    // Migrations are the one command that logs to the terminal only on failure.
    let database = Database::open(&config).await?;
    let config = Arc::new(config);
    let result = async {
        for spec in &specs {
            let set = spec.migration_set()?;
            let pool =
                phoenix_runtime::server::connect_pool(&database.url, spec.name, &config).await?;
            let migrator = Migrator::new(&set, &pool);
            run_action(spec.name, &set, &migrator, &action).await?;
            pool.close().await;
        }
        anyhow::Ok(())
    }
    .await;
    database.close().await;
    result
}

async fn run_action(
    service: &str,
    set: &MigrationSet,
    migrator: &Migrator<'_>,
    action: &MigrateAction,
) -> anyhow::Result<()> {
    match action {
        MigrateAction::Up { version, dry_run } => {
            print_steps(service, &migrator.up(*version, *dry_run).await?, *dry_run)
        }
        MigrateAction::Down {
            steps,
            all,
            dry_run,
        } => {
            let steps = if *all { usize::MAX } else { *steps };
            print_steps(service, &migrator.down(steps, *dry_run).await?, *dry_run)
        }
        MigrateAction::Status => {
            let status = migrator.status().await?;
            let show = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |v| format!("{v:04}"));
            println!(
                "{service}: current {} · head {} · {} pending{}",
                show(status.current),
                show(status.head),
                status.pending,
                if status.drifted.is_empty() {
                    String::new()
                } else {
                    format!(" · CHANGED AFTER APPLY: {:?}", status.drifted)
                }
            );
        }
        MigrateAction::History => {
            println!("{service} ({} migrations)", set.migrations().len());
            for entry in migrator.history().await? {
                let applied = entry.applied_at.map_or_else(
                    || "pending".to_owned(),
                    |at| format!("applied {at} in {} ms", entry.execution_ms.unwrap_or(0)),
                );
                let drift = if entry.drifted {
                    "  (file changed after apply)"
                } else {
                    ""
                };
                println!("  {:04} {:<32} {applied}{drift}", entry.version, entry.name);
            }
        }
        MigrateAction::Reset { .. } => {
            let steps = migrator.reset().await?;
            println!(
                "{service}: schema dropped and migrated to head ({} migrations)",
                steps.len()
            );
        }
        MigrateAction::New { .. } => unreachable!("handled before connecting"),
    }
    Ok(())
}

fn print_steps(service: &str, steps: &[Step], dry_run: bool) {
    if steps.is_empty() {
        println!("{service}: nothing to do");
        return;
    }
    for step in steps {
        let arrow = if step.direction == Direction::Up {
            "up"
        } else {
            "down"
        };
        if dry_run {
            println!(
                "-- {service} {:04}_{} ({arrow}), not applied\n{}",
                step.version,
                step.name,
                step.sql.trim_end()
            );
        } else {
            println!("{service}: {arrow} {:04}_{}", step.version, step.name);
        }
    }
}
