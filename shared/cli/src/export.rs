//! `phoenix export <what>`: a service's data written out: the goals event log to Parquet for
//! analytics, or a service's data back in a legacy format (the rollback).

use clap::Subcommand;
use phoenix_runtime::migrate::Migrator;
use phoenix_runtime::{Database, RuntimeConfig};

#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// threads-data.json and guest-memory.json, as the legacy bot reads them.
    Conversations {
        #[command(flatten)]
        files: phoenix_conversations::ops::legacy::LegacyFiles,
        /// A running conversations service instead of one started here (then DATABASE_URL too).
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// The goals event log to Parquet, one folder per day; a rerun writes only new events.
    GoalsEvents {
        #[command(flatten)]
        args: phoenix_goals::ops::export::ExportArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

pub async fn run(target: ExportTarget) -> anyhow::Result<()> {
    match target {
        ExportTarget::Conversations {
            files,
            target,
            runtime,
        } => {
            crate::conversations::run(crate::conversations::Action::Export(files), target, runtime)
                .await
        }
        ExportTarget::GoalsEvents { args, runtime } => goals_events(&args, &runtime).await,
    }
}

async fn goals_events(
    args: &phoenix_goals::ops::export::ExportArgs,
    runtime: &RuntimeConfig,
) -> anyhow::Result<()> {
    let spec = phoenix_goals::spec();
    let database = Database::open_for(runtime, &[spec.name]).await?;
    let result = async {
        let pool = database.connect(spec.name, runtime).await?;
        let set = spec.migration_set()?;
        let status = Migrator::new(&set, &pool).status().await?;
        anyhow::ensure!(
            status.pending == 0,
            "the goals schema has {} pending migration(s): run `phoenix migrate goals up` first",
            status.pending
        );
        let report = phoenix_goals::ops::export::run(&pool, args).await;
        pool.close().await;
        report
    }
    .await;
    database.close().await;
    let report = result?;
    for file in &report.files {
        println!("wrote {file}");
    }
    println!("{}", report.line());
    Ok(())
}
