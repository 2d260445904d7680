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
/// is recorded in the same transaction as the effect, so `effect` must only write through the
/// connection: a replay runs it too, and rolls it back.
pub async fn once<T, F>(
    pool: &PgPool,
    key: &RequestKey,
    ttl: std::time::Duration,
    effect: F,
) -> Result<T, LedgerError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, LedgerError>>,
{
    let ran = once_recording(pool, key, ttl, move |connection| {
        let effect = effect(connection);
        Box::pin(async move { Ok(((), effect.await?)) })
    })
    .await?;
    Ok(match ran {
        Ran::Fresh((), outcome) | Ran::Replayed(outcome) => outcome,
    })
}

/// What [`once_recording`] did: ran the effect (its full answer, and the record it kept), or
/// found the record of an earlier run.
#[derive(Debug)]
pub enum Ran<T, R> {
    Fresh(T, R),
    Replayed(R),
}

/// [`once`] for an effect whose answer is larger than what a replay needs: the effect returns
/// its answer and a record, and only the record is stored under the key. The caller rebuilds
/// the answer from a replayed record (e.g. reads back immutable rows by id), which keeps the
/// key's row small when the answer is 8,000 transfers.
pub async fn once_recording<T, R, F>(
    pool: &PgPool,
    key: &RequestKey,
    ttl: std::time::Duration,
    effect: F,
) -> Result<Ran<T, R>, LedgerError>
where
    R: Serialize + DeserializeOwned,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<(T, R), LedgerError>>,
{
    let mut transaction = pool.begin().await?;
    let now = Utc::now();
    // The effect runs before the key is looked up, which saves a first request (the common
    // case) a round trip. A replay's own effect is rolled back: its record conflicts with the
    // first one below, or its effect is refused (the first one spent the funds) and the key
    // is found here.
    let (answer, record) = match effect(&mut transaction).await {
        Ok(ran) => ran,
        Err(error) => {
            drop(transaction);
            return match idempotency::find(pool, key, Utc::now()).await {
                Ok(found) => match prior(found, key)? {
                    Some(record) => Ok(Ran::Replayed(record)),
                    None => Err(error),
                },
                // The effect's error says more than the lookup's.
                Err(_) => Err(error),
            };
        }
    };
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let expires_at = now
        .checked_add_signed(ttl)
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
    if idempotency::record(&mut transaction, key, &record, now, expires_at).await? {
        transaction.commit().await?;
        return Ok(Ran::Fresh(answer, record));
    }
    // A concurrent request with the same key committed first: drop our effect, answer with its.
    transaction.rollback().await?;
    let found = idempotency::find(pool, key, Utc::now()).await?;
    let record = prior(found, key)?.ok_or_else(|| -> LedgerError {
        Refusal::new(
            RefusalKind::Conflict,
            "IDEMPOTENCY_KEY_BUSY",
            "a concurrent request with this idempotency key did not finish; retry",
        )
        .into()
    })?;
    Ok(Ran::Replayed(record))
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
