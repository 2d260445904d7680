//! The missions use cases: each loads a board through the repository, asks the rules
//! (`domain::rules`) and writes through the repository, at the clock's time. The API, the
//! schedules (`jobs`), the `phoenix` command and the tests call these, never the API's
//! internals.
//!
//! - [`board`]: the board RPCs, every one a `Missions::change` of one board (or a read);
//! - [`catalog`]: the catalog the rules read, cached, and its upserts;
//! - [`analytics`]: the weekly views;
//! - [`migration`]: the tooling off the legacy JSON store (backfill, rebuild, compare, export)
//!   and the audit;
//! - [`clock`]: the time the rules judge by;
//! - [`tasks`]: goals' completed tasks (from the bus) taking linked bosses' shields down.

pub mod analytics;
pub mod board;
pub mod catalog;
pub mod clock;
pub mod levels;
pub mod migration;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use phoenix_directory_client::DirectoryClient;
use phoenix_runtime::Error;
use sqlx::PgPool;

use self::catalog::CatalogCache;
use self::clock::Clock;
use crate::config::{ClockKind, MissionsSettings};
use crate::domain::Refusal;
use crate::domain::board::{Board, BoardKey};
use crate::domain::catalog::Catalog;
use crate::domain::rules::{RandomIds, RuleSettings};
use crate::error::board_not_found;
use crate::store::Saved;
use crate::store::repo::Repository;
use crate::store::sql::SqlBoards;

/// The missions context: its boards, catalog, clock and rules.
#[derive(Clone)]
pub struct Missions {
    /// Where boards live (FILE, SQL or DUAL).
    repo: Arc<Repository>,
    /// The SQL side, which the migration tooling and analytics always use.
    sql: SqlBoards,
    pool: PgPool,
    catalog: CatalogCache,
    clock: Clock,
    rules: Arc<RuleSettings>,
    /// The legacy JSON store the migration tooling reads by default.
    store_path: PathBuf,
    /// Where CreateBoard resolves its user (existence, time zone); `None` when the directory
    /// is not configured, and then CreateBoard needs a time zone and checks no user.
    directory: Option<DirectoryClient>,
}

impl std::fmt::Debug for Missions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Missions")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A board as of `now`, with the catalog it was judged by: what an answer renders.
#[derive(Debug, Clone)]
pub struct Shown {
    pub board: Board,
    pub catalog: Arc<Catalog>,
    pub now: DateTime<Utc>,
}

impl Missions {
    /// The service as `settings` configure it, on `pool`. FILE and DUAL read the store file
    /// now, so a malformed store stops the start rather than failing the first request.
    pub fn open(settings: &MissionsSettings, pool: PgPool) -> Result<Self, Error> {
        Ok(Self {
            repo: Arc::new(Repository::open(settings, pool.clone())?),
            sql: SqlBoards::new(pool.clone()),
            catalog: CatalogCache::new(pool.clone()),
            pool,
            clock: match settings.clock {
                ClockKind::System => Clock::System,
                ClockKind::Manual => Clock::manual(Utc::now()),
            },
            rules: Arc::new(settings.rules()),
            store_path: settings.store_path.clone(),
            directory: None,
        })
    }

    /// The service resolving users through `directory`.
    #[must_use]
    pub fn with_directory(mut self, directory: DirectoryClient) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The rules' tunables.
    pub fn rules(&self) -> &RuleSettings {
        &self.rules
    }

    /// The clock the rules judge by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The catalog as the rules read it.
    pub fn catalog(&self) -> &CatalogCache {
        &self.catalog
    }

    /// Applies `rule` to the board of `key` at the clock's now, under the board's lock, and saves
    /// the board when the rule changed it. A refusal writes nothing. Returns the board after the
    /// rule, the rule's answer and the catalog and time it was judged by.
    pub(crate) async fn change<T, R>(&self, key: &BoardKey, rule: R) -> Result<(Shown, T), Error>
    where
        T: Send,
        R: FnOnce(&mut Board, &Catalog, &RuleSettings, DateTime<Utc>) -> Result<T, Refusal> + Send,
    {
        let catalog = self.catalog.get().await?;
        let clock = self.clock.clone();
        let settings = self.rules.clone();
        let judged_by = catalog.clone();
        let (board, answer, now) = self
            .repo
            .update(key, move |current| {
                // Read under the board's lock: a call that waited behind a day close judges at
                // a time after it, never on a day that closed while it waited.
                let now = clock.now();
                let mut board = current.ok_or_else(|| board_not_found(key))?;
                let before = board.clone();
                let answer = rule(&mut board, &judged_by, &settings, now)?;
                Ok(if board == before {
                    Saved::Keep((board, answer, now))
                } else {
                    Saved::Write(board.clone(), (board, answer, now))
                })
            })
            .await?;
        Ok((
            Shown {
                board,
                catalog,
                now,
            },
            answer,
        ))
    }
}

/// New ids for the rules.
pub(crate) fn ids() -> RandomIds {
    RandomIds
}
