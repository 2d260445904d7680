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
use phoenix_runtime::{Error, Violations};

use crate::clock::Clock;
use crate::domain::Refusal;
use crate::domain::board::{Board, BoardKey};
use crate::domain::catalog::Catalog;
use crate::domain::rules::{RandomIds, RuleSettings};
use crate::error::board_not_found;
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

    pub async fn get(&self) -> Result<Arc<Catalog>, Error> {
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

    pub async fn reload(&self) -> Result<Arc<Catalog>, Error> {
        self.defaults
            .get_or_try_init(|| async {
                crate::store::catalog::ensure_default(&self.pool).await?;
                Ok::<_, Error>(())
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
    ) -> Result<(Board, T, DateTime<Utc>), Error>
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
                let mut board = current.ok_or_else(|| Error::from(board_not_found(key)))?;
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

/// Longest season id, in bytes.
const MAX_SEASON_BYTES: usize = 64;

/// A season id: 1–64 letters, digits, '-', '_' or '.'.
pub fn season(violations: &mut Violations, value: &str) -> String {
    const FIELD: &str = "season_id";
    if value.is_empty() {
        violations.add(
            FIELD,
            "REQUIRED",
            "is required: a season id such as 2026-S4",
        );
    } else {
        let valid = value.len() <= MAX_SEASON_BYTES
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        violations.check(
            valid,
            FIELD,
            "INVALID_SEASON",
            "must be 1–64 characters: letters, digits, '-', '_' or '.'",
        );
    }
    value.to_owned()
}

/// A board's key: its user and season.
pub fn board_key(violations: &mut Violations, user_id: &str, season_id: &str) -> BoardKey {
    BoardKey {
        user_id: violations.uuid("user_id", user_id),
        season_id: season(violations, season_id),
    }
}

/// The IANA zone of `time_zone` (UTC stands in for a bad one until `finish()`).
pub fn time_zone(violations: &mut Violations, value: &str) -> Tz {
    violations.time_zone("time_zone", value).unwrap_or(Tz::UTC)
}

/// Free text, trimmed: required unless `required` is false, at most `max_chars` characters.
/// Line breaks and tabs are allowed (descriptions, proofs), unlike `Violations::text`.
pub fn free_text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    max_chars: usize,
    required: bool,
) -> String {
    let value = value.trim();
    let chars = value.chars().count();
    if required && value.is_empty() {
        violations.add(field, "REQUIRED", "is required");
    } else if chars > max_chars {
        violations.add(
            field,
            "TOO_LONG",
            format!("must be at most {max_chars} characters, got {chars}"),
        );
    }
    value.to_owned()
}

/// A field a `Violations` helper decoded, after `finish()` accepted the request: the helpers
/// answer `None` only with a violation, so this never fails; if it did, it says which field.
pub fn validated<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| {
        Error::invariant(
            "VALIDATED_FIELD_MISSING",
            format!("{field} passed validation without a value"),
        )
    })
}
