//! Stock and holdings: a tenant's inventory with reservations, and the items its users own.
//!
//! Every change locks the row it changes before the domain decides, so two concurrent
//! reservations of the last unit are decided one after the other and the second sees the
//! first: stock is never oversold. Locks are taken reservation first, then item, everywhere
//! (and items in key order by the sweeper), so these transactions cannot deadlock one another.

use chrono::{DateTime, Utc};
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::{Error, RefusalKind};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Ledger;
use super::tenants::existing_tenant;
use crate::domain::stock::{
    Adjustment, Holding, HoldingChange, InventoryItem, NewInventoryItem, Reservation,
    ReservationRequest, Resolution, StockLevels, actions,
};
use crate::store::stock::ItemEvent;
use crate::{error, metrics, store};

/// Which way a holding call moves units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldingMove {
    Add,
    Remove,
}

/// One page of a tenant's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsPage {
    pub items: Vec<InventoryItem>,
    /// The sku the next page starts after; `None` on the last page.
    pub next_after: Option<String>,
}

impl Ledger {
    /// Creates an item once per key; a sku already taken is ALREADY_EXISTS.
    pub async fn create_item(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        new: NewInventoryItem,
    ) -> Result<InventoryItem, Error> {
        let now = Utc::now();
        let item: InventoryItem = counted(
            self.once(key, move |c| {
                Box::pin(async move {
                    existing_tenant(&mut *c, tenant_id).await?;
                    Ok(store::stock::insert_item(c, tenant_id, &new, now)
                        .await?
                        .ok_or_else(|| error::item_exists(&new.sku))?)
                })
            })
            .await,
        )?;
        tracing::info!(%tenant_id, sku = %item.sku, "inventory item created");
        Ok(item)
    }

    /// The item with `sku`; NOT_FOUND when the tenant has none.
    pub async fn item(&self, tenant_id: Uuid, sku: &str) -> Result<InventoryItem, Error> {
        let found = store::stock::get_item(&self.pool, tenant_id, sku).await?;
        counted(found.ok_or_else(|| error::item_not_found(sku).into()))
    }

    /// Up to `limit` items with sku after `after`, by sku, and the sku the next page starts
    /// after, when there is one (one more item is read to know).
    pub async fn items(
        &self,
        tenant_id: Uuid,
        after: Option<&str>,
        limit: i64,
    ) -> Result<ItemsPage, Error> {
        let mut items =
            store::stock::list_items(&self.pool, tenant_id, after, limit.saturating_add(1)).await?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        if more {
            items.pop();
        }
        let next_after = more
            .then(|| items.last().map(|item| item.sku.clone()))
            .flatten();
        Ok(ItemsPage { items, next_after })
    }

    /// Adds or removes units on hand, once per key.
    pub async fn adjust_item(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        adjustment: Adjustment,
    ) -> Result<InventoryItem, Error> {
        let now = Utc::now();
        let adjusted = self.once(key, move |c| {
            Box::pin(async move {
                let current = locked_item(c, tenant_id, &adjustment.sku).await?;
                current.check_version(adjustment.expected_version)?;
                let levels = current.adjusted(adjustment.delta)?;
                let event = ItemEvent {
                    action: actions::ADJUSTED,
                    reservation_id: None,
                    reason: &adjustment.reason,
                };
                store::stock::update_item(c, tenant_id, &adjustment.sku, levels, &event, now).await
            })
        });
        counted(adjusted.await)
    }

    /// Holds units of an item for a while, once per key: the item is locked, so the check of
    /// what is available and the change of `reserved` cannot interleave with another's.
    pub async fn reserve(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        request: ReservationRequest,
    ) -> Result<(Reservation, InventoryItem), Error> {
        let now = Utc::now();
        let reserved = self.once(key, move |c| {
            Box::pin(async move {
                let current = locked_item(c, tenant_id, &request.sku).await?;
                current.check_version(request.expected_version)?;
                let levels = current.reserved_more(request.quantity)?;
                let opened = request.open(Uuid::now_v7(), tenant_id, now);
                let reservation = store::stock::insert_reservation(c, &opened).await?;
                let event = ItemEvent {
                    action: actions::RESERVED,
                    reservation_id: Some(reservation.id),
                    reason: "",
                };
                let item =
                    store::stock::update_item(c, tenant_id, &request.sku, levels, &event, now)
                        .await?;
                Ok((reservation, item))
            })
        });
        counted(reserved.await)
    }

    /// Ends an open reservation once per key: commit takes its units out of stock, release
    /// gives them back.
    pub async fn resolve_reservation(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        id: Uuid,
        resolution: Resolution,
    ) -> Result<(Reservation, InventoryItem), Error> {
        let now = Utc::now();
        let resolved = self.once(key, move |c| {
            Box::pin(async move {
                let current = store::stock::lock_reservation(c, tenant_id, id)
                    .await?
                    .ok_or_else(|| error::reservation_not_found(id))?;
                let (resolved, levels) = plan_settlement(c, &current, resolution, now).await?;
                apply_settlement(c, &resolved, levels, resolution, now).await
            })
        });
        counted(resolved.await)
    }

    /// The reservation with `id`; NOT_FOUND when the tenant has none.
    pub async fn reservation(&self, tenant_id: Uuid, id: Uuid) -> Result<Reservation, Error> {
        let found = store::stock::get_reservation(&self.pool, tenant_id, id).await?;
        counted(found.ok_or_else(|| error::reservation_not_found(id).into()))
    }

    /// Gives or takes units of an item to or from its owner, once per key; never below zero.
    pub async fn change_holding(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        change: HoldingChange,
        direction: HoldingMove,
    ) -> Result<Holding, Error> {
        let now = Utc::now();
        let changed = self.once(key, move |c| {
            Box::pin(async move {
                let (current, quantity) = match direction {
                    HoldingMove::Add => {
                        existing_tenant(&mut *c, tenant_id).await?;
                        // Concurrent first additions queue on the row instead of racing to
                        // insert it.
                        store::stock::insert_empty_holding(c, tenant_id, &change, now).await?;
                        let current = store::stock::lock_holding(c, tenant_id, &change)
                            .await?
                            .ok_or_else(|| {
                                Error::invariant(
                                    "HOLDING_ROW_EXISTS",
                                    "the holding row inserted in this transaction is not there",
                                )
                            })?;
                        let quantity = current.added(change.quantity)?;
                        (current, quantity)
                    }
                    HoldingMove::Remove => {
                        let current = store::stock::lock_holding(c, tenant_id, &change)
                            .await?
                            .unwrap_or_else(|| {
                                Holding::empty(tenant_id, &change.owner_ref, &change.item_code, now)
                            });
                        let quantity = current.removed(change.quantity)?;
                        (current, quantity)
                    }
                };
                store::stock::update_holding(c, &current, quantity, now).await
            })
        });
        counted(changed.await)
    }

    /// What the owner holds (quantity > 0), by item code.
    pub async fn holdings(&self, tenant_id: Uuid, owner_ref: &str) -> Result<Vec<Holding>, Error> {
        store::stock::list_holdings(&self.pool, tenant_id, owner_ref).await
    }

    /// Expires up to `limit` open reservations of every tenant whose `expires_at` is at or
    /// before `now` (the sweeper): each becomes EXPIRED, its units become available again, its
    /// item's version is bumped and an `expired` event appended, all in one transaction.
    /// Returns how many expired. Safe next to commits, releases and other sweepers: rows
    /// another transaction holds are left for the next sweep, and items are locked in key
    /// order. A reservation whose item cannot take it back (a broken invariant, which the
    /// auditor reports) is logged and left open.
    pub async fn expire_reservations(&self, now: DateTime<Utc>, limit: i64) -> Result<u64, Error> {
        let mut transaction = self.pool.begin().await?;
        let mut due = store::stock::lock_due_reservations(&mut transaction, now, limit).await?;
        due.sort_by(|a, b| (a.tenant_id, &a.sku, a.id).cmp(&(b.tenant_id, &b.sku, b.id)));
        let mut expired = 0;
        for reservation in &due {
            let plan =
                plan_settlement(&mut transaction, reservation, Resolution::Expire, now).await;
            let (resolved, levels) = match plan {
                Ok(plan) => plan,
                Err(error @ (Error::Refused(_) | Error::Invariant { .. })) => {
                    tracing::error!(
                        tenant_id = %reservation.tenant_id,
                        reservation_id = %reservation.id,
                        %error,
                        "a due reservation could not expire"
                    );
                    continue;
                }
                Err(error) => return Err(error),
            };
            apply_settlement(&mut transaction, &resolved, levels, Resolution::Expire, now).await?;
            expired += 1;
        }
        transaction.commit().await?;
        if expired > 0 {
            self.events.appended();
            metrics::expired("reservation", expired);
            tracing::info!(expired, "reservations expired");
        }
        Ok(expired)
    }
}

/// `result`, with a refusal of a rule (not of validation) counted by its reason.
fn counted<T>(result: Result<T, Error>) -> Result<T, Error> {
    if let Err(Error::Refused(refusal)) = &result
        && refusal.kind != RefusalKind::Invalid
    {
        metrics::refused(&refusal.reason);
    }
    result
}

/// The item, locked for the transaction; NOT_FOUND when the tenant has none.
async fn locked_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    sku: &str,
) -> Result<InventoryItem, Error> {
    Ok(store::stock::lock_item(connection, tenant_id, sku)
        .await?
        .ok_or_else(|| error::item_not_found(sku))?)
}

/// Locks a locked reservation's item and lets the domain decide, writing nothing.
async fn plan_settlement(
    connection: &mut PgConnection,
    current: &Reservation,
    resolution: Resolution,
    now: DateTime<Utc>,
) -> Result<(Reservation, StockLevels), Error> {
    let resolved = current.resolved(resolution, now)?;
    let item = locked_item(connection, current.tenant_id, &current.sku).await?;
    let levels = item.settled(current.quantity, resolution)?;
    Ok((resolved, levels))
}

async fn apply_settlement(
    connection: &mut PgConnection,
    resolved: &Reservation,
    levels: StockLevels,
    resolution: Resolution,
    now: DateTime<Utc>,
) -> Result<(Reservation, InventoryItem), Error> {
    let resolved = store::stock::update_reservation(connection, resolved).await?;
    let event = ItemEvent {
        action: resolution.action(),
        reservation_id: Some(resolved.id),
        reason: "",
    };
    let item = store::stock::update_item(
        connection,
        resolved.tenant_id,
        &resolved.sku,
        levels,
        &event,
        now,
    )
    .await?;
    Ok((resolved, item))
}
