//! The missions service's own settings, read from the environment next to the runtime's.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

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
    /// The legacy JSON store (FILE and DUAL).
    #[arg(
        long,
        env = "PHOENIX_MISSIONS_STORE_PATH",
        default_value = ".phoenix/missions_v2_store.json"
    )]
    pub store_path: PathBuf,
}

impl MissionsSettings {
    /// The settings from `MISSIONS_REPO` and `PHOENIX_MISSIONS_*`, defaults for the rest.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::try_parse_from(std::iter::empty::<String>())
            .map_err(|e| anyhow::anyhow!("missions settings: {e}"))
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
