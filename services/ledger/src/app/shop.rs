//! The shop: the items a tenant sells. An upsert checks what the item names (its inventory item,
//! its revenue account and that account's asset) in the same transaction that writes it; the
//! foreign keys of `shop_items` back those checks whatever writes.

use chrono::Utc;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use uuid::Uuid;

use super::Ledger;
use super::tenants::existing_tenant;
use crate::domain::shop::{ShopItem, ShopItemSpec};
use crate::{error, store};

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upserted {
    pub item: ShopItem,
    /// The call created the item (else it replaced it, or found it as asked).
    pub created: bool,
}

/// One page of a tenant's shop items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopItemsPage {
    pub items: Vec<ShopItem>,
    /// The id the next page starts after; `None` on the last page.
    pub next_after: Option<String>,
}

impl Ledger {
    /// Creates or replaces a shop item, once per key. An upsert that changes nothing answers
    /// the item as it is, at its version.
    pub async fn upsert_shop_item(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        spec: ShopItemSpec,
    ) -> Result<Upserted, Error> {
        let upserted: Upserted = self
            .once(key, move |c| {
                Box::pin(async move {
                    existing_tenant(&mut *c, tenant_id).await?;
                    check_references(c, tenant_id, &spec).await?;
                    let now = Utc::now();
                    // A concurrent first upsert may insert between the lock and the insert:
                    // then the row exists, and the second round locks it.
                    for _ in 0..2 {
                        match store::shop::lock_shop_item(c, tenant_id, &spec.shop_item_id).await? {
                            Some(current) if current.spec == spec => {
                                return Ok(Upserted {
                                    item: current,
                                    created: false,
                                });
                            }
                            Some(_) => {
                                let item = store::shop::replace_shop_item(c, tenant_id, &spec, now)
                                    .await?;
                                return Ok(Upserted {
                                    item,
                                    created: false,
                                });
                            }
                            None => {
                                if let Some(item) =
                                    store::shop::insert_shop_item(c, tenant_id, &spec, now).await?
                                {
                                    return Ok(Upserted {
                                        item,
                                        created: true,
                                    });
                                }
                            }
                        }
                    }
                    Err(Error::invariant(
                        "SHOP_ITEM_UPSERT_CONVERGES",
                        "a shop item was neither found nor inserted twice in a row",
                    ))
                })
            })
            .await?;
        tracing::info!(
            %tenant_id,
            shop_item_id = %upserted.item.spec.shop_item_id,
            version = upserted.item.version,
            created = upserted.created,
            "shop item upserted"
        );
        Ok(upserted)
    }

    /// The shop item with `shop_item_id`; NOT_FOUND when the tenant has none.
    pub async fn shop_item(&self, tenant_id: Uuid, shop_item_id: &str) -> Result<ShopItem, Error> {
        existing_tenant(&self.pool, tenant_id).await?;
        Ok(
            store::shop::get_shop_item(&self.pool, tenant_id, shop_item_id)
                .await?
                .ok_or_else(|| error::shop_item_not_found(shop_item_id))?,
        )
    }

    /// Up to `limit` shop items with id after `after`, by id, and the id the next page starts
    /// after, when there is one (one more item is read to know).
    pub async fn shop_items(
        &self,
        tenant_id: Uuid,
        after: Option<&str>,
        only_available: bool,
        limit: i64,
    ) -> Result<ShopItemsPage, Error> {
        existing_tenant(&self.pool, tenant_id).await?;
        let mut items = store::shop::list_shop_items(
            &self.pool,
            tenant_id,
            after,
            only_available,
            limit.saturating_add(1),
        )
        .await?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        if more {
            items.pop();
        }
        let next_after = more
            .then(|| items.last().map(|item| item.spec.shop_item_id.clone()))
            .flatten();
        Ok(ShopItemsPage { items, next_after })
    }
}

/// The inventory item and the revenue account exist, and the account holds the price's asset.
async fn check_references(
    connection: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    spec: &ShopItemSpec,
) -> Result<(), Error> {
    if store::stock::get_item(&mut *connection, tenant_id, &spec.sku)
        .await?
        .is_none()
    {
        return Err(error::item_not_found(&spec.sku).into());
    }
    let account =
        store::accounts::get_account(&mut *connection, tenant_id, spec.revenue_account_id)
            .await?
            .ok_or_else(|| {
                error::account_not_found(spec.revenue_account_id).at("revenue_account_id")
            })?;
    if account.asset_code != spec.price.asset_code {
        return Err(error::revenue_asset_mismatch(
            account.id,
            &account.asset_code,
            &spec.price.asset_code,
        )
        .into());
    }
    Ok(())
}
