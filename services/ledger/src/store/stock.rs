//! Stock (inventory items and reservations) and holdings.
//!
//! The use cases lock the row they change (`FOR UPDATE`, the `lock_*` functions) before the
//! domain decides; `CHECK (reserved <= on_hand)` backs the rules whatever writes. Each change
//! bumps the row's `version` and appends an event at that version, in the same function, so
//! stream version == row version.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, NewEvent};

use super::events::types;
use crate::domain::stock::{
    Holding, HoldingChange, InventoryItem, NewInventoryItem, Reservation, ReservationState,
    StockLevels, actions,
};
use crate::error;

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

/// Inserts a new item with its `created` event, unless the sku is taken (`None`).
pub async fn insert_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewInventoryItem,
    now: DateTime<Utc>,
) -> Result<Option<InventoryItem>, Error> {
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
    let Some(created) = row.map(item) else {
        return Ok(None);
    };
    let event = ItemEvent {
        action: actions::CREATED,
        reservation_id: None,
        reason: "",
    };
    append_item_event(connection, &created, &event, now).await?;
    Ok(Some(created))
}

pub async fn get_item(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    sku: &str,
) -> Result<Option<InventoryItem>, Error> {
    let row: Option<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items WHERE tenant_id = $1 AND sku = $2"
    ))
    .bind(tenant_id)
    .bind(sku)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(item))
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
pub async fn lock_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    sku: &str,
) -> Result<Option<InventoryItem>, Error> {
    let row: Option<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items
         WHERE tenant_id = $1 AND sku = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(sku)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(item))
}

/// What an item's event says about a change.
#[derive(Debug, Clone, Copy)]
pub struct ItemEvent<'a> {
    pub action: &'static str,
    pub reservation_id: Option<Uuid>,
    pub reason: &'a str,
}

/// Stores new counts of a locked item, bumps its version and appends its event.
pub async fn update_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    sku: &str,
    levels: StockLevels,
    event: &ItemEvent<'_>,
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
    .fetch_one(&mut *connection)
    .await?;
    let changed = item(row);
    append_item_event(connection, &changed, event, now).await?;
    Ok(changed)
}

async fn append_item_event(
    connection: &mut PgConnection,
    item: &InventoryItem,
    event: &ItemEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let payload = pb::InventoryChanged {
        item: Some(crate::proto::inventory_item(item)),
        action: event.action.to_owned(),
        reservation_id: event
            .reservation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        reason: event.reason.to_owned(),
    };
    stream::append(
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

/// Inserts a new reservation; the answer is as stored (times to the microsecond).
pub async fn insert_reservation(
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
) -> Result<Option<Reservation>, Error> {
    let row: Option<ReservationRow> = sqlx::query_as(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?;
    row.map(reservation_from).transpose()
}

/// The reservation, locked until the transaction ends.
pub async fn lock_reservation(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Reservation>, Error> {
    let row: Option<ReservationRow> = sqlx::query_as(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations
         WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(reservation_from).transpose()
}

/// Stores a reservation's new state.
pub async fn update_reservation(
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

/// Open reservations of every tenant that are due at `now`, oldest first, locked; those a
/// concurrent commit or release holds are skipped (it decides them).
pub async fn lock_due_reservations(
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
pub async fn insert_empty_holding(
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
pub async fn lock_holding(
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
pub async fn update_holding(
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
    stream::append(
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
