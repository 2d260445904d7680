//! `phoenix import <service>`: a legacy export into a service, with a validation report.

use clap::Subcommand;
use phoenix_runtime::RuntimeConfig;

use crate::reached::Reached;

#[derive(Debug, Subcommand)]
pub enum ImportTarget {
    /// The legacy bot's users (NDJSON), once per Telegram id, with a quarantine report.
    Directory {
        #[command(flatten)]
        args: phoenix_directory::ops::import::ImportArgs,
        /// A running directory service instead of one started here (then DATABASE_URL too).
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// The legacy bot's threads-data.json and guest-memory.json, merged per number, once per
    /// phone, with a quarantine report.
    Conversations {
        #[command(flatten)]
        args: phoenix_conversations::ops::legacy::ImportArgs,
        /// A running conversations service instead of one started here (then DATABASE_URL too).
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
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

pub async fn run(target: ImportTarget) -> anyhow::Result<()> {
    let (args, target, runtime) = match target {
        ImportTarget::Directory {
            args,
            target,
            runtime,
        } => return crate::import_directory::run(args, target, runtime).await,
        ImportTarget::Conversations {
            args,
            target,
            runtime,
        } => {
            let action = crate::conversations::Action::Import(args);
            return crate::conversations::run(action, target, runtime).await;
        }
        ImportTarget::Ledger {
            args,
            target,
            runtime,
        } => (args, target, runtime),
    };
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
