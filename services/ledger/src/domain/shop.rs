//! The shop (seed 001's `shop_items`): what a tenant sells, for what price, and what buying it
//! gives. A shop item sells units of one inventory item (its `sku`): a purchase reserves them,
//! gives the buyer holdings of the same code and finally takes them out of stock. The price is
//! per unit, in one asset, debited from the buyer's wallet (owner = the user, kind
//! [`WALLET_KIND`], in the price's asset) and credited to the item's revenue account, which
//! holds the same asset (the database enforces that too). Unlocks are narrative ids the
//! coordinator applies after payment; this context does not know them and keeps them as given.
//!
//! An upsert replaces the item whole. One that changes nothing keeps the version, so a
//! repeated catalogue import does not bump every item.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use phoenix_runtime::Violations;

use super::ledger::is_asset_code;
use super::stock::{MAX_TEXT_CHARS, check_code};

/// Kind of the account a buyer pays from.
pub const WALLET_KIND: &str = "wallet";
/// Most narrative fragments one item unlocks (narrative's UnlockFragments takes 100).
pub const MAX_UNLOCK_FRAGMENTS: usize = 100;
/// Most narrative experiences one item unlocks.
pub const MAX_UNLOCK_EXPERIENCES: usize = 20;

/// One price: `amount` minor units of `asset_code` per unit bought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub asset_code: String,
    pub amount: i64,
}

/// What buying an item unlocks in the narrative, in the order the admin gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlocks {
    pub fragment_ids: Vec<Uuid>,
    pub experience_ids: Vec<Uuid>,
}

/// The fields of a shop item an upsert sets, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopItemSpec {
    pub shop_item_id: String,
    pub name: String,
    pub price: Price,
    pub sku: String,
    pub revenue_account_id: Uuid,
    pub unlocks: Unlocks,
    pub available: bool,
}

/// A stored shop item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopItem {
    pub tenant_id: Uuid,
    pub spec: ShopItemSpec,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// The raw fields of an upsert, as the caller sent them.
#[derive(Debug, Clone, Copy)]
pub struct ShopItemFields<'a> {
    pub shop_item_id: &'a str,
    pub name: &'a str,
    /// `None` when the caller sent no price.
    pub price: Option<(&'a str, i64)>,
    pub sku: &'a str,
    pub revenue_account_id: &'a str,
    pub fragment_ids: &'a [String],
    pub experience_ids: &'a [String],
    pub available: bool,
}

impl ShopItemSpec {
    /// Checks every field into `violations`; the value is only meaningful once they pass.
    pub fn parse(fields: ShopItemFields<'_>, violations: &mut Violations) -> Self {
        violations.take(check_code("shop_item_id", fields.shop_item_id));
        let name = fields.name.trim();
        violations.check(
            !name.is_empty()
                && name.chars().count() <= MAX_TEXT_CHARS
                && !name.chars().any(char::is_control),
            "name",
            "INVALID_NAME",
            "is required: 1-200 characters without control characters",
        );
        let price = parse_price(fields.price, violations);
        violations.take(check_code("sku", fields.sku));
        let revenue_account_id = violations.uuid("revenue_account_id", fields.revenue_account_id);
        let unlocks = Unlocks {
            fragment_ids: parse_ids(
                "unlocks.fragment_ids",
                fields.fragment_ids,
                MAX_UNLOCK_FRAGMENTS,
                violations,
            ),
            experience_ids: parse_ids(
                "unlocks.experience_ids",
                fields.experience_ids,
                MAX_UNLOCK_EXPERIENCES,
                violations,
            ),
        };
        Self {
            shop_item_id: fields.shop_item_id.to_owned(),
            name: name.to_owned(),
            price,
            sku: fields.sku.to_owned(),
            revenue_account_id,
            unlocks,
            available: fields.available,
        }
    }
}

impl ShopItem {
    /// What `amount` units cost, in minor units; `None` when it does not fit 64 bits.
    pub fn total_price(&self, quantity: i64) -> Option<i64> {
        self.spec.price.amount.checked_mul(quantity)
    }
}

fn parse_price(price: Option<(&str, i64)>, violations: &mut Violations) -> Price {
    let Some((asset_code, amount)) = price else {
        violations.add(
            "price",
            "REQUIRED",
            "is required: an asset code and an amount",
        );
        return Price {
            asset_code: String::new(),
            amount: 0,
        };
    };
    violations.check(
        is_asset_code(asset_code),
        "price.asset_code",
        "INVALID_ASSET_CODE",
        "must be 1-16 upper-case letters, digits or underscores, starting with a letter (e.g. BESITOS)",
    );
    violations.check(
        amount > 0,
        "price.amount",
        "INVALID_AMOUNT",
        "must be more than 0 minor units",
    );
    Price {
        asset_code: asset_code.to_owned(),
        amount,
    }
}

/// UUIDs, at most `max`, each once.
fn parse_ids(field: &str, ids: &[String], max: usize, violations: &mut Violations) -> Vec<Uuid> {
    if ids.len() > max {
        violations.add(
            field,
            "TOO_MANY",
            format!("at most {max} ids, got {}", ids.len()),
        );
        return Vec::new();
    }
    let mut parsed: Vec<Uuid> = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let id = violations.uuid(&format!("{field}[{index}]"), id);
        if !id.is_nil() && parsed.contains(&id) {
            violations.add(
                format!("{field}[{index}]"),
                "DUPLICATE_ID",
                format!("{id} is listed twice"),
            );
        }
        parsed.push(id);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_runtime::Refusal;

    const FRAGMENT: &str = "0b5e4a3c-9a43-4b8e-9d53-2d3f4c5b6a71";

    fn fields<'a>(fragments: &'a [String]) -> ShopItemFields<'a> {
        ShopItemFields {
            shop_item_id: "gem.red",
            name: " Red gem ",
            price: Some(("BESITOS", 50)),
            sku: "GEM-RED",
            revenue_account_id: "8f1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b",
            fragment_ids: fragments,
            experience_ids: &[],
            available: true,
        }
    }

    fn parsed(fields: ShopItemFields<'_>) -> Result<ShopItemSpec, Refusal> {
        let mut violations = Violations::new();
        let spec = ShopItemSpec::parse(fields, &mut violations);
        violations.finish().map(|()| spec)
    }

    fn bad_fields(refusal: Refusal) -> Vec<(String, String)> {
        refusal
            .violations
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect()
    }

    #[test]
    fn a_valid_item_is_trimmed_and_kept_whole() {
        let fragments = vec![FRAGMENT.to_owned()];
        let spec = parsed(fields(&fragments)).expect("valid");
        assert_eq!(spec.name, "Red gem");
        assert_eq!(spec.price.amount, 50);
        assert_eq!(spec.unlocks.fragment_ids.len(), 1);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let fragments = vec![FRAGMENT.to_owned(), FRAGMENT.to_owned(), "nope".to_owned()];
        let refusal = parsed(ShopItemFields {
            shop_item_id: "has space",
            name: "",
            price: Some(("besitos", 0)),
            sku: "",
            revenue_account_id: "x",
            ..fields(&fragments)
        })
        .expect_err("all bad");
        let found = bad_fields(refusal);
        let reasons: Vec<(&str, &str)> = found
            .iter()
            .map(|(f, r)| (f.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("shop_item_id", "INVALID_CODE"),
                ("name", "INVALID_NAME"),
                ("price.asset_code", "INVALID_ASSET_CODE"),
                ("price.amount", "INVALID_AMOUNT"),
                ("sku", "INVALID_CODE"),
                ("revenue_account_id", "INVALID_ID"),
                ("unlocks.fragment_ids[1]", "DUPLICATE_ID"),
                ("unlocks.fragment_ids[2]", "INVALID_ID"),
            ]
        );
    }

    #[test]
    fn a_missing_price_and_too_many_unlocks_are_refused() {
        let fragments: Vec<String> = (0..=MAX_UNLOCK_FRAGMENTS)
            .map(|_| Uuid::new_v4().to_string())
            .collect();
        let refusal = parsed(ShopItemFields {
            price: None,
            ..fields(&fragments)
        })
        .expect_err("bad");
        let found = bad_fields(refusal);
        assert_eq!(found[0], ("price".to_owned(), "REQUIRED".to_owned()));
        assert_eq!(
            found[1],
            ("unlocks.fragment_ids".to_owned(), "TOO_MANY".to_owned())
        );
    }

    #[test]
    fn the_total_price_never_overflows_silently() {
        let spec = parsed(fields(&[])).expect("valid");
        let item = ShopItem {
            tenant_id: Uuid::nil(),
            spec,
            version: 1,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(item.total_price(3), Some(150));
        assert_eq!(item.total_price(i64::MAX), None);
    }
}
