//! `phoenix legacy missions …`: the move off the legacy missions JSON store.

use std::path::PathBuf;

use clap::Subcommand;
use phoenix_runtime::RuntimeConfig;

use crate::progress;
use crate::reached::Reached;

#[derive(Debug, Subcommand)]
pub enum LegacyTarget {
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
    /// The legacy bot's threads-data.json and guest-memory.json (import and export are
    /// `phoenix import conversations` and `phoenix export conversations`).
    Conversations {
        #[command(subcommand)]
        action: ConversationsAction,
        /// A running conversations service instead of one started here (then DATABASE_URL too).
        #[arg(long, global = true)]
        target: Option<String>,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConversationsAction {
    /// Prints every difference between threads-data.json / guest-memory.json and the
    /// database, field by field; exits non-zero when there is one.
    Compare {
        #[command(flatten)]
        files: phoenix_conversations::ops::legacy::LegacyFiles,
    },
}

#[derive(Debug, Subcommand)]
pub enum LegacyAction {
    /// Copies every board of the JSON store into SQL, per board and idempotently; boards that
    /// break a rule are quarantined with their reason and the rest are copied. Exits non-zero
    /// when a board was quarantined, unless --allow-quarantine.
    Backfill {
        /// The JSON store (default: the service's PHOENIX_MISSIONS_STORE_PATH).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Exit 0 even when boards were quarantined (they are still listed).
        #[arg(long)]
        allow_quarantine: bool,
    },
    /// Rebuilds heartbeats, progress and boss runs from an NDJSON log of past missions events.
    /// Exits non-zero when an event was quarantined, unless --allow-quarantine.
    Rebuild {
        /// The NDJSON log.
        #[arg(long)]
        log: PathBuf,
        /// Exit 0 even when events were quarantined (they are still listed).
        #[arg(long)]
        allow_quarantine: bool,
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

pub async fn run(store: LegacyTarget) -> anyhow::Result<()> {
    let (action, target, mut runtime) = match store {
        LegacyTarget::Missions {
            action,
            target,
            runtime,
        } => (action, target, runtime),
        LegacyTarget::Conversations {
            action: ConversationsAction::Compare { files },
            target,
            runtime,
        } => {
            let action = crate::conversations::Action::Compare(files);
            return crate::conversations::run(action, target, runtime).await;
        }
    };
    if target.is_none() {
        // A quiet service: no day close may change a board while it is imported or compared.
        runtime
            .service_args
            .push("--scheduled-jobs=false".to_owned());
    }
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
            let user = if q.user_id.is_empty() {
                "(unreadable)"
            } else {
                &q.user_id
            };
            println!("quarantined {} user={user} {}", q.location, q.reason);
        }
    };
    match (action, local_pool) {
        // Here, the backfill runs in this process, with a progress bar over the boards.
        (
            LegacyAction::Backfill {
                store,
                allow_quarantine,
            },
            Some(pool),
        ) => {
            let settings = phoenix_missions::config::MissionsSettings::parse(&[])?;
            let store = store.unwrap_or(settings.store_path);
            let bar = progress::progress_bar();
            let report = phoenix_missions::app::migration::backfill(
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
                    q.user_id
                        .map_or_else(|| "(unreadable)".to_owned(), |u| u.to_string()),
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
            quarantine_allowed(report.quarantined.len(), "board", allow_quarantine)?;
        }
        (
            LegacyAction::Backfill {
                store,
                allow_quarantine,
            },
            None,
        ) => {
            let spinner = progress::spinner("backfilling the JSON store into SQL");
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
            quarantine_allowed(report.quarantined.len(), "board", allow_quarantine)?;
        }
        (
            LegacyAction::Rebuild {
                log,
                allow_quarantine,
            },
            _,
        ) => {
            let spinner = progress::spinner("replaying the event log");
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
            quarantine_allowed(report.quarantined.len(), "event", allow_quarantine)?;
        }
        (
            LegacyAction::Compare {
                season,
                users,
                store,
            },
            _,
        ) => {
            let report = client
                .compare(pb::CompareRequest {
                    store_path: path(store),
                    season_id: season,
                    user_ids: users,
                })
                .await?
                .into_inner();
            print_quarantined(&report.quarantined);
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
            println!(
                "compare: {} boards, no difference ({} malformed boards left out)",
                report.compared,
                report.quarantined.len()
            );
        }
        (LegacyAction::Export { store }, _) => {
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

/// The exit of a command that quarantined `count` records: an error unless none was or the
/// operator allowed it, so a script never mistakes a partial import for a whole one.
fn quarantine_allowed(count: usize, what: &str, allowed: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        count == 0 || allowed,
        "{count} {what}(s) quarantined (listed above); fix them and rerun, or pass \
         --allow-quarantine to accept the import without them"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarantine_fails_the_command_unless_allowed() {
        assert!(quarantine_allowed(0, "board", false).is_ok());
        assert!(quarantine_allowed(3, "board", true).is_ok());
        let error = quarantine_allowed(3, "board", false).unwrap_err();
        assert!(
            error.to_string().starts_with("3 board(s) quarantined"),
            "{error}"
        );
        assert!(error.to_string().contains("--allow-quarantine"));
    }

    #[test]
    fn backfill_and_rebuild_take_allow_quarantine() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            action: LegacyAction,
        }
        let cli = Cli::try_parse_from(["x", "backfill", "--store", "s.json", "--allow-quarantine"])
            .expect("parses");
        assert!(matches!(
            cli.action,
            LegacyAction::Backfill {
                allow_quarantine: true,
                ..
            }
        ));
        let cli = Cli::try_parse_from(["x", "rebuild", "--log", "l.ndjson"]).expect("parses");
        assert!(matches!(
            cli.action,
            LegacyAction::Rebuild {
                allow_quarantine: false,
                ..
            }
        ));
    }
}
