//! Stock (inventory items and reservations) and holdings.
//!
//! Every change locks the row it changes (`FOR UPDATE`) before the domain decides, so two
//! concurrent reservations of the last unit are decided one after the other and the second sees
//! the first: stock is never oversold, and `CHECK (reserved <= on_hand)` backs that whatever
//! writes. Locks are taken reservation first, then item, everywhere (and items in key order by
//! the sweeper), so these transactions cannot deadlock one another. Each change bumps the row's
//! `version` and appends an event at that version, so stream version == row version.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::{self, NewEvent, types};
use super::tenants;
use crate::domain::stock::{
    Adjustment, Holding, HoldingChange, InventoryItem, NewInventoryItem, Reservation,
    ReservationRequest, ReservationState, Resolution, StockLevels, actions,
};
use crate::error::{self, item_not_found, reservation_not_found};
use crate::metrics;
use phoenix_runtime::Error;

/// Aggregate type of an item's event stream; its id is the sku.
pub const ITEM_AGGREGATE: &str = "inventory_item";
/// Aggregate type of a holding's event stream; its id is `<owner_ref>/<item_code>`.
pub const HOLDING_AGGREGATE: &str = "holding";

// Items.

type ItemRow = (Uuid, String, String, i64, i64, i64, DateTime<Utc>);

const ITEM_COLUMNS: &str = "tenant_id, sku, name, on_hand, reserved, version, updated_at";

fn item(row: ItemRow) -> InventoryItem {
    InventoryItem {
        tenant_id: row.0,
        sku: row.1,
        name: row.2,
        on_hand: row.3,
        reserved: row.4,
        version: row.5,
        updated_at: row.6,
    }
}

pub async fn create_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewInventoryItem,
    now: DateTime<Utc>,
) -> Result<InventoryItem, Error> {
    tenants::get(&mut *connection, tenant_id).await?;
    let row: Option<ItemRow> = sqlx::query_as(&format!(
        "INSERT INTO inventory_items (tenant_id, sku, name, on_hand, reserved, version, updated_at)
         VALUES ($1, $2, $3, $4, 0, 1, $5)
         ON CONFLICT (tenant_id, sku) DO NOTHING
         RETURNING {ITEM_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(&new.sku)
    .bind(&new.name)
    .bind(new.on_hand)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    let created = row.map(item).ok_or_else(|| error::item_exists(&new.sku))?;
    append_item_event(connection, &created, actions::CREATED, None, "", now).await?;
    Ok(created)
}

pub async fn get_item(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    sku: &str,
) -> Result<InventoryItem, Error> {
    let row: Option<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items WHERE tenant_id = $1 AND sku = $2"
    ))
    .bind(tenant_id)
    .bind(sku)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(item).ok_or_else(|| item_not_found(sku))?)
}

/// The tenant's items with sku after `after`, by sku.
pub async fn list_items(
    pool: &PgPool,
    tenant_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<InventoryItem>, Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items
         WHERE tenant_id = $1 AND ($2::text IS NULL OR sku > $2)
         ORDER BY sku LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(item).collect())
}

/// The item, locked until the transaction ends.
async fn lock_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    sku: &str,
) -> Result<InventoryItem, Error> {
    let row: Option<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items
         WHERE tenant_id = $1 AND sku = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(sku)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(item).ok_or_else(|| item_not_found(sku))?)
}

/// Stores new counts of a locked item and bumps its version.
async fn update_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    sku: &str,
    levels: StockLevels,
    now: DateTime<Utc>,
) -> Result<InventoryItem, Error> {
    let row: ItemRow = sqlx::query_as(&format!(
        "UPDATE inventory_items
         SET on_hand = $3, reserved = $4, version = version + 1, updated_at = $5
         WHERE tenant_id = $1 AND sku = $2
         RETURNING {ITEM_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(sku)
    .bind(levels.on_hand)
    .bind(levels.reserved)
    .bind(now)
    .fetch_one(connection)
    .await?;
    Ok(item(row))
}

async fn append_item_event(
    connection: &mut PgConnection,
    item: &InventoryItem,
    action: &str,
    reservation_id: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let payload = pb::InventoryChanged {
        item: Some(crate::proto::inventory_item(item)),
        action: action.to_owned(),
        reservation_id: reservation_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: reason.to_owned(),
    };
    events::append(
        connection,
        item.tenant_id,
        &[NewEvent::new(
            ITEM_AGGREGATE,
            &item.sku,
            item.version,
            types::INVENTORY_CHANGED,
            &payload,
            now,
        )],
    )
    .await
}

/// Adds or removes units on hand.
pub async fn adjust(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    adjustment: &Adjustment,
    now: DateTime<Utc>,
) -> Result<InventoryItem, Error> {
    let current = lock_item(connection, tenant_id, &adjustment.sku).await?;
    current.check_version(adjustment.expected_version)?;
    let levels = current.adjusted(adjustment.delta)?;
    let changed = update_item(connection, tenant_id, &adjustment.sku, levels, now).await?;
    append_item_event(
        connection,
        &changed,
        actions::ADJUSTED,
        None,
        &adjustment.reason,
        now,
    )
    .await?;
    Ok(changed)
}

// Reservations.

type ReservationRow = (
    Uuid,
    Uuid,
    String,
    i64,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const RESERVATION_COLUMNS: &str =
    "id, tenant_id, sku, quantity, state, reference, expires_at, created_at, resolved_at";

fn reservation_from(row: ReservationRow) -> Result<Reservation, Error> {
    let state = ReservationState::parse(&row.4)
        .ok_or_else(|| error::unknown_stored("reservation state", &row.4))?;
    Ok(Reservation {
        id: row.0,
        tenant_id: row.1,
        sku: row.2,
        quantity: row.3,
        state,
        reference: row.5,
        expires_at: row.6,
        created_at: row.7,
        resolved_at: row.8,
    })
}

/// Holds units of an item for a while: the item is locked, so the check of what is available
/// and the change of `reserved` cannot interleave with another reservation's.
pub async fn reserve(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    request: &ReservationRequest,
    now: DateTime<Utc>,
) -> Result<(Reservation, InventoryItem), Error> {
    let current = lock_item(connection, tenant_id, &request.sku).await?;
    current.check_version(request.expected_version)?;
    let levels = current.reserved_more(request.quantity)?;
    let opened = request.open(Uuid::now_v7(), tenant_id, now);
    // As stored: times to the microsecond.
    let reservation = insert_reservation(connection, &opened).await?;
    let changed = update_item(connection, tenant_id, &request.sku, levels, now).await?;
    append_item_event(
        connection,
        &changed,
        actions::RESERVED,
        Some(reservation.id),
        "",
        now,
    )
    .await?;
    Ok((reservation, changed))
}

async fn insert_reservation(
    connection: &mut PgConnection,
    reservation: &Reservation,
) -> Result<Reservation, Error> {
    let row: ReservationRow = sqlx::query_as(&format!(
        "INSERT INTO reservations
             (tenant_id, id, sku, quantity, state, reference, expires_at, created_at, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {RESERVATION_COLUMNS}"
    ))
    .bind(reservation.tenant_id)
    .bind(reservation.id)
    .bind(&reservation.sku)
    .bind(reservation.quantity)
    .bind(reservation.state.as_str())
    .bind(&reservation.reference)
    .bind(reservation.expires_at)
    .bind(reservation.created_at)
    .bind(reservation.resolved_at)
    .fetch_one(connection)
    .await?;
    reservation_from(row)
}

pub async fn get_reservation(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Reservation, Error> {
    let row: Option<ReservationRow> = sqlx::query_as(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?;
    reservation_from(row.ok_or_else(|| reservation_not_found(id))?)
}

/// The reservation, locked until the transaction ends.
async fn lock_reservation(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Reservation, Error> {
    let row: Option<ReservationRow> = sqlx::query_as(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations
         WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(connection)
    .await?;
    reservation_from(row.ok_or_else(|| reservation_not_found(id))?)
}

async fn update_reservation(
    connection: &mut PgConnection,
    reservation: &Reservation,
) -> Result<Reservation, Error> {
    let row: ReservationRow = sqlx::query_as(&format!(
        "UPDATE reservations SET state = $3, resolved_at = $4
         WHERE tenant_id = $1 AND id = $2
         RETURNING {RESERVATION_COLUMNS}"
    ))
    .bind(reservation.tenant_id)
    .bind(reservation.id)
    .bind(reservation.state.as_str())
    .bind(reservation.resolved_at)
    .fetch_one(connection)
    .await?;
    reservation_from(row)
}

/// Ends an open reservation: commit takes its units out of stock, release gives them back.
pub async fn resolve(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    resolution: Resolution,
    now: DateTime<Utc>,
) -> Result<(Reservation, InventoryItem), Error> {
    let current = lock_reservation(connection, tenant_id, id).await?;
    settle(connection, &current, resolution, now).await
}

/// Applies `resolution` to a locked reservation and its item.
async fn settle(
    connection: &mut PgConnection,
    current: &Reservation,
    resolution: Resolution,
    now: DateTime<Utc>,
) -> Result<(Reservation, InventoryItem), Error> {
    let (resolved, levels) = plan_settlement(connection, current, resolution, now).await?;
    apply_settlement(connection, &resolved, levels, resolution, now).await
}

/// Locks the reservation's item and lets the domain decide, writing nothing.
async fn plan_settlement(
    connection: &mut PgConnection,
    current: &Reservation,
    resolution: Resolution,
    now: DateTime<Utc>,
) -> Result<(Reservation, StockLevels), Error> {
    let resolved = current.resolved(resolution, now)?;
    let item = lock_item(connection, current.tenant_id, &current.sku).await?;
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
    let resolved = update_reservation(connection, resolved).await?;
    let changed = update_item(connection, resolved.tenant_id, &resolved.sku, levels, now).await?;
    append_item_event(
        connection,
        &changed,
        resolution.action(),
        Some(resolved.id),
        "",
        now,
    )
    .await?;
    Ok((resolved, changed))
}

/// Open reservations of every tenant that are due at `now`, oldest first, locked; those a
/// concurrent commit or release holds are skipped (it decides them).
async fn lock_due_reservations(
    connection: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Reservation>, Error> {
    let rows: Vec<ReservationRow> = sqlx::query_as(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations
         WHERE state = 'OPEN' AND expires_at <= $1
         ORDER BY expires_at LIMIT $2
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(reservation_from).collect()
}

/// Expires up to `limit` open reservations of every tenant whose `expires_at` is at or before
/// `now`: each becomes EXPIRED, its units become available again, its item's version is bumped
/// and an `expired` event appended, all in one transaction. Returns how many expired. Safe to
/// run next to commits, releases and other sweepers: rows another transaction holds are left
/// for the next sweep, and items are locked in key order. A reservation whose item cannot take
/// it back (a broken invariant, which `audit` reports) is logged and left open.
pub async fn expire_reservations(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<u64, Error> {
    let mut transaction = pool.begin().await?;
    let mut due = lock_due_reservations(&mut transaction, now, limit).await?;
    due.sort_by(|a, b| (a.tenant_id, &a.sku, a.id).cmp(&(b.tenant_id, &b.sku, b.id)));
    let mut expired = 0;
    for reservation in &due {
        let plan = plan_settlement(&mut transaction, reservation, Resolution::Expire, now).await;
        let (resolved, levels) = match plan {
            Ok(plan) => plan,
            Err(Error::Refused(refusal)) => {
                tracing::error!(
                    tenant_id = %reservation.tenant_id,
                    reservation_id = %reservation.id,
                    %refusal,
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
        metrics::get()
            .expired
            .get_or_create(&metrics::KindLabels {
                kind: "reservation".to_owned(),
            })
            .inc_by(expired);
        tracing::info!(expired, "reservations expired");
    }
    Ok(expired)
}

// Holdings.

type HoldingRow = (Uuid, String, String, i64, i64, DateTime<Utc>);

const HOLDING_COLUMNS: &str = "tenant_id, owner_ref, item_code, quantity, version, updated_at";

fn holding(row: HoldingRow) -> Holding {
    Holding {
        tenant_id: row.0,
        owner_ref: row.1,
        item_code: row.2,
        quantity: row.3,
        version: row.4,
        updated_at: row.5,
    }
}

/// Creates the holding's row (nothing owned, version 0) unless it exists, so that it can be
/// locked: concurrent first additions then queue on the row instead of racing to insert it.
/// The row is filled in by the same transaction, or rolled back with it.
async fn insert_empty_holding(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    change: &HoldingChange,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO holdings (tenant_id, owner_ref, item_code, quantity, version, updated_at)
         VALUES ($1, $2, $3, 0, 0, $4)
         ON CONFLICT (tenant_id, owner_ref, item_code) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(&change.owner_ref)
    .bind(&change.item_code)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// The holding, locked until the transaction ends; `None` if the owner never had the item.
async fn lock_holding(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    change: &HoldingChange,
) -> Result<Option<Holding>, Error> {
    let row: Option<HoldingRow> = sqlx::query_as(&format!(
        "SELECT {HOLDING_COLUMNS} FROM holdings
         WHERE tenant_id = $1 AND owner_ref = $2 AND item_code = $3 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(&change.owner_ref)
    .bind(&change.item_code)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(holding))
}

/// Stores the new quantity of a locked holding, bumps its version and appends its event.
async fn update_holding(
    connection: &mut PgConnection,
    current: &Holding,
    quantity: i64,
    now: DateTime<Utc>,
) -> Result<Holding, Error> {
    let row: HoldingRow = sqlx::query_as(&format!(
        "UPDATE holdings SET quantity = $4, version = version + 1, updated_at = $5
         WHERE tenant_id = $1 AND owner_ref = $2 AND item_code = $3
         RETURNING {HOLDING_COLUMNS}"
    ))
    .bind(current.tenant_id)
    .bind(&current.owner_ref)
    .bind(&current.item_code)
    .bind(quantity)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let changed = holding(row);
    let payload = pb::HoldingChanged {
        holding: Some(crate::proto::holding(&changed)),
        delta: quantity - current.quantity,
    };
    events::append(
        connection,
        changed.tenant_id,
        &[NewEvent::new(
            HOLDING_AGGREGATE,
            changed.stream_id(),
            changed.version,
            types::HOLDING_CHANGED,
            &payload,
            now,
        )],
    )
    .await?;
    Ok(changed)
}

/// Gives the owner `change.quantity` more units.
pub async fn add_holding(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    change: &HoldingChange,
    now: DateTime<Utc>,
) -> Result<Holding, Error> {
    tenants::get(&mut *connection, tenant_id).await?;
    insert_empty_holding(connection, tenant_id, change, now).await?;
    let current = lock_holding(connection, tenant_id, change)
        .await?
        .ok_or_else(|| {
            Error::invariant(
                "HOLDING_ROW_EXISTS",
                "the holding row inserted in this transaction is not there to lock",
            )
        })?;
    let quantity = current.added(change.quantity)?;
    update_holding(connection, &current, quantity, now).await
}

/// Takes `change.quantity` units from the owner; never more than owned.
pub async fn remove_holding(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    change: &HoldingChange,
    now: DateTime<Utc>,
) -> Result<Holding, Error> {
    let current = lock_holding(connection, tenant_id, change)
        .await?
        .unwrap_or_else(|| Holding::empty(tenant_id, &change.owner_ref, &change.item_code, now));
    let quantity = current.removed(change.quantity)?;
    update_holding(connection, &current, quantity, now).await
}

/// What the owner holds (quantity > 0), by item code.
pub async fn list_holdings(
    pool: &PgPool,
    tenant_id: Uuid,
    owner_ref: &str,
) -> Result<Vec<Holding>, Error> {
    let rows: Vec<HoldingRow> = sqlx::query_as(&format!(
        "SELECT {HOLDING_COLUMNS} FROM holdings
         WHERE tenant_id = $1 AND owner_ref = $2 AND quantity > 0
         ORDER BY item_code"
    ))
    .bind(tenant_id)
    .bind(owner_ref)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(holding).collect())
}

// Audit.

/// (tenant, aggregate type, aggregate id, row version, last stream version, events in stream).
type StreamMismatch = (Uuid, String, String, Option<i64>, Option<i64>, Option<i64>);

/// Checks the invariants of stock and holdings across every tenant, returning one line per
/// violation (none when all hold):
/// - an item's `reserved` is the sum of its OPEN reservations;
/// - 0 <= reserved <= on_hand;
/// - a holding's quantity is >= 0;
/// - an item's (and a holding's) event stream runs 1..=version without gaps, and no stream
///   exists for an item or holding that does not.
pub async fn audit(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let mut violations = Vec::new();

    let reserved: Vec<(Uuid, String, i64, String)> = sqlx::query_as(
        "SELECT i.tenant_id, i.sku, i.reserved, COALESCE(r.open, 0)::text
         FROM inventory_items i
         LEFT JOIN (SELECT tenant_id, sku, sum(quantity) AS open FROM reservations
                    WHERE state = 'OPEN' GROUP BY tenant_id, sku) r
                ON r.tenant_id = i.tenant_id AND r.sku = i.sku
         WHERE i.reserved <> COALESCE(r.open, 0)
         ORDER BY i.tenant_id, i.sku",
    )
    .fetch_all(pool)
    .await?;
    violations.extend(reserved.into_iter().map(|(tenant, sku, reserved, open)| {
        format!(
            "tenant {tenant} item {sku:?}: reserved is {reserved} but its open reservations hold {open}"
        )
    }));

    let levels: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "SELECT tenant_id, sku, on_hand, reserved FROM inventory_items
         WHERE reserved < 0 OR on_hand < 0 OR reserved > on_hand
         ORDER BY tenant_id, sku",
    )
    .fetch_all(pool)
    .await?;
    violations.extend(levels.into_iter().map(|(tenant, sku, on_hand, reserved)| {
        format!(
            "tenant {tenant} item {sku:?}: on_hand {on_hand} and reserved {reserved} break 0 <= reserved <= on_hand"
        )
    }));

    let negative: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, owner_ref, item_code, quantity FROM holdings
         WHERE quantity < 0
         ORDER BY tenant_id, owner_ref, item_code",
    )
    .fetch_all(pool)
    .await?;
    violations.extend(negative.into_iter().map(|(tenant, owner, item, quantity)| {
        format!("tenant {tenant} holding {owner:?}/{item:?}: quantity {quantity} is below zero")
    }));

    // Streams compared with their rows: the last version, and the count (fewer events than the
    // last version means a gap). A row at version 0 (a holding never committed) has no stream.
    let streams: Vec<StreamMismatch> = sqlx::query_as(
        "WITH rows AS (
                 SELECT tenant_id, 'inventory_item' AS aggregate_type, sku AS aggregate_id, version
                 FROM inventory_items
                 UNION ALL
                 SELECT tenant_id, 'holding', owner_ref || '/' || item_code, version
                 FROM holdings WHERE version > 0),
             streams AS (
                 SELECT tenant_id, aggregate_type, aggregate_id,
                        max(aggregate_version) AS last, count(*) AS events
                 FROM events WHERE aggregate_type IN ('inventory_item', 'holding')
                 GROUP BY tenant_id, aggregate_type, aggregate_id)
             SELECT tenant_id, aggregate_type, aggregate_id, r.version, s.last, s.events
             FROM rows r FULL JOIN streams s USING (tenant_id, aggregate_type, aggregate_id)
             WHERE r.version IS DISTINCT FROM s.last OR s.events IS DISTINCT FROM s.last
             ORDER BY tenant_id, aggregate_type, aggregate_id",
    )
    .fetch_all(pool)
    .await?;
    violations.extend(streams.into_iter().map(
        |(tenant, aggregate_type, id, version, last, events)| {
            let row = version.map_or("no row".to_owned(), |v| format!("row version {v}"));
            let stream = match (last, events) {
                (Some(last), Some(events)) => {
                    format!("stream version {last} with {events} events")
                }
                _ => "no events".to_owned(),
            };
            format!("tenant {tenant} {aggregate_type} {id:?}: {row} but {stream}")
        },
    ));

    Ok(violations)
}
