//! `phoenix`: run every service on one machine, run one as a pod would, manage migrations, and
//! the operator's tools (bench, audit, legacy moves, imports, seeds). One module per command;
//! the services come from the one registry, `phoenix_registry`.

mod audit;
mod bench;
mod bench_bus;
mod bench_sagas;
mod chaos;
mod conversations;
mod export;
mod import;
mod import_directory;
mod legacy;
mod migrate;
mod progress;
mod reached;
mod sagas;
mod seed;
mod test;
mod up;

use clap::{Parser, Subcommand};

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
    /// Runs every service in this process, each on its own port, on the embedded PostgreSQL
    /// unless DATABASE_URL is set.
    Up(up::UpArgs),
    /// Runs one service, as a Kubernetes pod does.
    Serve(up::ServeArgs),
    /// Runs every test of the workspace against one throwaway PostgreSQL.
    Test(test::TestArgs),
    /// Benchmarks a service; ends with one machine-readable line.
    Bench {
        #[command(subcommand)]
        service: bench::BenchTarget,
    },
    /// Checks every invariant of a service against its database, prints each violation, and
    /// exits non-zero when there is one (the nightly reconciliation).
    Audit(audit::AuditArgs),
    /// Proves a service survives faults and crashes: `phoenix chaos sagas` kills the coordinator
    /// with SIGKILL under load with faulting participants, then reconciles.
    Chaos {
        #[command(subcommand)]
        target: chaos::ChaosTarget,
    },
    /// The move off a legacy store: backfill, rebuild from events, compare, export (rollback).
    Legacy {
        #[command(subcommand)]
        store: legacy::LegacyTarget,
    },
    /// Loads a service's demo data through its API; running it again changes nothing.
    Seed(seed::SeedArgs),
    /// Imports a legacy export into a service, idempotently, with a validation report.
    Import {
        #[command(subcommand)]
        service: import::ImportTarget,
    },
    /// Manages a service's schema migrations (`all` for every service).
    Migrate(migrate::MigrateArgs),
    /// Exports a service's data to files: the goals event log to Parquet, a service's data
    /// back in its legacy format (the rollback).
    Export {
        #[command(subcommand)]
        service: export::ExportTarget,
    },
    /// The coordinator's sagas: list, show, retry a STUCK one, cancel a running one.
    Sagas(sagas::SagasArgs),
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
        Command::Up(args) => up::up(args).await,
        Command::Serve(args) => up::serve(args).await,
        Command::Test(args) => test::run(&args),
        Command::Bench { service } => bench::run(service).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Chaos { target } => chaos::run(target).await,
        Command::Legacy { store } => legacy::run(store).await,
        Command::Seed(args) => seed::run(args).await,
        Command::Import { service } => import::run(service).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Export { service } => export::run(service).await,
        Command::Sagas(args) => sagas::run(args).await,
    }
}

/// A clap parser that accepts the registered service names (and `extra`), listing them when
/// a name is unknown.
fn service_names(extra: &[&'static str]) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        phoenix_registry::names()
            .into_iter()
            .chain(extra.iter().copied()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str]) -> String {
        Cli::try_parse_from(args).expect_err("refused").to_string()
    }

    #[test]
    fn an_unknown_service_is_refused_with_the_known_ones() {
        let audit = refused(&["phoenix", "audit", "ledgr"]);
        assert!(
            audit.contains("ledger") && audit.contains("missions"),
            "{audit}"
        );
        assert!(audit.contains("goals"), "{audit}");
        assert!(
            audit.contains("coordinator"),
            "the coordinator's reconciliation is an audit: {audit}"
        );
        assert!(
            !audit.contains("narrative"),
            "narrative has no auditor: {audit}"
        );
        let serve = refused(&["phoenix", "serve", "nope"]);
        for name in phoenix_registry::names() {
            assert!(serve.contains(name), "{name} missing from: {serve}");
        }
        let migrate = refused(&["phoenix", "migrate", "nope", "status"]);
        assert!(migrate.contains("all"), "{migrate}");
    }

    #[test]
    fn sagas_subcommands_parse_and_refuse_an_unknown_state() {
        for args in [
            &[
                "phoenix", "sagas", "list", "--state", "stuck", "--type", "purchase",
            ][..],
            &[
                "phoenix",
                "sagas",
                "show",
                "0190c5c4-0000-7000-8000-000000000000",
            ],
            &[
                "phoenix",
                "sagas",
                "retry",
                "x",
                "--target",
                "http://127.0.0.1:50055",
            ],
            &["phoenix", "sagas", "cancel", "x"],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        let error = refused(&["phoenix", "sagas", "list", "--state", "lost"]);
        assert!(error.contains("stuck"), "{error}");
    }
}
