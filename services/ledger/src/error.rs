//! The ledger's own refusals, on top of the runtime's vocabulary ([`phoenix_runtime::Error`],
//! [`phoenix_runtime::Refusal`]); the runtime maps them to gRPC, with ErrorInfo domain
//! `ledger.phoenix`. The rules' refusals (INSUFFICIENT_FUNDS, PENDING_NOT_OPEN…) live with
//! their rules in `domain`; these are the ones about what a call names.

use phoenix_runtime::{Error, Refusal, quote};
use uuid::Uuid;

pub use phoenix_runtime::fact;

/// A value read from the database that the code does not know: a broken invariant (a CHECK
/// holds every such column to the known values), never a database error.
pub fn unknown_stored(column: &str, value: &str) -> Error {
    Error::invariant(
        "STORED_VALUE_KNOWN",
        format!("unexpected {column} {} in the database", quote(value)),
    )
}

/// A JSON column that does not decode to what the code wrote into it.
pub fn undecodable_stored(column: &str, error: impl std::fmt::Display) -> Error {
    Error::invariant(
        "STORED_JSON_DECODES",
        format!("the {column} column does not decode: {error}"),
    )
}

pub fn tenant_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("TENANT_NOT_FOUND", format!("no tenant has id {id}"))
        .at("tenant_id")
        .with("tenant_id", id)
}

pub fn tenant_exists(slug: &str) -> Refusal {
    Refusal::already_exists(
        "TENANT_EXISTS",
        format!("a tenant with slug {} already exists", quote(slug)),
    )
    .at("slug")
    .with("slug", fact(slug))
}

/// With authentication on, a caller that is no ledger admin acts on its token's tenant.
pub fn no_tenant_in_token() -> Refusal {
    Refusal::permission_denied("NO_TENANT", "the caller's token names no tenant")
}

pub fn account_not_found(id: Uuid) -> Refusal {
    Refusal::not_found(
        "ACCOUNT_NOT_FOUND",
        format!("no account {id} in this tenant"),
    )
    .with("account_id", id)
}

pub fn account_exists(owner_ref: &str, asset_code: &str, kind: &str) -> Refusal {
    Refusal::already_exists(
        "ACCOUNT_EXISTS",
        format!(
            "{} already has a {} account of kind {}",
            quote(owner_ref),
            quote(asset_code),
            quote(kind)
        ),
    )
    .with("owner_ref", fact(owner_ref))
    .with("asset_code", fact(asset_code))
    .with("kind", fact(kind))
}

pub fn asset_scale_mismatch(asset_code: &str, scale: i16, asked: i16) -> Refusal {
    Refusal::precondition(
        "ASSET_SCALE_MISMATCH",
        format!(
            "asset {} has scale {scale} in this tenant, not {asked}",
            quote(asset_code)
        ),
    )
    .at("asset_scale")
    .with("asset_scale", scale)
}

pub fn transfer_not_found(id: Uuid) -> Refusal {
    Refusal::not_found(
        "TRANSFER_NOT_FOUND",
        format!("no transfer {id} in this tenant"),
    )
    .with("transfer_id", id)
}

/// A linked batch refused as a whole because of the transfer at `index`.
pub fn refused_in_batch(index: usize, refusal: Refusal) -> Refusal {
    let prefix = format!("transfers[{index}]");
    let message = format!("linked batch refused at {prefix}: {}", refusal.message);
    Refusal {
        message,
        ..refusal.within(&prefix).with("index", index)
    }
}

pub fn policy_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("POLICY_NOT_FOUND", format!("no policy {id} in this tenant")).at("policy_id")
}

pub fn item_not_found(sku: &str) -> Refusal {
    Refusal::not_found(
        "ITEM_NOT_FOUND",
        format!("no inventory item has sku {}", quote(sku)),
    )
    .at("sku")
    .with("sku", fact(sku))
}

pub fn item_exists(sku: &str) -> Refusal {
    Refusal::already_exists(
        "ITEM_EXISTS",
        format!("an inventory item with sku {} already exists", quote(sku)),
    )
    .at("sku")
    .with("sku", fact(sku))
}

pub fn reservation_not_found(id: Uuid) -> Refusal {
    Refusal::not_found(
        "RESERVATION_NOT_FOUND",
        format!("no reservation has id {id}"),
    )
    .at("reservation_id")
    .with("reservation_id", id)
}

pub fn import_batch_not_found(id: Uuid) -> Refusal {
    Refusal::not_found(
        "IMPORT_BATCH_NOT_FOUND",
        format!("the tenant has no import batch {id}"),
    )
    .at("batch_id")
    .with("batch_id", id)
}

pub fn shop_item_not_found(shop_item_id: &str) -> Refusal {
    Refusal::not_found(
        "SHOP_ITEM_NOT_FOUND",
        format!("no shop item has id {}", quote(shop_item_id)),
    )
    .at("shop_item_id")
    .with("shop_item_id", fact(shop_item_id))
}

/// A shop item's revenue account must hold the asset its price is in.
pub fn revenue_asset_mismatch(account_id: Uuid, account_asset: &str, price_asset: &str) -> Refusal {
    Refusal::precondition(
        "REVENUE_ASSET_MISMATCH",
        format!(
            "revenue account {account_id} holds {}, but the price is in {}",
            quote(account_asset),
            quote(price_asset)
        ),
    )
    .at("revenue_account_id")
    .with("revenue_account_id", account_id)
    .with("account_asset_code", fact(account_asset))
    .with("price_asset_code", fact(price_asset))
}
