//! Accounts, their history and their transfers, as read and opened.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use uuid::Uuid;

use super::Ledger;
use super::tenants::existing_tenant;
use crate::domain::ledger::{Account, Balances, Entry, NewAccount, Transfer};
use crate::{error, store};

impl Ledger {
    /// Opens an account once per key. The asset's first account fixes its scale; a later one
    /// with another scale is FAILED_PRECONDITION, and a second account of the same owner, asset
    /// and kind is ALREADY_EXISTS.
    pub async fn open_account(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        new: NewAccount,
    ) -> Result<Account, Error> {
        self.once(key, move |c| {
            Box::pin(async move {
                existing_tenant(&mut *c, tenant_id).await?;
                let scale =
                    store::accounts::asset_scale(c, tenant_id, &new.asset_code, new.asset_scale)
                        .await?;
                if scale != new.asset_scale {
                    return Err(error::asset_scale_mismatch(
                        &new.asset_code,
                        scale,
                        new.asset_scale,
                    )
                    .into());
                }
                let account = Account {
                    id: Uuid::now_v7(),
                    tenant_id,
                    asset_code: new.asset_code,
                    asset_scale: scale,
                    owner_ref: new.owner_ref,
                    kind: new.kind,
                    balance_limit: new.balance_limit,
                    metadata: new.metadata,
                    balances: Balances::default(),
                    entry_version: 0,
                    created_at: Utc::now(),
                };
                if !store::accounts::insert_account(c, &account).await? {
                    return Err(error::account_exists(
                        &account.owner_ref,
                        &account.asset_code,
                        &account.kind,
                    )
                    .into());
                }
                Ok(account)
            })
        })
        .await
    }

    /// The account with `id`; NOT_FOUND when the tenant has none.
    pub async fn account(&self, tenant_id: Uuid, id: Uuid) -> Result<Account, Error> {
        existing_account(&self.pool, tenant_id, id).await
    }

    /// The owner's accounts, by asset and kind.
    pub async fn accounts(&self, tenant_id: Uuid, owner_ref: &str) -> Result<Vec<Account>, Error> {
        store::accounts::list_accounts(&self.pool, tenant_id, owner_ref).await
    }

    /// The transfer with `id`, with the state of a pending one; NOT_FOUND when there is none.
    pub async fn transfer(&self, tenant_id: Uuid, id: Uuid) -> Result<Transfer, Error> {
        Ok(store::transfers::get_transfer(&self.pool, tenant_id, id)
            .await?
            .ok_or_else(|| error::transfer_not_found(id).at("transfer_id"))?)
    }

    /// An account's entries after `after_version`, by version.
    pub async fn entries(
        &self,
        tenant_id: Uuid,
        account_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<Entry>, Error> {
        existing_account(&self.pool, tenant_id, account_id).await?;
        store::accounts::list_entries(&self.pool, tenant_id, account_id, after_version, limit).await
    }

    /// An account's posted balance and entry version at `at`.
    pub async fn balance_at(
        &self,
        tenant_id: Uuid,
        account_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(i64, i64), Error> {
        existing_account(&self.pool, tenant_id, account_id).await?;
        store::accounts::balance_at(&self.pool, tenant_id, account_id, at).await
    }
}

/// The account, or ACCOUNT_NOT_FOUND naming `account_id`.
pub(crate) async fn existing_account(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Account, Error> {
    Ok(store::accounts::get_account(executor, tenant_id, id)
        .await?
        .ok_or_else(|| error::account_not_found(id).at("account_id"))?)
}
