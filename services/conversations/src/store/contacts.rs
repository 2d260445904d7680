//! The `contacts` and `threads` tables.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{unique_violation, unreadable};
use crate::domain::{Contact, ContactProfile, Phone, Thread};
use crate::error;

pub(crate) const COLUMNS: &str = "phone, name, chat_id, labels, directory_user_id, last_activity_at, created_at, updated_at, version";
const THREAD_COLUMNS: &str = "thread_id, phone, active, user_name, created_at, last_message_at";

pub(crate) fn contact(row: &PgRow) -> Result<Contact, Error> {
    let labels: serde_json::Value = row.try_get("labels")?;
    let labels = match labels {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(label) => Ok(label),
                other => Err(unreadable("contacts.labels", &other.to_string())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(unreadable("contacts.labels", &other.to_string())),
    };
    Ok(Contact {
        phone: Phone::stored(row.try_get("phone")?),
        profile: ContactProfile {
            name: row.try_get("name")?,
            chat_id: row.try_get("chat_id")?,
            labels,
            directory_user_id: row.try_get("directory_user_id")?,
            last_activity_at: row.try_get("last_activity_at")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

fn thread(row: &PgRow) -> Result<Thread, Error> {
    Ok(Thread {
        thread_id: row.try_get("thread_id")?,
        phone: Phone::stored(row.try_get("phone")?),
        active: row.try_get("active")?,
        user_name: row.try_get("user_name")?,
        created_at: row.try_get("created_at")?,
        last_message_at: row.try_get("last_message_at")?,
    })
}

pub(crate) fn labels_json(labels: &[String]) -> serde_json::Value {
    serde_json::Value::Array(
        labels
            .iter()
            .cloned()
            .map(serde_json::Value::String)
            .collect(),
    )
}

/// The database's clock, read in the transaction (what every row written in it is stamped with).
pub async fn now(connection: &mut PgConnection) -> Result<DateTime<Utc>, Error> {
    Ok(sqlx::query_scalar("SELECT now()")
        .fetch_one(connection)
        .await?)
}

/// The contact, locked for the transaction when `lock`.
pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    lock: bool,
) -> Result<Option<Contact>, Error> {
    // NO KEY UPDATE: the key-share locks of appends and other writes naming the contact (its
    // foreign keys) do not wait for a profile change.
    let lock = if lock { "FOR NO KEY UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM contacts WHERE phone = $1 {lock}");
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(contact).transpose()
}

/// Inserts a new contact at version 1; `None` when the phone exists already.
pub async fn insert(
    connection: &mut PgConnection,
    phone: &Phone,
    profile: &ContactProfile,
) -> Result<Option<Contact>, Error> {
    let sql = format!(
        "INSERT INTO contacts (phone, name, chat_id, labels, directory_user_id, last_activity_at,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()), now(), now())
         ON CONFLICT (phone) DO NOTHING
         RETURNING {COLUMNS}"
    );
    let row = bind_profile(sqlx::query(&sql).bind(phone.as_str()), profile)
        .fetch_optional(connection)
        .await?;
    row.as_ref().map(contact).transpose()
}

fn bind_profile<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    p: &'q ContactProfile,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&p.name)
        .bind(&p.chat_id)
        .bind(labels_json(&p.labels))
        .bind(p.directory_user_id)
        .bind(p.last_activity_at)
}

/// Replaces a (locked) contact's profile, bumping its version; an unset last activity keeps
/// the stored one.
pub async fn update(
    connection: &mut PgConnection,
    phone: &Phone,
    profile: &ContactProfile,
) -> Result<Contact, Error> {
    let sql = format!(
        "UPDATE contacts SET name = $2, chat_id = $3, labels = $4, directory_user_id = $5,
             last_activity_at = COALESCE($6, last_activity_at), updated_at = now(),
             version = version + 1
         WHERE phone = $1
         RETURNING {COLUMNS}"
    );
    let row = bind_profile(sqlx::query(&sql).bind(phone.as_str()), profile)
        .fetch_one(connection)
        .await?;
    contact(&row)
}

/// Bumps a (locked) contact's stream version for an event that changes no profile field.
/// Answers the new version and the database's time.
pub async fn next_version(
    connection: &mut PgConnection,
    phone: &Phone,
) -> Result<(i64, DateTime<Utc>), Error> {
    let row = sqlx::query(
        "UPDATE contacts SET version = version + 1 WHERE phone = $1 RETURNING version, now() AS now",
    )
    .bind(phone.as_str())
    .fetch_one(connection)
    .await?;
    Ok((row.try_get("version")?, row.try_get("now")?))
}

/// The contact's active thread.
pub async fn active_thread(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
) -> Result<Option<Thread>, Error> {
    let sql = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE phone = $1 AND active");
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(thread).transpose()
}

/// The contact a thread id belongs to, if it exists.
pub async fn thread_owner(
    connection: &mut PgConnection,
    thread_id: &str,
) -> Result<Option<Phone>, Error> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT phone FROM threads WHERE thread_id = $1")
            .bind(thread_id)
            .fetch_optional(connection)
            .await?;
    Ok(owner.map(Phone::stored))
}

/// Makes `thread_id` the (locked) contact's one active thread, stamping its last message; the
/// previously active thread, if another, becomes inactive and is answered. A thread id another
/// contact took concurrently is FAILED_PRECONDITION `THREAD_OF_ANOTHER_CONTACT`.
pub async fn activate_thread(
    connection: &mut PgConnection,
    phone: &Phone,
    thread_id: &str,
    user_name: Option<&str>,
    at: Option<DateTime<Utc>>,
) -> Result<(Thread, Option<String>), Error> {
    let replaced: Option<String> = sqlx::query_scalar(
        "UPDATE threads SET active = false WHERE phone = $1 AND active AND thread_id <> $2
         RETURNING thread_id",
    )
    .bind(phone.as_str())
    .bind(thread_id)
    .fetch_optional(&mut *connection)
    .await?;
    let sql = format!(
        "INSERT INTO threads (thread_id, phone, active, user_name, created_at, last_message_at)
         VALUES ($1, $2, true, $3, COALESCE($4, now()), COALESCE($4, now()))
         ON CONFLICT (thread_id) DO UPDATE
             SET active = true, user_name = COALESCE(EXCLUDED.user_name, threads.user_name),
                 last_message_at = EXCLUDED.last_message_at
             WHERE threads.phone = EXCLUDED.phone
         RETURNING {THREAD_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(thread_id)
        .bind(phone.as_str())
        .bind(user_name)
        .bind(at)
        .fetch_optional(&mut *connection)
        .await
        .map_err(|e| match unique_violation(&e).as_deref() {
            Some("threads_pkey") => error::thread_of_another_contact(thread_id).into(),
            _ => Error::from(e),
        })?;
    let Some(row) = row else {
        // The conflict's WHERE held back a thread of another contact.
        return Err(error::thread_of_another_contact(thread_id).into());
    };
    Ok((thread(&row)?, replaced))
}
