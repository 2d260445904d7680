//! Every SQL statement of the ledger, one module per area. Connections have `search_path` set
//! to the `ledger` schema. Functions that change state take the transaction's connection; the
//! transaction itself is opened by [`once`], which makes each mutating call idempotent.

pub mod events;
pub mod import;
pub mod ledger;
pub mod policies;
pub mod stock;
pub mod tenants;

use chrono::Utc;
use futures_util::future::BoxFuture;
use phoenix_runtime::idempotency::{self, Prior, RequestKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};

use crate::domain::{Refusal, RefusalKind};
use crate::error::LedgerError;
use crate::metrics;

/// Runs `effect` in a transaction at most once per idempotency key: a replay of the same
/// request returns the outcome recorded the first time, a different request with the same key
/// is refused, and a concurrent duplicate waits for the first and then replays it. The outcome
/// is recorded in the same transaction as the effect.
pub async fn once<T, F>(
    pool: &PgPool,
    key: &RequestKey,
    ttl: std::time::Duration,
    effect: F,
) -> Result<T, LedgerError>
where
    T: Serialize + DeserializeOwned,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, LedgerError>>,
{
    let mut transaction = pool.begin().await?;
    let now = Utc::now();
    if let Some(outcome) = prior(idempotency::find(&mut *transaction, key, now).await?, key)? {
        return Ok(outcome);
    }
    let outcome = effect(&mut transaction).await?;
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let expires_at = now
        .checked_add_signed(ttl)
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
    if idempotency::record(&mut transaction, key, &outcome, now, expires_at).await? {
        transaction.commit().await?;
        return Ok(outcome);
    }
    // A concurrent request with the same key committed first: drop our effect, answer with its.
    transaction.rollback().await?;
    let found = idempotency::find(pool, key, Utc::now()).await?;
    prior(found, key)?.ok_or_else(|| {
        Refusal::new(
            RefusalKind::Conflict,
            "IDEMPOTENCY_KEY_BUSY",
            "a concurrent request with this idempotency key did not finish; retry",
        )
        .into()
    })
}

fn prior<T>(prior: Prior<T>, key: &RequestKey) -> Result<Option<T>, LedgerError> {
    match prior {
        Prior::None => Ok(None),
        Prior::Replay(outcome) => {
            metrics::get().idempotent_replays.inc();
            Ok(Some(outcome))
        }
        Prior::Mismatch { method } => Err(LedgerError::KeyReused {
            key: key.clone(),
            method,
        }),
    }
}

/// SQLSTATE of a unique violation on `constraint`.
pub(crate) fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.code().as_deref() == Some("23505") && e.constraint() == Some(constraint))
}
