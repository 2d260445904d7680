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

use crate::error::{Error, FieldViolation, Refusal, RefusalKind};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

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
) -> Result<Prior<T>, Error> {
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
        .map_err(|e| {
            Error::invariant(
                "IDEMPOTENCY_RECORD_UNREADABLE",
                format!(
                    "the outcome recorded under key {} ({}) does not read back: {e}",
                    crate::error::quote(&key.key),
                    key.method
                ),
            )
        })
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

/// Outcomes to record under their keys as one array per column, for a statement that records
/// them together with the effect they belong to (one round trip instead of two, and one
/// statement for many calls written together). The statement's `RETURNING` names the keys it
/// took; a key it did not take was taken by a concurrent request first, which the caller
/// answers as [`record`]'s `false`: roll back, then [`find`].
pub struct KeyRows {
    scopes: Vec<String>,
    keys: Vec<String>,
    methods: Vec<&'static str>,
    fingerprints: Vec<Vec<u8>>,
    outcomes: Vec<serde_json::Value>,
    expires_at: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl KeyRows {
    /// Parameters [`KeyRows::bind`] binds.
    pub const PARAMETERS: usize = 7;

    /// No outcomes yet, to be recorded at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            scopes: Vec::new(),
            keys: Vec::new(),
            methods: Vec::new(),
            fingerprints: Vec::new(),
            outcomes: Vec::new(),
            expires_at: Vec::new(),
            now,
        }
    }

    /// Adds `outcome` under `key`, kept for `ttl`.
    pub fn push<T: Serialize>(
        &mut self,
        key: &RequestKey,
        outcome: &T,
        ttl: std::time::Duration,
    ) -> Result<(), Error> {
        let outcome = serde_json::to_value(outcome)
            .map_err(|e| Error::internal(format_args!("an outcome does not encode: {e}")))?;
        self.scopes.push(key.scope.clone());
        self.keys.push(key.key.clone());
        self.methods.push(key.method);
        self.fingerprints.push(key.fingerprint.to_vec());
        self.outcomes.push(outcome);
        self.expires_at.push(expiry(self.now, ttl));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The INSERT (usable as a data-modifying CTE) with the [`KeyRows::bind`] parameters
    /// numbered from `$first`; it returns `scope, idempotency_key` of each key it took. Rows
    /// go in key order, so two statements that record the same keys wait on each other in
    /// one order and never deadlock. Like [`record`], an expired entry is taken over.
    pub fn insert(first: usize) -> String {
        let p = |offset: usize| format!("${}", first + offset);
        format!(
            "INSERT INTO request_keys
                 (scope, idempotency_key, method, fingerprint, outcome, created_at, expires_at)
             SELECT k.scope, k.key, k.method, k.fingerprint, k.outcome, {now}, k.expires_at
             FROM UNNEST({}::text[], {}::text[], {}::text[], {}::bytea[], {}::jsonb[],
                         {}::timestamptz[]) AS k(scope, key, method, fingerprint, outcome, expires_at)
             ORDER BY k.scope, k.key
             ON CONFLICT (scope, idempotency_key) DO UPDATE
                 SET method = EXCLUDED.method, fingerprint = EXCLUDED.fingerprint,
                     outcome = EXCLUDED.outcome, created_at = EXCLUDED.created_at,
                     expires_at = EXCLUDED.expires_at
                 WHERE request_keys.expires_at <= EXCLUDED.created_at
             RETURNING scope, idempotency_key",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            now = p(6),
        )
    }

    /// Binds the parameters of [`KeyRows::insert`], in order, after those bound so far.
    pub fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.scopes)
            .bind(self.keys)
            .bind(self.methods)
            .bind(self.fingerprints)
            .bind(self.outcomes)
            .bind(self.expires_at)
            .bind(self.now)
    }
}

/// When an outcome recorded at `now` for `ttl` expires (the end of time for a TTL beyond it).
fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    now.checked_add_signed(ttl)
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
}

/// Deletes keys that expired before `now`, at most `limit` at a time; returns how many. Rows
/// another transaction holds are left for the next sweep (`SKIP LOCKED`), so concurrent sweeps
/// delete disjoint rows and never wait for each other.
pub async fn remove_expired(
    pool: &sqlx::PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query(
        "DELETE FROM request_keys WHERE ctid IN (
             SELECT ctid FROM request_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(now)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(removed.rows_affected())
}

/// Runs [`remove_expired`] as the background job `name` of the service of `context`: every
/// `interval`, at most `batch` keys a sweep, on one replica at a time
/// ([`ServiceContext::singleton`](crate::ServiceContext::singleton)).
pub fn sweep_expired_keys(
    context: &crate::ServiceContext,
    name: &'static str,
    interval: std::time::Duration,
    batch: i64,
) {
    let pool = context.pool.clone();
    context.singleton(name, interval, move || {
        let pool = pool.clone();
        async move {
            let removed = remove_expired(&pool, Utc::now(), batch).await?;
            if removed > 0 {
                tracing::info!(removed, "forgot expired idempotency keys");
            }
            Ok(())
        }
    });
}

/// The answer to a key reused for a different request.
pub fn mismatch_error(key: &RequestKey, first_method: &str) -> Refusal {
    let mut refusal = Refusal::new(
        RefusalKind::Invalid,
        "IDEMPOTENCY_KEY_REUSED",
        format!(
            "idempotency key {} was already used for a different request ({first_method}); \
             use a new key for a new request",
            crate::error::quote(&key.key)
        ),
    )
    .with("idempotency_key", &key.key);
    refusal.violations.push(FieldViolation::new(
        "idempotency_key",
        "IDEMPOTENCY_KEY_REUSED",
        "was already used for a different request",
    ));
    refusal
}

/// Runs `effect` in a transaction at most once per idempotency key: a replay of the same
/// request returns the outcome recorded the first time, a different request with the same key
/// is refused, and a concurrent duplicate waits for the first and then replays it. The outcome
/// is recorded in the same transaction as the effect, so `effect` must only write through the
/// connection: a replay runs it too, and rolls it back.
pub async fn once<T, F>(
    pool: &PgPool,
    key: &RequestKey,
    ttl: std::time::Duration,
    effect: F,
) -> Result<T, Error>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, Error>>,
{
    let mut transaction = pool.begin().await?;
    let now = Utc::now();
    // The effect runs before the key is looked up, which saves a first request (the common
    // case) a round trip. A replay's own effect is rolled back: its record conflicts with the
    // first one below, or its effect is refused (the first one spent the funds) and the key
    // is found here.
    let outcome = match effect(&mut transaction).await {
        Ok(outcome) => outcome,
        Err(error) => {
            drop(transaction);
            return match find(pool, key, Utc::now()).await {
                Ok(found) => match replayable(found, key)? {
                    Some(recorded) => Ok(recorded),
                    None => Err(error),
                },
                // The effect's error says more than the lookup's.
                Err(_) => Err(error),
            };
        }
    };
    let expires_at = expiry(now, ttl);
    if record(&mut transaction, key, &outcome, now, expires_at).await? {
        transaction.commit().await?;
        return Ok(outcome);
    }
    // A concurrent request with the same key committed first: drop our effect, answer with its.
    transaction.rollback().await?;
    let found = find(pool, key, Utc::now()).await?;
    replayable(found, key)?.ok_or_else(|| busy().into())
}

/// The answer to a request whose key a concurrent request took but whose record is not
/// there (the other request's transaction did not commit): retry.
pub fn busy() -> Refusal {
    Refusal::conflict(
        "IDEMPOTENCY_KEY_BUSY",
        "a concurrent request with this idempotency key did not finish; retry",
    )
}

/// What a request does about what [`find`] found: replay the recorded outcome (`Some`), go
/// ahead (`None`), or be refused for reusing the key for another request.
pub fn replayable<T>(prior: Prior<T>, key: &RequestKey) -> Result<Option<T>, Refusal> {
    match prior {
        Prior::None => Ok(None),
        Prior::Replay(outcome) => {
            crate::metrics::global().count_replay();
            Ok(Some(outcome))
        }
        Prior::Mismatch { method } => Err(mismatch_error(key, &method)),
    }
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
}
