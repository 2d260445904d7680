//! The conversations legacy files from the command line: `phoenix import conversations`,
//! `phoenix export conversations` and `phoenix legacy conversations compare`. Each runs the
//! use cases on the service's database, beside a service started here (or DATABASE_URL with
//! `--target`).

use phoenix_conversations::app::Conversations;
use phoenix_conversations::ops::legacy::{self, ImportArgs, LegacyFiles};
use phoenix_runtime::RuntimeConfig;
use tokio_util::sync::CancellationToken;

use crate::reached::Reached;

/// What is done with the files.
pub enum Action {
    Import(ImportArgs),
    Export(LegacyFiles),
    Compare(LegacyFiles),
}

pub async fn run(
    action: Action,
    target: Option<String>,
    runtime: RuntimeConfig,
) -> anyhow::Result<()> {
    let reached = Reached::start(phoenix_conversations::spec(), target, runtime).await?;
    let result = async {
        let pool = reached.pool.clone().ok_or_else(|| {
            anyhow::anyhow!("the legacy files need the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target")
        })?;
        let shutdown = CancellationToken::new();
        let conversations = Conversations::new(pool, shutdown.clone());
        let result = act(&conversations, action).await;
        // Positions for what was imported, before the sequencer stops with the command.
        let _ = conversations.sequence_events().await;
        shutdown.cancel();
        result
    }
    .await;
    reached.close().await;
    result
}

async fn act(conversations: &Conversations, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Import(args) => {
            let report = args.quarantine.clone().unwrap_or_else(|| {
                let mut name = args.files.guests.clone().into_os_string();
                name.push(".quarantine.ndjson");
                name.into()
            });
            let bar = crate::progress::progress_bar_of("contacts");
            let summary = legacy::import(conversations, &args, &report, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
            bar.finish_and_clear();
            let summary = summary?;
            for r in &summary.quarantine {
                eprintln!(
                    "quarantined: {} key {} field {:?} rule {}: {}",
                    r.file,
                    phoenix_runtime::quote(&r.key),
                    r.field,
                    r.rule,
                    r.message
                );
            }
            eprintln!("quarantine report: {}", report.display());
            println!("{}", summary.line());
            anyhow::ensure!(
                summary.contacts > 0 || summary.quarantine.is_empty(),
                "nothing was imported: a file cannot be read (see the report)"
            );
            Ok(())
        }
        Action::Export(files) => {
            println!("{}", legacy::export(conversations, &files).await?.line());
            Ok(())
        }
        Action::Compare(files) => {
            let comparison = legacy::compare(conversations, &files).await?;
            for difference in &comparison.differences {
                println!("difference: {difference}");
            }
            for (file, key) in &comparison.quarantined {
                println!(
                    "quarantined (not compared): {file} {}",
                    phoenix_runtime::quote(key)
                );
            }
            println!("{}", comparison.line());
            anyhow::ensure!(
                comparison.differences.is_empty(),
                "the files and the database differ ({} differences)",
                comparison.differences.len()
            );
            Ok(())
        }
    }
}
