//! (stub for the FILE branch; the SQL engineer's `SqlBoards` replaces it on merge — same
//! signatures, see DESIGN.md)

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::Saved;
use crate::domain::board::{Board, BoardKey};
use crate::error::MissionsError;

pub struct SqlBoards {
    pool: PgPool,
}

impl SqlBoards {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn load(&self, key: &BoardKey) -> Result<Option<Board>, MissionsError> {
        todo!("sql: {key:?} {:?}", self.pool)
    }

    pub async fn keys_of_user(&self, user_id: Uuid) -> Result<Vec<BoardKey>, MissionsError> {
        todo!("sql: {user_id}")
    }

    pub async fn keys(&self, season: Option<&str>) -> Result<Vec<BoardKey>, MissionsError> {
        todo!("sql: {season:?}")
    }

    pub async fn update<T, F>(&self, key: &BoardKey, change: F) -> Result<T, MissionsError>
    where
        F: FnOnce(Option<Board>) -> Result<Saved<T>, MissionsError> + Send,
    {
        let _ = change;
        todo!("sql: {key:?}")
    }

    pub async fn update_due<F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        change: F,
    ) -> Result<usize, MissionsError>
    where
        F: FnMut(&mut Board) -> bool + Send,
    {
        let _ = change;
        todo!("sql: {now} {limit}")
    }

    pub async fn put(&self, board: &Board) -> Result<Option<Board>, MissionsError> {
        todo!("sql: {}", board.board_id)
    }

    pub async fn insert_if_absent(&self, board: &Board) -> Result<bool, MissionsError> {
        todo!("sql: {}", board.board_id)
    }

    pub async fn load_relational(&self, key: &BoardKey) -> Result<Option<Board>, MissionsError> {
        todo!("sql: {key:?}")
    }

    pub async fn record_divergence(
        &self,
        key: &BoardKey,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<(), MissionsError> {
        todo!("sql: {key:?} {kind} {detail}")
    }
}
