//! `phoenix import <service>`: a legacy export into a service, with a validation report.

use clap::Subcommand;
use phoenix_runtime::RuntimeConfig;

use crate::reached::Reached;

#[derive(Debug, Subcommand)]
pub enum ImportTarget {
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
    let ImportTarget::Ledger {
        args,
        target,
        runtime,
    } = target;
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
