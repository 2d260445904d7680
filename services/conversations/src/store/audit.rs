//! The auditor's queries: buffers whose own row disagrees with their messages.

use phoenix_runtime::Error;
use sqlx::Row;

/// Buffers (up to `listed` phones, and how many in all) whose `message_count` or
/// `first_message_at` is not what their messages say, or whose messages or lease reach past the
/// next sequence.
pub async fn inconsistent_buffers(
    pool: &sqlx::PgPool,
    listed: i64,
) -> Result<(Vec<String>, i64), Error> {
    let rows = sqlx::query(
        "WITH m AS (
             SELECT phone, count(*)::int AS n, min(received_at) AS first, max(sequence) AS last
             FROM buffered_messages GROUP BY phone),
         bad AS (
             SELECT b.phone FROM buffers b LEFT JOIN m USING (phone)
             WHERE b.message_count <> COALESCE(m.n, 0)
                OR b.first_message_at IS DISTINCT FROM m.first
                OR COALESCE(m.last, 0) >= b.next_sequence
                OR COALESCE(b.taken_up_to, 0) >= b.next_sequence)
         SELECT phone, count(*) OVER () AS total FROM bad ORDER BY phone LIMIT $1",
    )
    .bind(listed)
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => 0,
    };
    let phones = rows
        .iter()
        .map(|row| row.try_get("phone"))
        .collect::<Result<Vec<String>, _>>()?;
    Ok((phones, total))
}

pub async fn buffers(pool: &sqlx::PgPool) -> Result<i64, Error> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM buffers")
        .fetch_one(pool)
        .await?)
}
