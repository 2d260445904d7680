//! What the legacy files' import writes and their export reads: a contact with each file's
//! record verbatim (`threads_key`, `guests_key`, `legacy_thread`, `legacy_guest`,
//! `in_guest_memory`).

use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::contacts::{COLUMNS, contact, labels_json};
use crate::domain::Contact;
use crate::domain::legacy::{LegacyContact, Source};

/// Inserts an imported contact at version 1 with the records it came from; `None` when the
/// phone exists already (the import changes nothing then).
pub async fn insert(
    connection: &mut PgConnection,
    legacy: &LegacyContact,
) -> Result<Option<Contact>, Error> {
    let sql = format!(
        "INSERT INTO contacts (phone, name, chat_id, labels, last_activity_at, created_at,
             updated_at, threads_key, guests_key, legacy_thread, legacy_guest, in_guest_memory,
             legacy_thread_text, legacy_guest_text, threads_position, guests_position)
         VALUES ($1, $2, $3, $4, $5, now(), now(), $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (phone) DO NOTHING
         RETURNING {COLUMNS}"
    );
    let object = |map: Option<&serde_json::Map<String, serde_json::Value>>| {
        serde_json::Value::Object(map.cloned().unwrap_or_default())
    };
    let row = sqlx::query(&sql)
        .bind(legacy.phone.as_str())
        .bind(legacy.name())
        .bind(legacy.chat_id())
        .bind(labels_json(&legacy.labels()))
        .bind(legacy.last_activity_at())
        .bind(legacy.thread.as_ref().map(|t| t.key.as_str()))
        .bind(legacy.guest.as_ref().map(|g| g.key.as_str()))
        .bind(object(legacy.thread.as_ref().map(|t| &t.original)))
        .bind(object(legacy.guest.as_ref().map(|g| &g.original)))
        .bind(legacy.guest.is_some())
        .bind(source(legacy.thread.as_ref().and_then(|t| t.source.as_ref())).0)
        .bind(source(legacy.guest.as_ref().and_then(|g| g.source.as_ref())).0)
        .bind(source(legacy.thread.as_ref().and_then(|t| t.source.as_ref())).1)
        .bind(source(legacy.guest.as_ref().and_then(|g| g.source.as_ref())).1)
        .fetch_optional(connection)
        .await?;
    row.as_ref().map(contact).transpose()
}

/// A record's text and position as bound; a position past `i32::MAX` is not kept (the record is
/// then written after the others).
fn source(source: Option<&Source>) -> (Option<&str>, Option<i32>) {
    (
        source.map(|s| s.text.as_str()),
        source.and_then(|s| i32::try_from(s.position).ok()),
    )
}

/// A contact as the export renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub contact: Contact,
    pub thread_id: Option<String>,
    pub thread_user_name: Option<String>,
    pub threads_key: Option<String>,
    pub guests_key: Option<String>,
    pub legacy_thread: serde_json::Map<String, serde_json::Value>,
    pub legacy_guest: serde_json::Map<String, serde_json::Value>,
    pub in_guest_memory: bool,
    /// Each record's text as its file held it, and its place there (see `Source`).
    pub legacy_thread_text: Option<String>,
    pub legacy_guest_text: Option<String>,
    pub threads_position: Option<i32>,
    pub guests_position: Option<i32>,
}

fn object(row: &PgRow, column: &str) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match row.try_get::<serde_json::Value, _>(column)? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(super::unreadable(column, &other.to_string())),
    }
}

/// Every contact with its active thread, in phone order.
pub async fn export_rows(executor: impl sqlx::PgExecutor<'_>) -> Result<Vec<ExportRow>, Error> {
    let rows = sqlx::query(
        "SELECT c.phone, c.name, c.chat_id, c.labels, c.directory_user_id, c.last_activity_at,
             c.created_at, c.updated_at, c.version, c.threads_key, c.guests_key,
             c.legacy_thread, c.legacy_guest, c.in_guest_memory, c.legacy_thread_text,
             c.legacy_guest_text, c.threads_position, c.guests_position,
             t.thread_id, t.user_name AS thread_user_name
         FROM contacts c LEFT JOIN threads t ON t.phone = c.phone AND t.active
         ORDER BY c.phone",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ExportRow {
                contact: contact(row)?,
                thread_id: row.try_get("thread_id")?,
                thread_user_name: row.try_get("thread_user_name")?,
                threads_key: row.try_get("threads_key")?,
                guests_key: row.try_get("guests_key")?,
                legacy_thread: object(row, "legacy_thread")?,
                legacy_guest: object(row, "legacy_guest")?,
                in_guest_memory: row.try_get("in_guest_memory")?,
                legacy_thread_text: row.try_get("legacy_thread_text")?,
                legacy_guest_text: row.try_get("legacy_guest_text")?,
                threads_position: row.try_get("threads_position")?,
                guests_position: row.try_get("guests_position")?,
            })
        })
        .collect()
}
