//! Shop items. An upsert locks the item's row (`lock_shop_item`) before it decides; a change
//! bumps the row's version and appends its event at that version in the same function, so
//! stream version == row version.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, NewEvent};

use super::events::types;
use crate::domain::shop::{Price, ShopItem, ShopItemSpec, Unlocks};

/// Aggregate type of a shop item's event stream; its id is the shop item id.
pub const SHOP_ITEM_AGGREGATE: &str = "shop_item";

type ShopItemRow = (
    Uuid,
    String,
    String,
    String,
    i64,
    String,
    Uuid,
    Vec<Uuid>,
    Vec<Uuid>,
    bool,
    i64,
    DateTime<Utc>,
);

const COLUMNS: &str = "tenant_id, shop_item_id, name, price_asset_code, price_amount, sku, \
     revenue_account_id, unlock_fragment_ids, unlock_experience_ids, available, version, updated_at";

fn shop_item(row: ShopItemRow) -> ShopItem {
    ShopItem {
        tenant_id: row.0,
        spec: ShopItemSpec {
            shop_item_id: row.1,
            name: row.2,
            price: Price {
                asset_code: row.3,
                amount: row.4,
            },
            sku: row.5,
            revenue_account_id: row.6,
            unlocks: Unlocks {
                fragment_ids: row.7,
                experience_ids: row.8,
            },
            available: row.9,
        },
        version: row.10,
        updated_at: row.11,
    }
}

pub async fn get_shop_item(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    shop_item_id: &str,
) -> Result<Option<ShopItem>, Error> {
    let row: Option<ShopItemRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM shop_items WHERE tenant_id = $1 AND shop_item_id = $2"
    ))
    .bind(tenant_id)
    .bind(shop_item_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(shop_item))
}

/// The shop item, locked until the transaction ends.
pub async fn lock_shop_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    shop_item_id: &str,
) -> Result<Option<ShopItem>, Error> {
    let row: Option<ShopItemRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM shop_items
         WHERE tenant_id = $1 AND shop_item_id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(shop_item_id)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(shop_item))
}

/// The tenant's shop items with id after `after`, by id; only the available ones when asked.
pub async fn list_shop_items(
    pool: &PgPool,
    tenant_id: Uuid,
    after: Option<&str>,
    only_available: bool,
    limit: i64,
) -> Result<Vec<ShopItem>, Error> {
    let rows: Vec<ShopItemRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM shop_items
         WHERE tenant_id = $1 AND ($2::text IS NULL OR shop_item_id > $2)
           AND (NOT $3 OR available)
         ORDER BY shop_item_id LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(only_available)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(shop_item).collect())
}

/// Inserts a new shop item at version 1 with its `created` event, unless the id is taken
/// (`None`: a concurrent upsert created it first).
pub async fn insert_shop_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    spec: &ShopItemSpec,
    now: DateTime<Utc>,
) -> Result<Option<ShopItem>, Error> {
    let sql = format!(
        "INSERT INTO shop_items ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11)
         ON CONFLICT (tenant_id, shop_item_id) DO NOTHING
         RETURNING {COLUMNS}"
    );
    let row: Option<ShopItemRow> = with_spec(sqlx::query_as(&sql), tenant_id, spec, now)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(item) = row.map(shop_item) else {
        return Ok(None);
    };
    append_event(connection, &item, actions::CREATED, now).await?;
    Ok(Some(item))
}

/// Replaces a locked shop item with `spec`, bumps its version and appends its `replaced` event.
pub async fn replace_shop_item(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    spec: &ShopItemSpec,
    now: DateTime<Utc>,
) -> Result<ShopItem, Error> {
    let sql = format!(
        "UPDATE shop_items SET
             name = $3, price_asset_code = $4, price_amount = $5, sku = $6,
             revenue_account_id = $7, unlock_fragment_ids = $8, unlock_experience_ids = $9,
             available = $10, version = version + 1, updated_at = $11
         WHERE tenant_id = $1 AND shop_item_id = $2
         RETURNING {COLUMNS}"
    );
    let row: ShopItemRow = with_spec(sqlx::query_as(&sql), tenant_id, spec, now)
        .fetch_one(&mut *connection)
        .await?;
    let item = shop_item(row);
    append_event(connection, &item, actions::REPLACED, now).await?;
    Ok(item)
}

type ShopItemQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, ShopItemRow, sqlx::postgres::PgArguments>;

/// Binds $1..$11 of the insert and the replace: the key, the spec's fields, the time.
fn with_spec<'q>(
    query: ShopItemQuery<'q>,
    tenant_id: Uuid,
    spec: &'q ShopItemSpec,
    now: DateTime<Utc>,
) -> ShopItemQuery<'q> {
    query
        .bind(tenant_id)
        .bind(&spec.shop_item_id)
        .bind(&spec.name)
        .bind(&spec.price.asset_code)
        .bind(spec.price.amount)
        .bind(&spec.sku)
        .bind(spec.revenue_account_id)
        .bind(&spec.unlocks.fragment_ids)
        .bind(&spec.unlocks.experience_ids)
        .bind(spec.available)
        .bind(now)
}

/// What a shop item's event says happened.
pub mod actions {
    pub const CREATED: &str = "created";
    pub const REPLACED: &str = "replaced";
}

async fn append_event(
    connection: &mut PgConnection,
    item: &ShopItem,
    action: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let payload = pb::ShopItemChanged {
        item: Some(crate::proto::shop_item(item)),
        action: action.to_owned(),
    };
    stream::append(
        connection,
        item.tenant_id,
        &[NewEvent::new(
            SHOP_ITEM_AGGREGATE,
            &item.spec.shop_item_id,
            item.version,
            types::SHOP_ITEM_CHANGED,
            &payload,
            now,
        )],
    )
    .await
}
