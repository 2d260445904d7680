//! The missions service's own settings, read from the environment next to the runtime's.

use std::path::PathBuf;

use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Parser, ValueEnum};
use phoenix_runtime::config::positive_duration;

use crate::domain::rules::RuleSettings;

/// Where boards live (`MISSIONS_REPO`); see the module `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RepositoryKind {
    /// The legacy JSON store only.
    File,
    /// PostgreSQL only.
    Sql,
    /// Both, reading from the primary and recording every divergence.
    Dual,
}

/// The clock the rules judge by (`PHOENIX_MISSIONS_CLOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// The system clock: production.
    System,
    /// A clock that only moves through the ClockService: tests, staging, support.
    Manual,
}

/// The store DUAL reads from and answers with (`PHOENIX_MISSIONS_DUAL_PRIMARY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DualPrimary {
    File,
    Sql,
}

#[derive(Debug, Clone, Parser)]
#[command(no_binary_name = true)]
pub struct MissionsSettings {
    /// Where boards live: FILE (the legacy JSON store), SQL, or DUAL (both, during the migration).
    #[arg(long, env = "MISSIONS_REPO", value_enum, ignore_case = true, default_value_t = RepositoryKind::Sql)]
    pub repository: RepositoryKind,
    /// In DUAL, the store read and trusted. FILE until the SQL copy has been validated: the
    /// legacy file stays the truth while both are written.
    #[arg(long, env = "PHOENIX_MISSIONS_DUAL_PRIMARY", value_enum, ignore_case = true, default_value_t = DualPrimary::File)]
    pub dual_primary: DualPrimary,
    /// The legacy JSON store (FILE and DUAL, and what the migration tooling reads when a call
    /// names no store). Empty: none; FILE and DUAL then refuse to start.
    #[arg(
        long,
        env = "PHOENIX_MISSIONS_STORE_PATH",
        default_value = ".phoenix/missions_v2_store.json",
        value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from)
    )]
    pub store_path: PathBuf,
    /// The clock the rules judge by; `manual` also serves the ClockService.
    #[arg(long, env = "PHOENIX_MISSIONS_CLOCK", value_enum, ignore_case = true, default_value_t = ClockKind::System)]
    pub clock: ClockKind,
    /// Whether this process runs the scheduled jobs that change boards (the batch day close,
    /// the analytics refresh). `false` for a quiet service: the `phoenix legacy missions`
    /// commands start theirs so, so no day close changes a board while it is imported.
    #[arg(long, env = "PHOENIX_MISSIONS_SCHEDULED_JOBS", default_value_t = true, action = clap::ArgAction::Set)]
    pub scheduled_jobs: bool,
    /// How often the boards whose local day ended get their day closed.
    #[arg(long, env = "PHOENIX_MISSIONS_DAY_CLOSE_INTERVAL", default_value = "60s", value_parser = positive_duration)]
    pub day_close_interval: Duration,
    /// How often the analytics views are refreshed (CONCURRENTLY).
    #[arg(long, env = "PHOENIX_MISSIONS_ANALYTICS_REFRESH_INTERVAL", default_value = "1h", value_parser = positive_duration)]
    pub analytics_refresh_interval: Duration,
    /// How long a slot rests after a claim or a failure.
    #[arg(long, env = "PHOENIX_MISSIONS_COOLDOWN", default_value = "24h", value_parser = positive_duration)]
    pub cooldown: Duration,
}

impl MissionsSettings {
    /// The settings from `args` (`--name=value`, what tests and embedding programs pass), then
    /// `MISSIONS_REPO` and `PHOENIX_MISSIONS_*`, then the defaults.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        Self::try_parse_from(args).map_err(|e| anyhow::anyhow!("missions settings: {e}"))
    }

    /// The rules' tunables these settings set.
    pub fn rules(&self) -> RuleSettings {
        RuleSettings {
            cooldown: chrono::Duration::from_std(self.cooldown)
                .unwrap_or(chrono::Duration::hours(24)),
            ..RuleSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_read_in_any_case() {
        let settings = MissionsSettings::try_parse_from([
            "--repository",
            "DUAL",
            "--dual-primary",
            "Sql",
            "--store-path",
            "/var/lib/missions/store.json",
        ])
        .unwrap();
        assert_eq!(settings.repository, RepositoryKind::Dual);
        assert_eq!(settings.dual_primary, DualPrimary::Sql);
        assert_eq!(
            settings.store_path,
            PathBuf::from("/var/lib/missions/store.json")
        );
    }

    #[test]
    fn an_unknown_repository_is_refused() {
        let error = MissionsSettings::try_parse_from(["--repository", "BOTH"]).unwrap_err();
        assert!(error.to_string().contains("BOTH"), "{error}");
    }
}
