//! Taking a board for a write: its snapshot row `FOR UPDATE`, or, for a board that does not
//! exist yet, a transaction advisory lock on its key.

use phoenix_runtime::Error;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::board::{Board, BoardKey};

/// The saved board, locked until the transaction ends. When there is none yet, concurrent
/// creators of the same key are serialized on an advisory lock and the second one reads again,
/// so it sees the board the first one created instead of creating another.
pub(super) async fn lock(
    connection: &mut PgConnection,
    key: &BoardKey,
) -> Result<Option<Board>, Error> {
    if let Some(board) = locked(connection, key).await? {
        return Ok(Some(board));
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "missions_v2_state/{}/{}",
            key.user_id, key.season_id
        ))
        .execute(&mut *connection)
        .await?;
    locked(connection, key).await
}

async fn locked(connection: &mut PgConnection, key: &BoardKey) -> Result<Option<Board>, Error> {
    let board: Option<Json<Board>> = sqlx::query_scalar(
        "SELECT state FROM missions_v2_state WHERE user_id = $1 AND season_id = $2 FOR UPDATE",
    )
    .bind(key.user_id)
    .bind(&key.season_id)
    .fetch_optional(connection)
    .await?;
    Ok(board.map(|Json(board)| board))
}
