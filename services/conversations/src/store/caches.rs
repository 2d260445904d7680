//! The `cache_entries` (context and chat-info caches) and `user_states` tables.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{for_contact, micros, unreadable};
use crate::domain::{CacheKind, Phone, UserState};

/// A live cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub phone: Phone,
    pub value: String,
    pub written_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "phone, value, written_at, expires_at";

fn entry(row: &PgRow) -> Result<CacheEntry, Error> {
    Ok(CacheEntry {
        phone: Phone::stored(row.try_get("phone")?),
        value: row.try_get("value")?,
        written_at: row.try_get("written_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Writes the entry, live for `ttl` from now; a contact that does not exist is NOT_FOUND.
pub async fn set(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    kind: CacheKind,
    value: &str,
    ttl: chrono::Duration,
) -> Result<CacheEntry, Error> {
    let sql = format!(
        "INSERT INTO cache_entries (phone, kind, value, ttl, written_at, expires_at)
         VALUES ($1, $2, $3, $4 * interval '1 microsecond', now(), now() + $4 * interval '1 microsecond')
         ON CONFLICT (phone, kind) DO UPDATE
             SET value = EXCLUDED.value, ttl = EXCLUDED.ttl, written_at = EXCLUDED.written_at,
                 expires_at = EXCLUDED.expires_at
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .bind(kind.name())
        .bind(value)
        .bind(micros(ttl))
        .fetch_one(executor)
        .await
        .map_err(for_contact(phone))?;
    entry(&row)
}

/// The live entry, if any: an expired one is never answered. With `refresh`, a live entry's
/// expiry moves to now + its TTL in the same statement.
pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    kind: CacheKind,
    refresh: bool,
) -> Result<Option<CacheEntry>, Error> {
    let sql = if refresh {
        format!(
            "UPDATE cache_entries SET expires_at = now() + ttl
             WHERE phone = $1 AND kind = $2 AND expires_at > now()
             RETURNING {COLUMNS}"
        )
    } else {
        format!(
            "SELECT {COLUMNS} FROM cache_entries
             WHERE phone = $1 AND kind = $2 AND expires_at > now()"
        )
    };
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .bind(kind.name())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(entry).transpose()
}

const STATE_COLUMNS: &str = "phone, last_voice_input_at, preferences, updated_at";

fn state(row: &PgRow) -> Result<UserState, Error> {
    let preferences = match row.try_get::<serde_json::Value, _>("preferences")? {
        serde_json::Value::Object(map) => map,
        other => return Err(unreadable("user_states.preferences", &other.to_string())),
    };
    Ok(UserState {
        phone: Phone::stored(row.try_get("phone")?),
        last_voice_input_at: row.try_get("last_voice_input_at")?,
        preferences,
        updated_at: Some(row.try_get("updated_at")?),
    })
}

pub async fn user_state(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
) -> Result<Option<UserState>, Error> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM user_states WHERE phone = $1");
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(state).transpose()
}

/// What an update of a user state changes; everything else is left as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatePatch {
    /// `Some(Some(t))` sets, `Some(None)` clears, `None` keeps.
    pub last_voice_input_at: Option<Option<DateTime<Utc>>>,
    pub set_preferences: serde_json::Map<String, serde_json::Value>,
    pub remove_preferences: Vec<String>,
}

/// Applies `patch` in one statement on the row as it is when the statement runs (the row lock
/// of the upsert orders concurrent updates), so concurrent updates of other fields or keys are
/// all kept.
pub async fn update_user_state(
    executor: impl sqlx::PgExecutor<'_>,
    phone: &Phone,
    patch: &StatePatch,
) -> Result<UserState, Error> {
    let (touch_voice, voice) = match patch.last_voice_input_at {
        None => (false, None),
        Some(value) => (true, value),
    };
    let sql = format!(
        "INSERT INTO user_states AS s (phone, last_voice_input_at, preferences, updated_at)
         VALUES ($1, $3, $4 - $5::text[], now())
         ON CONFLICT (phone) DO UPDATE
             SET last_voice_input_at = CASE WHEN $2 THEN $3 ELSE s.last_voice_input_at END,
                 preferences = (s.preferences || $4) - $5::text[],
                 updated_at = now()
         RETURNING {STATE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(phone.as_str())
        .bind(touch_voice)
        .bind(voice)
        .bind(serde_json::Value::Object(patch.set_preferences.clone()))
        .bind(&patch.remove_preferences)
        .fetch_one(executor)
        .await
        .map_err(for_contact(phone))?;
    state(&row)
}
