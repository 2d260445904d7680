//! `phoenix import directory <users.ndjson>`: the legacy bot's users, with a progress bar,
//! counts and a quarantine report.

use phoenix_directory::ops::import::{self, ImportArgs};
use phoenix_runtime::RuntimeConfig;
use tokio_util::sync::CancellationToken;

use crate::reached::Reached;

pub async fn run(
    args: ImportArgs,
    target: Option<String>,
    runtime: RuntimeConfig,
) -> anyhow::Result<()> {
    let reached = Reached::start(phoenix_directory::spec(), target, runtime).await?;
    let result = async {
        let pool = reached.pool.clone().ok_or_else(|| {
            anyhow::anyhow!("importing needs the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target")
        })?;
        let shutdown = CancellationToken::new();
        let directory = phoenix_directory::app::Directory::new(pool, shutdown.clone());
        let report = args.quarantine.clone().unwrap_or_else(|| {
            let mut name = args.file.clone().into_os_string();
            name.push(".quarantine.ndjson");
            name.into()
        });
        let bar = crate::progress::progress_bar_of("lines");
        let summary = import::run(&directory, &args.file, &report, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
        bar.finish_and_clear();
        // Positions for what was imported, before the sequencer stops with the command.
        let _ = directory.sequence_events().await;
        shutdown.cancel();
        let summary = summary?;
        for entry in &summary.quarantine {
            eprintln!(
                "quarantined: line {} field {:?} rule {}: {}",
                entry.line, entry.field, entry.rule, entry.message
            );
        }
        eprintln!("quarantine report: {}", report.display());
        println!("{}", summary.line());
        anyhow::Ok(())
    }
    .await;
    reached.close().await;
    result
}
