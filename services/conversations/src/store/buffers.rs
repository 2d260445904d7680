//! The `buffers` and `buffered_messages` tables.
//!
//! Every write to a contact's buffer first locks its `buffers` row (the upsert of an append,
//! the `FOR UPDATE SKIP LOCKED` of a take, the `FOR UPDATE` of an acknowledgement), so a
//! contact's appends get consecutive sequences in commit order, and a take sees either all of
//! an append or none of it.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{for_contact, micros, unique_violation};
use crate::domain::buffer::{BufferedMessage, LeaseState};
use crate::domain::{BufferPolicy, Phone};

/// The readiness rule of `domain::buffer::BufferPolicy::is_ready`, in SQL on `buffers`.
pub const READY: &str = "message_count > 0
    AND (lease_expires_at IS NULL OR lease_expires_at <= now())
    AND (last_message_at + debounce <= now()
         OR first_message_at + max_wait <= now()
         OR message_count >= max_messages)";

/// An appended message's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence: i64,
    pub buffered: i32,
    pub replayed: bool,
}

/// The sequence of the buffered message with this channel id, and the buffer's count.
pub async fn find_message(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    message_id: &str,
) -> Result<Option<Appended>, Error> {
    let row = sqlx::query(
        "SELECT m.sequence, b.message_count FROM buffered_messages m JOIN buffers b USING (phone)
         WHERE m.phone = $1 AND m.message_id = $2",
    )
    .bind(phone.as_str())
    .bind(message_id)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(Appended {
            sequence: row.try_get("sequence")?,
            buffered: row.try_get("message_count")?,
            replayed: true,
        })
    })
    .transpose()
}

/// Appends a message after every message of the contact's buffer (creating the buffer), with
/// the buffer's readiness policy set to `policy`, in one statement. `None` when a message with
/// the same channel id is buffered already (a concurrent retry).
pub async fn append(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    body: &str,
    message_id: Option<&str>,
    policy: &BufferPolicy,
) -> Result<Option<Appended>, Error> {
    let row = sqlx::query(
        "WITH b AS (
             INSERT INTO buffers AS b (phone, next_sequence, message_count, first_message_at,
                 last_message_at, debounce, max_wait, max_messages)
             VALUES ($1, 2, 1, now(), now(), $4 * interval '1 microsecond',
                     $5 * interval '1 microsecond', $6)
             ON CONFLICT (phone) DO UPDATE
                 SET next_sequence = b.next_sequence + 1, message_count = b.message_count + 1,
                     first_message_at = COALESCE(b.first_message_at, now()),
                     last_message_at = now(), debounce = EXCLUDED.debounce,
                     max_wait = EXCLUDED.max_wait, max_messages = EXCLUDED.max_messages
             RETURNING next_sequence - 1 AS sequence, message_count)
         INSERT INTO buffered_messages (phone, sequence, body, message_id, received_at)
         SELECT $1, b.sequence, $2, $3, now() FROM b
         RETURNING sequence, (SELECT message_count FROM b) AS message_count",
    )
    .bind(phone.as_str())
    .bind(body)
    .bind(message_id)
    .bind(micros(policy.debounce))
    .bind(micros(policy.max_wait))
    .bind(policy.max_messages)
    .fetch_one(executor)
    .await;
    match row {
        Ok(row) => Ok(Some(Appended {
            sequence: row.try_get("sequence")?,
            buffered: row.try_get("message_count")?,
            replayed: false,
        })),
        Err(e) if unique_violation(&e).as_deref() == Some("buffered_messages_message_id") => {
            Ok(None)
        }
        Err(e) => Err(for_contact(phone)(e)),
    }
}

/// A buffer a take leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub phone: Phone,
    pub lease_id: Uuid,
    pub lease_expires_at: DateTime<Utc>,
    pub taken_up_to: i64,
    pub redeliveries: i32,
}

/// Leases the longest-waiting ready buffer no other transaction holds to `worker` for `lease`,
/// taking every message appended so far; `None` when none is ready.
pub async fn take(
    connection: &mut PgConnection,
    worker: &str,
    lease: chrono::Duration,
) -> Result<Option<Leased>, Error> {
    let sql = format!(
        "UPDATE buffers b
         SET lease_id = $2, lease_worker = $1,
             lease_expires_at = now() + $3 * interval '1 microsecond',
             taken_up_to = b.next_sequence - 1,
             redeliveries = b.redeliveries + (b.lease_id IS NOT NULL)::int
         FROM (SELECT phone FROM buffers WHERE {READY}
               ORDER BY first_message_at LIMIT 1 FOR UPDATE SKIP LOCKED) ready
         WHERE b.phone = ready.phone
         RETURNING b.phone, b.lease_id, b.lease_expires_at, b.taken_up_to, b.redeliveries"
    );
    let row = sqlx::query(&sql)
        .bind(worker)
        .bind(Uuid::new_v4())
        .bind(micros(lease))
        .fetch_optional(connection)
        .await?;
    row.map(|row| {
        Ok(Leased {
            phone: Phone::stored(row.try_get("phone")?),
            lease_id: row.try_get("lease_id")?,
            lease_expires_at: row.try_get("lease_expires_at")?,
            taken_up_to: row.try_get("taken_up_to")?,
            redeliveries: row.try_get("redeliveries")?,
        })
    })
    .transpose()
}

/// The buffer's messages up to `up_to`, in sequence order.
pub async fn messages(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    up_to: i64,
) -> Result<Vec<BufferedMessage>, Error> {
    let rows = sqlx::query(
        "SELECT sequence, body, message_id, received_at FROM buffered_messages
         WHERE phone = $1 AND sequence <= $2 ORDER BY sequence",
    )
    .bind(phone.as_str())
    .bind(up_to)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(BufferedMessage {
                sequence: row.try_get("sequence")?,
                body: row.try_get("body")?,
                message_id: row.try_get("message_id")?,
                received_at: row.try_get("received_at")?,
            })
        })
        .collect()
}

/// The buffer's lease, locked for the acknowledgement, with the database's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedLease {
    pub state: LeaseState,
    pub message_count: i32,
    pub last_acked_up_to: Option<i64>,
    pub last_acked_count: Option<i32>,
    pub now: DateTime<Utc>,
}

pub async fn lock_lease(
    connection: &mut PgConnection,
    phone: &Phone,
) -> Result<Option<LockedLease>, Error> {
    let row = sqlx::query(
        "SELECT lease_id, lease_expires_at, taken_up_to, last_acked_lease, last_acked_up_to,
             last_acked_count, message_count, now() AS now
         FROM buffers WHERE phone = $1 FOR UPDATE",
    )
    .bind(phone.as_str())
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        Ok(LockedLease {
            state: LeaseState {
                lease_id: row.try_get("lease_id")?,
                lease_expires_at: row.try_get("lease_expires_at")?,
                taken_up_to: row.try_get("taken_up_to")?,
                last_acked_lease: row.try_get("last_acked_lease")?,
            },
            message_count: row.try_get("message_count")?,
            last_acked_up_to: row.try_get("last_acked_up_to")?,
            last_acked_count: row.try_get("last_acked_count")?,
            now: row.try_get("now")?,
        })
    })
    .transpose()
}

/// Removes the (locked) buffer's messages up to `up_to` and frees its lease, remembering it as
/// acknowledged; answers (removed, remaining).
pub async fn acknowledge(
    connection: &mut PgConnection,
    phone: &Phone,
    lease: Uuid,
    up_to: i64,
) -> Result<(i32, i32), Error> {
    let removed = sqlx::query("DELETE FROM buffered_messages WHERE phone = $1 AND sequence <= $2")
        .bind(phone.as_str())
        .bind(up_to)
        .execute(&mut *connection)
        .await?
        .rows_affected();
    let removed = i32::try_from(removed).unwrap_or(i32::MAX);
    let remaining: i32 = sqlx::query_scalar(
        "UPDATE buffers
         SET message_count = message_count - $3,
             first_message_at = (SELECT min(received_at) FROM buffered_messages WHERE phone = $1),
             lease_id = NULL, lease_worker = NULL, lease_expires_at = NULL, taken_up_to = NULL,
             redeliveries = 0, last_acked_lease = $2, last_acked_up_to = $4,
             last_acked_count = $3
         WHERE phone = $1
         RETURNING message_count",
    )
    .bind(phone.as_str())
    .bind(lease)
    .bind(removed)
    .bind(up_to)
    .fetch_one(connection)
    .await?;
    Ok((removed, remaining))
}
