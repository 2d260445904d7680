//! `phoenix export <service>`: a service's data written back in a legacy format (the rollback).

use clap::Subcommand;
use phoenix_runtime::RuntimeConfig;

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
}

pub async fn run(target: ExportTarget) -> anyhow::Result<()> {
    let ExportTarget::Conversations {
        files,
        target,
        runtime,
    } = target;
    crate::conversations::run(crate::conversations::Action::Export(files), target, runtime).await
}
