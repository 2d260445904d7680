//! Idempotency keys for mutating RPCs, after Stripe's and Formance's: the caller sends a key with
//! each mutating request; the first request with that key takes effect and its outcome is stored
//! with a SHA-256 fingerprint of the request. A later request with the same key and the same
//! fingerprint gets the stored outcome back (also after a restart); the same key with another
//! request is refused. Keys expire after a TTL and [`remove_expired`] deletes them.
//!
//! The outcome is recorded **in the transaction that makes the effect**, so the two commit
//! together or not at all. A concurrent duplicate blocks on the key's primary key until the first
//! commits, then finds the key taken: it rolls back its own effect and replays the first
//! outcome, so a key never has two effects. A request that fails records nothing and leaves the
//! key free, because nothing was written.
//!
//! Each service that uses it has this table in its own schema:
//!
//! ```sql
//! CREATE TABLE request_keys (
//!     scope           text        NOT NULL,  -- tenant id, or '' for untenanted services
//!     idempotency_key text        NOT NULL,
//!     method          text        NOT NULL,
//!     fingerprint     bytea       NOT NULL,
//!     outcome         jsonb       NOT NULL,
//!     created_at      timestamptz NOT NULL,
//!     expires_at      timestamptz NOT NULL,
//!     PRIMARY KEY (scope, idempotency_key)
//! );
//! CREATE INDEX request_keys_expires_at ON request_keys (expires_at);
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::error::{ApiError, FieldViolation};

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// The key of one mutating request and the fingerprint of what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub scope: String,
    pub key: String,
    pub method: &'static str,
    pub fingerprint: [u8; 32],
}

impl RequestKey {
    /// Fingerprints `request` (its protobuf encoding; maps are generated as ordered maps, so
    /// equal requests encode equally) under `method`.
    pub fn new(
        scope: impl Into<String>,
        key: impl Into<String>,
        method: &'static str,
        request: &impl prost::Message,
    ) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update([0]);
        hasher.update(request.encode_to_vec());
        Self {
            scope: scope.into(),
            key: key.into(),
            method,
            fingerprint: hasher.finalize().into(),
        }
    }
}

/// Checks the shape of a key: required, printable ASCII, at most [`MAX_KEY_BYTES`].
pub fn check_key(key: &str) -> Result<(), FieldViolation> {
    let problem = if key.is_empty() {
        "is required: send a unique key (a UUID works) and reuse it when retrying"
    } else if key.len() > MAX_KEY_BYTES {
        "must be at most 255 bytes"
    } else if !key.chars().all(|c| c.is_ascii_graphic()) {
        "must be printable ASCII without spaces"
    } else {
        return Ok(());
    };
    Err(FieldViolation::new("idempotency_key", problem))
}

/// What an earlier request with the same key left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum Prior<T> {
    /// No live request used the key: go ahead.
    None,
    /// The same request ran before: answer with its outcome.
    Replay(T),
    /// The key was used for a different request.
    Mismatch { method: String },
}

/// Looks the key up, ignoring expired entries.
pub async fn find<'e, T: DeserializeOwned>(
    executor: impl sqlx::PgExecutor<'e>,
    key: &RequestKey,
    now: DateTime<Utc>,
) -> Result<Prior<T>, sqlx::Error> {
    let row: Option<(String, Vec<u8>, serde_json::Value)> = sqlx::query_as(
        "SELECT method, fingerprint, outcome FROM request_keys
         WHERE scope = $1 AND idempotency_key = $2 AND expires_at > $3",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .bind(now)
    .fetch_optional(executor)
    .await?;
    let Some((method, fingerprint, outcome)) = row else {
        return Ok(Prior::None);
    };
    if method != key.method || fingerprint != key.fingerprint {
        return Ok(Prior::Mismatch { method });
    }
    serde_json::from_value(outcome)
        .map(Prior::Replay)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Records `outcome` under the key, in the caller's transaction. `false` means a concurrent
/// request took the key first: roll back, then [`find`] its outcome.
pub async fn record<T: Serialize>(
    transaction: &mut sqlx::PgConnection,
    key: &RequestKey,
    outcome: &T,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let outcome = serde_json::to_value(outcome).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // An expired entry is as good as absent: the key may be used again.
    let recorded = sqlx::query(
        "INSERT INTO request_keys
             (scope, idempotency_key, method, fingerprint, outcome, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (scope, idempotency_key) DO UPDATE
             SET method = EXCLUDED.method, fingerprint = EXCLUDED.fingerprint,
                 outcome = EXCLUDED.outcome, created_at = EXCLUDED.created_at,
                 expires_at = EXCLUDED.expires_at
             WHERE request_keys.expires_at <= EXCLUDED.created_at",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .bind(key.method)
    .bind(key.fingerprint.as_slice())
    .bind(outcome)
    .bind(now)
    .bind(expires_at)
    .execute(transaction)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// Deletes keys that expired before `now`, at most `limit` at a time; returns how many.
pub async fn remove_expired(
    pool: &sqlx::PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query(
        "DELETE FROM request_keys WHERE ctid IN (
             SELECT ctid FROM request_keys WHERE expires_at <= $1 LIMIT $2)",
    )
    .bind(now)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(removed.rows_affected())
}

/// The answer to a key reused for a different request.
pub fn mismatch_error(domain: &'static str, key: &RequestKey, first_method: &str) -> ApiError {
    ApiError::new(
        Code::InvalidArgument,
        domain,
        "IDEMPOTENCY_KEY_REUSED",
        format!(
            "idempotency key {:?} was already used for a different request ({first_method}); \
             use a new key for a new request",
            key.key
        ),
    )
    .with_violation(FieldViolation::new(
        "idempotency_key",
        "was already used for a different request",
    ))
    .with_metadata("idempotency_key", key.key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_requests_share_a_fingerprint_and_different_ones_do_not() {
        let a = RequestKey::new("t", "k", "M", &"alpha".to_owned());
        let b = RequestKey::new("t", "k", "M", &"alpha".to_owned());
        let c = RequestKey::new("t", "k", "M", &"beta".to_owned());
        let d = RequestKey::new("t", "k", "N", &"alpha".to_owned());
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(a.fingerprint, d.fingerprint);
    }

    #[test]
    fn keys_must_be_short_printable_ascii() {
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"x".repeat(256)).is_err());
        assert!(check_key("order-42/attempt").is_ok());
    }
}
