//! The boards repository the service talks to, chosen by `MISSIONS_REPO` (FILE, SQL or DUAL)
//! without the rules knowing which: every variant offers the calls listed in the module
//! `store`.
//!
//! DUAL is the migration's bridge: every write goes to both stores. The primary
//! (`PHOENIX_MISSIONS_DUAL_PRIMARY`) runs the change and its answer is the caller's; the result
//! is then copied to the secondary with `put`. The secondary's previous board must equal the
//! primary's previous board; when it does not, or when the secondary write fails, that is a
//! divergence, recorded three ways (a warning log line, `missions_divergences_total{kind}` and a
//! `missions_v2_divergences` row) and never failing the call:
//! - `missing_row`: the primary had the board, the secondary did not;
//! - `extra_row`: the secondary had a board the primary did not;
//! - `content`: both had it, with different content (the detail lists the differing paths);
//! - `secondary_write_failed`: the copy could not be written (the detail has the error).

use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::PgPool;
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use super::file::FileBoards;
use super::sql::SqlBoards;
use super::{DueBoards, Saved};
use crate::config::{DualPrimary, MissionsSettings, RepositoryKind};
use crate::domain::board::{Board, BoardKey};
use crate::domain::diff::diff_boards;
use crate::metrics;

pub enum Repository {
    File(FileBoards),
    Sql(SqlBoards),
    Dual(Dual),
}

impl Repository {
    /// The repository the settings name; FILE and DUAL read the store file now, so a malformed
    /// store stops the service at start rather than at the first request.
    pub fn open(settings: &MissionsSettings, pool: PgPool) -> Result<Self, Error> {
        if settings.repository != RepositoryKind::Sql && settings.store_path.as_os_str().is_empty()
        {
            return Err(crate::error::path_required("store_path").into());
        }
        Ok(match settings.repository {
            RepositoryKind::File => Self::File(FileBoards::open(&settings.store_path)?),
            RepositoryKind::Sql => Self::Sql(SqlBoards::new(pool)),
            RepositoryKind::Dual => Self::Dual(Dual::new(
                FileBoards::open(&settings.store_path)?,
                SqlBoards::new(pool),
                settings.dual_primary,
            )),
        })
    }

    pub async fn load(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        match self {
            Self::File(file) => file.load(key).await,
            Self::Sql(sql) => sql.load(key).await,
            Self::Dual(dual) => dual.load(key).await,
        }
    }

    pub async fn keys_of_user(&self, user_id: Uuid) -> Result<Vec<BoardKey>, Error> {
        match self {
            Self::File(file) => file.keys_of_user(user_id).await,
            Self::Sql(sql) => sql.keys_of_user(user_id).await,
            Self::Dual(dual) => dual.keys_of_user(user_id).await,
        }
    }

    pub async fn keys(&self, season: Option<&str>) -> Result<Vec<BoardKey>, Error> {
        match self {
            Self::File(file) => file.keys(season).await,
            Self::Sql(sql) => sql.keys(season).await,
            Self::Dual(dual) => dual.keys(season).await,
        }
    }

    pub async fn update<T, F>(&self, key: &BoardKey, change: F) -> Result<T, Error>
    where
        F: FnOnce(Option<Board>) -> Result<Saved<T>, Error> + Send,
        T: Send,
    {
        match self {
            Self::File(file) => file.update(key, change).await,
            Self::Sql(sql) => sql.update(key, change).await,
            Self::Dual(dual) => dual.update(key, change).await,
        }
    }

    pub async fn update_due<T, F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        skip: &[BoardKey],
        change: F,
    ) -> Result<DueBoards<T>, Error>
    where
        F: FnMut(&mut Board) -> Option<T> + Send,
        T: Send,
    {
        match self {
            Self::File(file) => file.update_due(now, limit, skip, change).await,
            Self::Sql(sql) => sql.update_due(now, limit, skip, change).await,
            Self::Dual(dual) => dual.update_due(now, limit, skip, change).await,
        }
    }

    pub async fn put(&self, board: &Board) -> Result<Option<Board>, Error> {
        match self {
            Self::File(file) => file.put(board).await,
            Self::Sql(sql) => sql.put(board).await,
            Self::Dual(dual) => dual.put(board).await,
        }
    }

    pub async fn insert_if_absent(&self, board: &Board) -> Result<bool, Error> {
        match self {
            Self::File(file) => file.insert_if_absent(board).await,
            Self::Sql(sql) => sql.insert_if_absent(board).await,
            Self::Dual(dual) => dual.insert_if_absent(board).await,
        }
    }
}

/// Both stores; see the module doc.
pub struct Dual {
    file: FileBoards,
    sql: SqlBoards,
    primary: DualPrimary,
    locks: DualLocks,
}

/// Each store serializes its own updates, but a DUAL write is two steps (primary, then
/// secondary); without a lock around both, two updates of one board could reach the stores in
/// different orders and leave them different for good. Updates of one board take its stripe
/// (boards sharing a stripe merely wait for each other); a day-close batch, whose boards are
/// only known once the primary has picked them, takes the whole repository.
struct DualLocks {
    batch: RwLock<()>,
    stripes: Vec<Mutex<()>>,
    hasher: std::hash::RandomState,
}

const LOCK_STRIPES: usize = 256;

impl Dual {
    pub fn new(file: FileBoards, sql: SqlBoards, primary: DualPrimary) -> Self {
        Self {
            file,
            sql,
            primary,
            locks: DualLocks {
                batch: RwLock::new(()),
                stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                hasher: std::hash::RandomState::new(),
            },
        }
    }

    pub async fn load(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        match self.primary {
            DualPrimary::File => self.file.load(key).await,
            DualPrimary::Sql => self.sql.load(key).await,
        }
    }

    pub async fn keys_of_user(&self, user_id: Uuid) -> Result<Vec<BoardKey>, Error> {
        match self.primary {
            DualPrimary::File => self.file.keys_of_user(user_id).await,
            DualPrimary::Sql => self.sql.keys_of_user(user_id).await,
        }
    }

    pub async fn keys(&self, season: Option<&str>) -> Result<Vec<BoardKey>, Error> {
        match self.primary {
            DualPrimary::File => self.file.keys(season).await,
            DualPrimary::Sql => self.sql.keys(season).await,
        }
    }

    /// Runs the change once, on the primary's board, then copies the result to the secondary.
    pub async fn update<T, F>(&self, key: &BoardKey, change: F) -> Result<T, Error>
    where
        F: FnOnce(Option<Board>) -> Result<Saved<T>, Error> + Send,
        T: Send,
    {
        let _batch = self.locks.batch.read().await;
        let _board = self.locks.board(key).lock().await;
        let mut written = None;
        let tracked = |current: Option<Board>| {
            let previous = current.clone();
            let saved = change(current)?;
            if let Saved::Write(board, _) = &saved {
                written = Some((previous, board.clone()));
            }
            Ok(saved)
        };
        let answer = match self.primary {
            DualPrimary::File => self.file.update(key, tracked).await,
            DualPrimary::Sql => self.sql.update(key, tracked).await,
        }?;
        if let Some((previous, board)) = written {
            self.mirror(previous, &board).await;
        }
        Ok(answer)
    }

    /// Runs the batch on the primary, then copies each board the primary saved (and only
    /// those) to the secondary.
    pub async fn update_due<T, F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        skip: &[BoardKey],
        mut change: F,
    ) -> Result<DueBoards<T>, Error>
    where
        F: FnMut(&mut Board) -> Option<T> + Send,
        T: Send,
    {
        let _batch = self.locks.batch.write().await;
        let tracked = |board: &mut Board| {
            let previous = board.clone();
            change(board).map(|answer| (answer, previous, board.clone()))
        };
        let due = match self.primary {
            DualPrimary::File => self.file.update_due(now, limit, skip, tracked).await,
            DualPrimary::Sql => self.sql.update_due(now, limit, skip, tracked).await,
        }?;
        let mut saved = Vec::with_capacity(due.saved.len());
        for (answer, previous, board) in due.saved {
            self.mirror(Some(previous), &board).await;
            saved.push(answer);
        }
        Ok(DueBoards {
            saved,
            refused: due.refused,
        })
    }

    pub async fn put(&self, board: &Board) -> Result<Option<Board>, Error> {
        let key = board.key();
        let _batch = self.locks.batch.read().await;
        let _board = self.locks.board(&key).lock().await;
        let previous = match self.primary {
            DualPrimary::File => self.file.put(board).await,
            DualPrimary::Sql => self.sql.put(board).await,
        }?;
        self.mirror(previous.clone(), board).await;
        Ok(previous)
    }

    pub async fn insert_if_absent(&self, board: &Board) -> Result<bool, Error> {
        let key = board.key();
        let _batch = self.locks.batch.read().await;
        let _board = self.locks.board(&key).lock().await;
        let inserted = match self.primary {
            DualPrimary::File => self.file.insert_if_absent(board).await,
            DualPrimary::Sql => self.sql.insert_if_absent(board).await,
        }?;
        if inserted {
            self.mirror(None, board).await;
        }
        Ok(inserted)
    }

    /// Writes the primary's new `board` to the secondary and records any divergence between
    /// what the secondary held and what the primary held (`primary_previous`).
    async fn mirror(&self, primary_previous: Option<Board>, board: &Board) {
        let secondary_previous = match self.primary {
            DualPrimary::File => self.sql.put(board).await,
            DualPrimary::Sql => self.file.put(board).await,
        };
        let (kind, detail) = match secondary_previous {
            Err(error) => (
                "secondary_write_failed",
                serde_json::json!({ "error": error.to_string() }),
            ),
            Ok(secondary_previous) if secondary_previous == primary_previous => return,
            Ok(secondary_previous) => {
                let kind = match (&primary_previous, &secondary_previous) {
                    (Some(_), None) => "missing_row",
                    (None, Some(_)) => "extra_row",
                    _ => "content",
                };
                let (file, sql) = match self.primary {
                    DualPrimary::File => (primary_previous, secondary_previous),
                    DualPrimary::Sql => (secondary_previous, primary_previous),
                };
                (
                    kind,
                    divergence_detail(board.user_id, file.as_ref(), sql.as_ref()),
                )
            }
        };
        self.record(&board.key(), kind, detail).await;
    }

    async fn record(&self, key: &BoardKey, kind: &str, mut detail: serde_json::Value) {
        let primary = match self.primary {
            DualPrimary::File => "file",
            DualPrimary::Sql => "sql",
        };
        detail["primary"] = primary.into();
        tracing::warn!(
            user_id = %key.user_id,
            season_id = %key.season_id,
            kind,
            primary,
            %detail,
            "missions stores diverge"
        );
        metrics::divergence(kind);
        if let Err(error) = self.sql.record_divergence(key, kind, &detail).await {
            // The log line and the metric above still tell the story.
            tracing::warn!(
                user_id = %key.user_id,
                season_id = %key.season_id,
                kind,
                %error,
                "the divergence could not be recorded in SQL"
            );
        }
    }
}

impl DualLocks {
    fn board(&self, key: &BoardKey) -> &Mutex<()> {
        // The modulo keeps the index below LOCK_STRIPES, so the cast cannot truncate.
        let stripe = (self.hasher.hash_one(key) % LOCK_STRIPES as u64) as usize;
        &self.stripes[stripe]
    }
}

/// Most differing paths a divergence row lists; the count says how many there were.
const DIVERGENCE_PATHS: usize = 20;

/// Where the two stores' copies of one board differ, for the divergence row.
fn divergence_detail(
    user_id: Uuid,
    file: Option<&Board>,
    sql: Option<&Board>,
) -> serde_json::Value {
    match diff_boards(user_id, file, sql) {
        Ok(differences) => serde_json::json!({
            "differenceCount": differences.len(),
            "differences": differences.iter().take(DIVERGENCE_PATHS).collect::<Vec<_>>(),
        }),
        Err(error) => {
            serde_json::json!({ "error": format!("the boards cannot be compared: {error}") })
        }
    }
}
