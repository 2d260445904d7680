//! The cleanup's deletes, each bounded to a batch and judged by the database's clock.

use phoenix_runtime::Error;

use super::micros;
use crate::domain::{EMPTY_BUFFER_RETENTION, TYPING_RETENTION};

/// What one cleanup pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub context_entries: u64,
    pub chat_info_entries: u64,
    pub acknowledged_buffers: u64,
    pub expired_leases: u64,
    pub typing_stamps: u64,
    pub idempotency_keys: u64,
}

async fn delete(
    pool: &sqlx::PgPool,
    sql: &str,
    bind: Option<i64>,
    batch: i64,
) -> Result<u64, Error> {
    let mut query = sqlx::query(sql).bind(batch);
    if let Some(value) = bind {
        query = query.bind(value);
    }
    Ok(query.execute(pool).await?.rows_affected())
}

/// Removes up to `batch` rows of each kind. A buffer is removed only when it holds no message
/// (every one acknowledged), no lease, and was idle for [`EMPTY_BUFFER_RETENTION`]; the
/// conditions are on the buffer's own row, which every append updates under its lock, so a
/// concurrent append either makes the row not match or lands after the delete in a new one
/// (and the foreign key of `buffered_messages` refuses deleting a buffer with messages).
pub async fn run(pool: &sqlx::PgPool, batch: i64) -> Result<Removed, Error> {
    let cache = |kind: &str| {
        format!(
            "DELETE FROM cache_entries WHERE kind = '{kind}' AND expires_at <= now()
               AND phone = ANY(ARRAY(
                 SELECT phone FROM cache_entries WHERE kind = '{kind}' AND expires_at <= now()
                 LIMIT $1))"
        )
    };
    Ok(Removed {
        context_entries: delete(pool, &cache("context"), None, batch).await?,
        chat_info_entries: delete(pool, &cache("chat_info"), None, batch).await?,
        acknowledged_buffers: delete(
            pool,
            "DELETE FROM buffers WHERE phone = ANY(ARRAY(
                 SELECT phone FROM buffers
                 WHERE message_count = 0 AND lease_id IS NULL
                   AND last_message_at <= now() - $2 * interval '1 microsecond'
                 LIMIT $1))
               AND message_count = 0 AND lease_id IS NULL",
            Some(micros(EMPTY_BUFFER_RETENTION)),
            batch,
        )
        .await?,
        expired_leases: delete(
            pool,
            "DELETE FROM processing_leases WHERE phone = ANY(ARRAY(
                 SELECT phone FROM processing_leases WHERE expires_at <= now() LIMIT $1))
               AND expires_at <= now()",
            None,
            batch,
        )
        .await?,
        typing_stamps: delete(
            pool,
            "DELETE FROM typing_stamps WHERE phone = ANY(ARRAY(
                 SELECT phone FROM typing_stamps
                 WHERE last_logged_at <= now() - $2 * interval '1 microsecond' LIMIT $1))",
            Some(micros(TYPING_RETENTION)),
            batch,
        )
        .await?,
        idempotency_keys: phoenix_runtime::idempotency::remove_expired(
            pool,
            chrono::Utc::now(),
            batch,
        )
        .await?,
    })
}
