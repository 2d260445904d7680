//! `phoenix migrate <service|all> <action>`: a service's schema migrations.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use phoenix_runtime::migrate::{Direction, MigrationSet, Migrator, Step};
use phoenix_runtime::{Database, RuntimeConfig, ServiceSpec};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// A service name, or `all`.
    #[arg(value_parser = crate::service_names(&["all"]))]
    service: String,
    #[command(subcommand)]
    action: MigrateAction,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
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
    /// Moves to VERSION in whichever direction it lies: applies the pending migrations up to
    /// it, or reverts every applied one after it (0: all of them).
    To {
        version: i64,
        /// Print the SQL that would run, and run nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Current version, head, pending count, and applied migrations whose file changed.
    #[command(alias = "current")]
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

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let MigrateArgs {
        service: target,
        action,
        runtime: config,
    } = args;
    let target = target.as_str();
    let specs: Vec<ServiceSpec> = if target == "all" {
        phoenix_registry::specs()
    } else {
        vec![(phoenix_registry::find(target)?.spec)()]
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
    if let MigrateAction::To { version, .. } = &action {
        anyhow::ensure!(
            target != "all",
            "versions are per service: name the one to move to {version}"
        );
    }
    if let MigrateAction::Reset { confirm } = &action {
        anyhow::ensure!(
            confirm.as_deref() == Some(target) && target != "all",
            "reset drops every table and row of {target}; to go ahead, run again with --confirm {target}"
        );
    }
    // Migrations are the one command that logs to the terminal only on failure.
    let names: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
    let database = Database::open_for(&config, &names).await?;
    let config = Arc::new(config);
    let result = async {
        for spec in &specs {
            let set = spec.migration_set()?;
            let pool = database.connect(spec.name, &config).await?;
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
        MigrateAction::To { version, dry_run } => {
            print_steps(service, &migrator.to(*version, *dry_run).await?, *dry_run)
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
        MigrateAction::New { .. } => anyhow::bail!("`new` writes files and needs no database"),
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
