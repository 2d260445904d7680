//! The SQL repository: each board is one `missions_v2_state` row (the JSONB snapshot reads are
//! served from) and its rows in the relational tables, written together in one transaction.
//!
//! Writes are diffs: the saved board (read under the row lock) and the new one are both turned
//! into table rows, and only rows that are new, changed or gone are sent. Every table's rows of
//! every board in the write go as UNNEST arrays in one statement (one CTE per table), so saving
//! one board after a heartbeat, or a thousand after a batch day close, is the same one or two
//! statements. Append-only records (heartbeats, day closes, claims, communications) are inserted
//! without ON CONFLICT, so their UNIQUE constraints stay a real backstop against counting a day
//! or a claim twice; mutable rows (board, slots, runs, progress, effects, boss run) are upserted.
//!
//! Concurrency: a write holds the snapshot row `FOR UPDATE` from the read to the commit, so
//! updates of one board are serialized; a board that does not exist yet is serialized by a
//! transaction advisory lock on its key instead (there is no row to lock). The batch day close
//! takes due rows `FOR UPDATE SKIP LOCKED`, so it never waits for a user's request and parallel
//! closers split the work.

//!
//! The parts: `lock` takes a board for a write, `rows` turns a board into table rows, `save`
//! diffs them against the saved board and handles refusals, `write` is the statements sent.

mod import;
mod lock;
mod rows;
mod save;
mod write;

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

pub use self::import::{Imported, Owner};
use self::lock::lock;
use self::save::{save, save_each};
use self::write::column;
use super::{DueBoards, Saved};
use crate::domain::board::{Board, BoardKey};
use crate::metrics;

/// Boards in PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlBoards {
    pool: PgPool,
}

impl SqlBoards {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The board as its snapshot holds it.
    pub async fn load(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        let board: Option<Json<Board>> = sqlx::query_scalar(
            "SELECT state FROM missions_v2_state WHERE user_id = $1 AND season_id = $2",
        )
        .bind(key.user_id)
        .bind(&key.season_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(board.map(|Json(board)| board))
    }

    /// The board rebuilt from the relational tables alone (never the snapshot): what the
    /// relational model says, for the audit, `compare` and the cut-over checks.
    pub async fn load_relational(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        let board: Option<Json<Board>> = sqlx::query_scalar(
            "SELECT document FROM missions_v2_board_documents WHERE user_id = $1 AND season_id = $2",
        )
        .bind(key.user_id)
        .bind(&key.season_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(board.map(|Json(board)| board))
    }

    /// The keys of every board of `user_id`, by season.
    pub async fn keys_of_user(&self, user_id: Uuid) -> Result<Vec<BoardKey>, Error> {
        let keys: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT user_id, season_id FROM missions_v2_state WHERE user_id = $1 ORDER BY season_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().map(board_key).collect())
    }

    /// The keys of every board (of `season` only, when given), by user then season.
    pub async fn keys(&self, season: Option<&str>) -> Result<Vec<BoardKey>, Error> {
        let keys: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT user_id, season_id FROM missions_v2_state
             WHERE $1::text IS NULL OR season_id = $1
             ORDER BY user_id, season_id",
        )
        .bind(season)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().map(board_key).collect())
    }

    /// Runs `change` on the board under its lock and saves what it decided: the snapshot and
    /// the relational rows in one transaction, or nothing at all when `change` errs or keeps.
    pub async fn update<T, F>(&self, key: &BoardKey, change: F) -> Result<T, Error>
    where
        F: FnOnce(Option<Board>) -> Result<Saved<T>, Error> + Send,
        T: Send,
    {
        let mut transaction = self.pool.begin().await?;
        let saved = lock(&mut transaction, key).await?;
        match change(saved.clone())? {
            Saved::Keep(answer) => {
                transaction.commit().await?;
                Ok(answer)
            }
            Saved::Write(board, answer) => {
                save(&mut transaction, &mut [(saved, board)]).await?;
                transaction.commit().await?;
                Ok(answer)
            }
        }
    }

    /// The batch day close: up to `limit` boards due at `now` (oldest due first, leaving out
    /// `skip` and boards someone else holds), each given to `change`; those it answers `Some`
    /// for are saved in one transaction (see `save_each`). A board `change` leaves as it was
    /// keeps its `due_at` (`rules::next_due` of an unchanged board is unchanged) and is picked
    /// again; so is a board the database refused.
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
        let mut transaction = self.pool.begin().await?;
        let due: Vec<Json<Board>> = sqlx::query_scalar(
            "SELECT state FROM missions_v2_state
             WHERE due_at <= $1
               AND (user_id, season_id) NOT IN (SELECT * FROM UNNEST($3::uuid[], $4::text[]))
             ORDER BY due_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(limit)
        .bind(column(skip, |key| key.user_id))
        .bind(
            skip.iter()
                .map(|key| key.season_id.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *transaction)
        .await?;
        let mut changes = Vec::with_capacity(due.len());
        let mut answers = Vec::with_capacity(due.len());
        for Json(saved) in due {
            let mut board = saved.clone();
            if let Some(answer) = change(&mut board) {
                changes.push((Some(saved), board));
                answers.push(answer);
            }
        }
        let outcomes = save_each(&mut transaction, &mut changes).await?;
        let mut result = DueBoards {
            saved: Vec::with_capacity(changes.len()),
            refused: Vec::new(),
        };
        for (((_, board), answer), outcome) in changes.iter().zip(answers).zip(outcomes) {
            match outcome {
                Ok(()) => result.saved.push(answer),
                Err(error) => {
                    tracing::error!(
                        user_id = %board.user_id,
                        season_id = %board.season_id,
                        %error,
                        "the database refused a board's day close; the board stays due"
                    );
                    metrics::day_close_refused();
                    result.refused.push(board.key());
                }
            }
        }
        transaction.commit().await?;
        Ok(result)
    }

    /// Overwrites the board (whatever its saved state), returning the saved one.
    pub async fn put(&self, board: &Board) -> Result<Option<Board>, Error> {
        self.update(&board.key(), |saved| Ok(Saved::Write(board.clone(), saved)))
            .await
    }

    /// Writes the board unless a board with its key exists; true when it wrote.
    pub async fn insert_if_absent(&self, board: &Board) -> Result<bool, Error> {
        self.update(&board.key(), |saved| {
            Ok(match saved {
                Some(_) => Saved::Keep(false),
                None => Saved::Write(board.clone(), true),
            })
        })
        .await
    }

    /// Writes boards whose keys are new in one transaction, the way a bulk load does (the
    /// benchmark's 100,000 boards): one statement per table for all of them, without reading
    /// what is saved (use `insert_if_absent` when a key may exist).
    pub async fn insert_many(&self, boards: Vec<Board>) -> Result<(), Error> {
        let mut transaction = self.pool.begin().await?;
        let mut changes: Vec<_> = boards.into_iter().map(|b| (None, b)).collect();
        save(&mut transaction, &mut changes).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records that two views of a board disagreed (`kind` names how; `detail` says where).
    pub async fn record_divergence(
        &self,
        key: &BoardKey,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO missions_v2_divergences (user_id, season_id, kind, detail)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(key.user_id)
        .bind(&key.season_id)
        .bind(kind)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A transaction for the jobs that read or rewrite every board (analytics refresh, audit): they
/// take as long as the data does, not as long as a request may.
pub(crate) async fn maintenance_transaction(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, Postgres>, Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL statement_timeout = '15min'")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

fn board_key((user_id, season_id): (Uuid, String)) -> BoardKey {
    BoardKey { user_id, season_id }
}
