//! The event store's reads: one stream by version, a tenant's events as they come (the
//! shared stream of `phoenix_runtime::stream`: positions consecutive for the service and
//! increasing in commit order), and an account rebuilt from its snapshot and events.

use futures_util::Stream;
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, StoredEvent};
use sqlx::PgPool;
use uuid::Uuid;

use super::Ledger;
use super::tenants::existing_tenant;
use crate::domain::ledger::{BalanceDelta, Balances};
use crate::error;
use crate::store::accounts::ACCOUNT_STREAM;
use crate::store::events::{self, types};

/// An account rebuilt from its latest snapshot and the events after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rehydrated {
    pub balances: Balances,
    pub version: i64,
    pub snapshot_version: i64,
    pub events_replayed: i64,
}

impl Ledger {
    /// Up to `limit` events of one stream from `from_version`, and the stream's version.
    pub async fn stream_events(
        &self,
        tenant_id: Uuid,
        aggregate_type: &str,
        aggregate_id: &str,
        from_version: i64,
        limit: i64,
    ) -> Result<(Vec<StoredEvent>, i64), Error> {
        let events = stream::read_stream(
            &self.pool,
            tenant_id,
            aggregate_type,
            aggregate_id,
            from_version.max(1),
            limit,
        )
        .await?;
        let version =
            stream::stream_version(&self.pool, tenant_id, aggregate_type, aggregate_id).await?;
        Ok((events, version))
    }

    /// The tenant's events after position `after` (0: from the first), in position order, then
    /// each new one as it gets its position, until the service shuts down or the caller drops
    /// the stream. NOT_FOUND for an unknown tenant or a position that is not one of the
    /// tenant's events.
    pub async fn follow_events(
        &self,
        tenant_id: Uuid,
        after: i64,
    ) -> Result<impl Stream<Item = Result<StoredEvent, Error>> + Send + 'static, Error> {
        existing_tenant(&self.pool, tenant_id).await?;
        self.events.follow(Some(tenant_id), after).await
    }

    /// The account's balances rebuilt from its latest snapshot and the events after it.
    pub async fn rebuild_account(
        &self,
        tenant_id: Uuid,
        account_id: Uuid,
    ) -> Result<Rehydrated, Error> {
        rehydrate_account(&self.pool, tenant_id, account_id).await
    }
}

/// [`Ledger::rebuild_account`] on a pool, for the auditor.
pub async fn rehydrate_account(
    pool: &PgPool,
    tenant_id: Uuid,
    account_id: Uuid,
) -> Result<Rehydrated, Error> {
    let id = account_id.to_string();
    let snapshot = events::latest_snapshot(pool, tenant_id, ACCOUNT_STREAM, &id).await?;
    let (mut balances, snapshot_version) = match snapshot {
        Some((version, state)) => (
            serde_json::from_value(state).map_err(|e| error::undecodable_stored("snapshot", e))?,
            version,
        ),
        None => (Balances::default(), 0),
    };
    let payloads =
        events::payloads_after(pool, tenant_id, ACCOUNT_STREAM, &id, snapshot_version).await?;
    if snapshot_version == 0 && payloads.is_empty() {
        return Err(error::account_not_found(account_id).at("account_id").into());
    }
    let mut version = snapshot_version;
    for (event_version, event_type, payload) in &payloads {
        balances = fold_event(balances, event_type, payload).ok_or_else(|| {
            Error::invariant(
                "ACCOUNT_EVENTS_FOLD",
                format!(
                    "account {account_id}: event {event_type} at version {event_version} does \
                     not apply to the balances"
                ),
            )
        })?;
        version = *event_version;
    }
    Ok(Rehydrated {
        balances,
        version,
        snapshot_version,
        events_replayed: i64::try_from(payloads.len()).unwrap_or(i64::MAX),
    })
}

/// Applies one account event to the balances; `None` for an event that does not belong to an
/// account stream or would overflow.
fn fold_event(balances: Balances, event_type: &str, payload: &[u8]) -> Option<Balances> {
    use prost::Message;
    match event_type {
        types::ACCOUNT_OPENED => Some(balances),
        types::ACCOUNT_BALANCE_CHANGED => {
            let change = pb::AccountBalanceChanged::decode(payload).ok()?;
            change
                .transfers
                .iter()
                .try_fold(balances, |balances, effect| {
                    balances.apply(&BalanceDelta {
                        debits_posted: effect.debits_posted_delta,
                        credits_posted: effect.credits_posted_delta,
                        debits_pending: effect.debits_pending_delta,
                        credits_pending: effect.credits_pending_delta,
                    })
                })
        }
        _ => None,
    }
}
