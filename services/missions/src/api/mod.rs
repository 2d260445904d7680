//! The gRPC face of the missions service: proto ⇄ domain and validation, nothing else. One
//! module per tonic service; this one holds what they share.

pub mod analytics;
pub mod board;
pub mod catalog;
pub mod clock;
pub mod migration;

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use phoenix_runtime::{Violations, auth};
use tonic::Request;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::Refusal;
use crate::domain::board::{Board, BoardKey};
use crate::domain::catalog::Catalog;
use crate::domain::rules::{RandomIds, RuleSettings};
use crate::error::{DOMAIN, MissionsError};
use crate::store::Saved;
use crate::store::repo::Repository;
use crate::store::sql::SqlBoards;

/// Role that may edit the catalog, run the migration tooling and move a manual clock when
/// authentication is on.
pub const ADMIN_ROLE: &str = "missions-admin";

/// What every service of the missions context needs.
#[derive(Clone)]
pub struct Missions {
    /// Where boards live (FILE, SQL or DUAL).
    pub repo: Arc<Repository>,
    /// The SQL side, which the migration tooling and analytics always use.
    pub sql: SqlBoards,
    pub pool: sqlx::PgPool,
    pub catalog: CatalogCache,
    pub clock: Clock,
    pub rules: Arc<RuleSettings>,
    /// The legacy JSON store the migration tooling reads by default.
    pub store_path: std::path::PathBuf,
}

impl std::fmt::Debug for Missions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Missions")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The catalog as the rules read it: loaded on first use (after loading the default catalog
/// into an empty database), replaced after every upsert here, and reloaded on a schedule so
/// upserts made through another replica show up too.
#[derive(Debug, Clone)]
pub struct CatalogCache {
    pool: sqlx::PgPool,
    current: Arc<RwLock<Option<Arc<Catalog>>>>,
    /// Set once the default catalog has been loaded into an empty database (or found not
    /// needed), before the first read of this process.
    defaults: Arc<tokio::sync::OnceCell<()>>,
}

impl CatalogCache {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            current: Arc::default(),
            defaults: Arc::default(),
        }
    }

    pub async fn get(&self) -> Result<Arc<Catalog>, MissionsError> {
        if let Some(catalog) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(catalog);
        }
        self.reload().await
    }

    pub async fn reload(&self) -> Result<Arc<Catalog>, MissionsError> {
        self.defaults
            .get_or_try_init(|| async {
                crate::store::catalog::ensure_default(&self.pool).await?;
                Ok::<_, MissionsError>(())
            })
            .await?;
        let catalog = Arc::new(crate::store::catalog::load(&self.pool).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(catalog.clone());
        Ok(catalog)
    }
}

impl Missions {
    /// Applies `rule` to the board of `key` at the clock's now, under the board's lock, and saves
    /// the board when the rule changed it. A refusal writes nothing. Returns the board after the
    /// rule and the rule's answer.
    pub async fn change<T, R>(
        &self,
        key: &BoardKey,
        rule: R,
    ) -> Result<(Board, T, DateTime<Utc>), MissionsError>
    where
        T: Send,
        R: FnOnce(&mut Board, &Catalog, &RuleSettings, DateTime<Utc>) -> Result<T, Refusal> + Send,
    {
        let catalog = self.catalog.get().await?;
        let clock = self.clock.clone();
        let settings = self.rules.clone();
        let (board, answer, now) = self
            .repo
            .update(key, move |current| {
                // Read under the board's lock: a call that waited behind a day close judges at
                // a time after it, never on a day that closed while it waited.
                let now = clock.now();
                let mut board = current.ok_or_else(|| board_not_found(key))?;
                let before = board.clone();
                let answer = rule(&mut board, &catalog, &settings, now)?;
                Ok(if board == before {
                    Saved::Keep((board, answer, now))
                } else {
                    Saved::Write(board.clone(), (board, answer, now))
                })
            })
            .await?;
        Ok((board, answer, now))
    }
}

/// New ids for the rules.
pub fn ids() -> RandomIds {
    RandomIds
}

pub fn board_not_found(key: &BoardKey) -> MissionsError {
    Refusal::not_found(
        "BOARD_NOT_FOUND",
        format!(
            "user {} has no board in season {:?}; open it with CreateBoard",
            key.user_id, key.season_id
        ),
    )
    .with("user_id", key.user_id)
    .with("season_id", &key.season_id)
    .into()
}

/// With authentication on, PERMISSION_DENIED unless the caller has the admin role.
pub fn require_admin<T>(request: &Request<T>) -> Result<(), MissionsError> {
    match auth::caller(request) {
        Some(caller) => caller
            .require_role(ADMIN_ROLE)
            .map_err(MissionsError::Denied),
        None => Ok(()),
    }
}

/// Collects the bad fields of one request into one INVALID_ARGUMENT: the runtime's
/// [`Violations`] with the missions fields (ids, seasons, time zones) on top.
#[derive(Debug, Default)]
pub struct Fields(Violations);

impl Fields {
    pub fn uuid(&mut self, field: &str, value: &str) -> Uuid {
        self.0
            .parse(field, value, phoenix_runtime::error::parse_uuid)
            .unwrap_or_else(Uuid::nil)
    }

    pub fn season(&mut self, value: &str) -> String {
        let valid = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        self.check(
            valid,
            "season_id",
            "must be 1–64 characters: letters, digits, '-', '_' or '.'",
        );
        value.to_owned()
    }

    pub fn time_zone(&mut self, value: &str) -> Tz {
        value.parse::<Tz>().unwrap_or_else(|_| {
            self.add(
                "time_zone",
                &format!("must be an IANA time zone such as Europe/Madrid, got {value:?}"),
            );
            Tz::UTC
        })
    }

    pub fn board_key(&mut self, user_id: &str, season_id: &str) -> BoardKey {
        BoardKey {
            user_id: self.uuid("user_id", user_id),
            season_id: self.season(season_id),
        }
    }

    pub fn add(&mut self, field: &str, description: &str) {
        self.0.add(field, description);
    }

    pub fn check(&mut self, valid: bool, field: &str, description: &str) {
        self.0.check(valid, field, description);
    }

    /// Ok when every field was valid.
    pub fn done(self) -> Result<(), MissionsError> {
        self.0.into_result(DOMAIN).map_err(MissionsError::Invalid)
    }
}
