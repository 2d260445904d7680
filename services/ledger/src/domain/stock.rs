//! Stock and holdings: a tenant's inventory (seed 003's `stock.inventory_items` with its
//! reserve/release functions) and the items its users own (seed 001's game inventory).
//!
//! An item's units are `on_hand`; `reserved` of them are held by open reservations, and only the
//! rest (`available`) can be reserved, so stock is never oversold. A reservation is OPEN until it
//! is committed (its units leave stock for good), released on request, or expired by the sweeper
//! (its units become available again). Every change bumps the item's `version`, which callers may
//! pass back as `expected_version` to change it only if nobody else did meanwhile.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use phoenix_runtime::{Error, Violations, quote};

use super::owner::check_owner_ref;
use super::{Refusal, RefusalKind};

/// How long a reservation holds its units when the caller does not say.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::minutes(15);
/// The shortest a reservation may hold its units (times are stored to the microsecond).
pub const MIN_RESERVATION_TTL: Duration = Duration::seconds(1);
/// The longest a reservation may hold its units.
pub const MAX_RESERVATION_TTL: Duration = Duration::days(30);
/// Longest sku or item code, in characters.
pub const MAX_CODE_CHARS: usize = 64;
/// Longest free text (names, references, reasons), in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// One sku of a tenant's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub tenant_id: Uuid,
    pub sku: String,
    pub name: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// An item's unit counts after a change, before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevels {
    pub on_hand: i64,
    pub reserved: i64,
}

impl InventoryItem {
    /// What a new reservation may take.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Optimistic locking: with `expected` set, the item must still be at that version.
    pub fn check_version(&self, expected: Option<i64>) -> Result<(), Refusal> {
        match expected {
            Some(expected) if expected != self.version => Err(Refusal::new(
                RefusalKind::Conflict,
                "VERSION_CONFLICT",
                format!(
                    "item {} is at version {}, not {expected}; read it again and retry",
                    quote(&self.sku),
                    self.version
                ),
            )
            .at("expected_version")
            .with("sku", &self.sku)
            .with("current_version", self.version)),
            _ => Ok(()),
        }
    }

    /// Adds (restock) or removes (shrinkage) units; never below the reserved units, because
    /// those are promised to open reservations.
    pub fn adjusted(&self, delta: i64) -> Result<StockLevels, Refusal> {
        let on_hand = self.on_hand.checked_add(delta).ok_or_else(|| {
            Refusal::precondition(
                "QUANTITY_OVERFLOW",
                format!(
                    "{} on hand plus {delta} does not fit in 64 bits",
                    self.on_hand
                ),
            )
            .at("delta")
            .with("on_hand", self.on_hand)
        })?;
        if on_hand < self.reserved {
            return Err(Refusal::precondition(
                "BELOW_RESERVED",
                format!(
                    "{} on hand plus {delta} would leave fewer than the {} units reserved",
                    self.on_hand, self.reserved
                ),
            )
            .at("delta")
            .with("on_hand", self.on_hand)
            .with("reserved", self.reserved)
            .with("available", self.available()));
        }
        Ok(StockLevels {
            on_hand,
            reserved: self.reserved,
        })
    }

    /// Holds `quantity` more units, if that many are available.
    pub fn reserved_more(&self, quantity: i64) -> Result<StockLevels, Refusal> {
        let available = self.available();
        if quantity > available {
            return Err(Refusal::precondition(
                "INSUFFICIENT_STOCK",
                format!(
                    "item {} has {available} units available, {quantity} were asked for",
                    quote(&self.sku)
                ),
            )
            .at("quantity")
            .with("sku", &self.sku)
            .with("available", available));
        }
        // quantity <= on_hand - reserved, so reserved + quantity <= on_hand cannot overflow.
        Ok(StockLevels {
            on_hand: self.on_hand,
            reserved: self.reserved + quantity,
        })
    }

    /// The counts once an open reservation of `quantity` units ends as `outcome`: committing
    /// takes the units out of stock, releasing or expiring makes them available again. An
    /// item that cannot settle it has lost track of its reservations (`reserved` is the sum of
    /// the open ones): a broken invariant, which the auditor reports too.
    pub fn settled(&self, quantity: i64, outcome: Resolution) -> Result<StockLevels, Error> {
        let reserved = self.reserved.checked_sub(quantity).filter(|r| *r >= 0);
        let on_hand = match outcome {
            Resolution::Commit => self.on_hand.checked_sub(quantity).filter(|o| *o >= 0),
            Resolution::Release | Resolution::Expire => Some(self.on_hand),
        };
        match (on_hand, reserved) {
            (Some(on_hand), Some(reserved)) if reserved <= on_hand => {
                Ok(StockLevels { on_hand, reserved })
            }
            _ => Err(Error::invariant(
                "STOCK_INCONSISTENT",
                format!(
                    "item {} of tenant {} has {} on hand and {} reserved, which cannot settle a \
                     reservation of {quantity}",
                    quote(&self.sku),
                    self.tenant_id,
                    self.on_hand,
                    self.reserved
                ),
            )),
        }
    }
}

/// An item to create, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInventoryItem {
    pub sku: String,
    pub name: String,
    pub on_hand: i64,
}

impl NewInventoryItem {
    /// Checks every field into `violations`; the value is only meaningful once they pass.
    pub fn parse(sku: &str, name: &str, on_hand: i64, violations: &mut Violations) -> Self {
        violations.take(check_code("sku", sku));
        let name = name.trim();
        violations.check(
            !name.is_empty() && is_text(name),
            "name",
            "INVALID_NAME",
            "is required: 1-200 characters without control characters",
        );
        violations.check(
            on_hand >= 0,
            "on_hand",
            "INVALID_QUANTITY",
            "must be zero or more units",
        );
        Self {
            sku: sku.to_owned(),
            name: name.to_owned(),
            on_hand,
        }
    }
}

/// A change of units on hand, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub sku: String,
    pub delta: i64,
    pub expected_version: Option<i64>,
    pub reason: String,
}

impl Adjustment {
    /// Checks every field into `violations`; the value is only meaningful once they pass.
    pub fn parse(
        sku: &str,
        delta: i64,
        expected_version: Option<i64>,
        reason: &str,
        violations: &mut Violations,
    ) -> Self {
        violations.take(check_code("sku", sku));
        violations.check(
            delta != 0,
            "delta",
            "INVALID_QUANTITY",
            "must not be zero: units to add (> 0) or remove (< 0)",
        );
        violations.take(check_expected_version(expected_version));
        let reason = reason.trim();
        violations.check(
            is_text(reason),
            "reason",
            "INVALID_REASON",
            "must be at most 200 characters without control characters",
        );
        Self {
            sku: sku.to_owned(),
            delta,
            expected_version,
            reason: reason.to_owned(),
        }
    }
}

/// A request to hold units, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub sku: String,
    pub quantity: i64,
    pub expected_version: Option<i64>,
    pub ttl: Duration,
    pub reference: String,
}

impl ReservationRequest {
    /// `ttl` is `None` when the caller did not send one (the default applies); the API has
    /// already refused a non-positive one. Checks every field into `violations`; the value is
    /// only meaningful once they pass.
    pub fn parse(
        sku: &str,
        quantity: i64,
        expected_version: Option<i64>,
        ttl: Option<Duration>,
        reference: &str,
        violations: &mut Violations,
    ) -> Self {
        violations.take(check_code("sku", sku));
        violations.take(check_quantity(quantity));
        violations.take(check_expected_version(expected_version));
        let ttl = ttl.unwrap_or(DEFAULT_RESERVATION_TTL);
        violations.check(
            (MIN_RESERVATION_TTL..=MAX_RESERVATION_TTL).contains(&ttl),
            "ttl",
            "INVALID_TTL",
            "must be between 1 second and 30 days (default 15 minutes)",
        );
        let reference = reference.trim();
        violations.check(
            is_text(reference),
            "reference",
            "INVALID_REFERENCE",
            "must be at most 200 characters without control characters",
        );
        Self {
            sku: sku.to_owned(),
            quantity,
            expected_version,
            ttl,
            reference: reference.to_owned(),
        }
    }

    /// The reservation this request makes at `now`.
    pub fn open(&self, id: Uuid, tenant_id: Uuid, now: DateTime<Utc>) -> Reservation {
        Reservation {
            id,
            tenant_id,
            sku: self.sku.clone(),
            quantity: self.quantity,
            state: ReservationState::Open,
            reference: self.reference.clone(),
            // ttl is at most 30 days, so this only saturates at the end of time.
            expires_at: now
                .checked_add_signed(self.ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            created_at: now,
            resolved_at: None,
        }
    }
}

/// Where a reservation stands. Only OPEN ones change; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReservationState {
    Open,
    Committed,
    Released,
    Expired,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Open, Self::Committed, Self::Released, Self::Expired]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// How an open reservation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The units leave stock for good.
    Commit,
    /// The caller gives the units back.
    Release,
    /// The sweeper gives the units back after `expires_at`.
    Expire,
}

impl Resolution {
    /// The state it leads to.
    pub fn state(self) -> ReservationState {
        match self {
            Self::Commit => ReservationState::Committed,
            Self::Release => ReservationState::Released,
            Self::Expire => ReservationState::Expired,
        }
    }

    /// The action recorded in the item's event.
    pub fn action(self) -> &'static str {
        match self {
            Self::Commit => actions::COMMITTED,
            Self::Release => actions::RELEASED,
            Self::Expire => actions::EXPIRED,
        }
    }
}

/// Units of an item held for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub sku: String,
    pub quantity: i64,
    pub state: ReservationState,
    pub reference: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Reservation {
    /// The reservation once `resolution` applies at `now`. Only an OPEN reservation can be
    /// resolved; one past its expiry can no longer be committed (its units are due back), only
    /// released or expired; and the sweeper expires only those that are due.
    pub fn resolved(&self, resolution: Resolution, now: DateTime<Utc>) -> Result<Self, Refusal> {
        if self.state != ReservationState::Open {
            return Err(Refusal::precondition(
                "RESERVATION_NOT_OPEN",
                format!(
                    "reservation {} is {}; only an OPEN reservation can be committed or released",
                    self.id,
                    self.state.as_str()
                ),
            )
            .at("reservation_id")
            .with("reservation_id", self.id)
            .with("state", self.state.as_str()));
        }
        let due = now >= self.expires_at;
        match resolution {
            Resolution::Commit if due => {
                return Err(Refusal::precondition(
                    "RESERVATION_EXPIRED",
                    format!(
                        "reservation {} expired at {}; its units are going back to stock",
                        self.id,
                        self.expires_at.to_rfc3339()
                    ),
                )
                .at("reservation_id")
                .with("reservation_id", self.id)
                .with("expire_time", self.expires_at.to_rfc3339()));
            }
            Resolution::Expire if !due => {
                return Err(Refusal::precondition(
                    "RESERVATION_NOT_DUE",
                    format!(
                        "reservation {} is not due until {}",
                        self.id, self.expires_at
                    ),
                )
                .with("reservation_id", self.id));
            }
            _ => {}
        }
        Ok(Self {
            state: resolution.state(),
            resolved_at: Some(now),
            ..self.clone()
        })
    }
}

/// What the item's events say happened (`InventoryChanged.action`).
pub mod actions {
    pub const CREATED: &str = "created";
    pub const ADJUSTED: &str = "adjusted";
    pub const RESERVED: &str = "reserved";
    pub const RELEASED: &str = "released";
    pub const COMMITTED: &str = "committed";
    pub const EXPIRED: &str = "expired";
}

/// Units of an item a user owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub tenant_id: Uuid,
    pub owner_ref: String,
    pub item_code: String,
    pub quantity: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl Holding {
    /// A holding nobody has had yet: nothing owned, no changes.
    pub fn empty(tenant_id: Uuid, owner_ref: &str, item_code: &str, now: DateTime<Utc>) -> Self {
        Self {
            tenant_id,
            owner_ref: owner_ref.to_owned(),
            item_code: item_code.to_owned(),
            quantity: 0,
            version: 0,
            updated_at: now,
        }
    }

    /// The id of the holding's event stream. Item codes have no '/', so the last '/' splits it.
    pub fn stream_id(&self) -> String {
        format!("{}/{}", self.owner_ref, self.item_code)
    }

    /// The quantity owned after adding `quantity` units.
    pub fn added(&self, quantity: i64) -> Result<i64, Refusal> {
        self.quantity.checked_add(quantity).ok_or_else(|| {
            Refusal::precondition(
                "QUANTITY_OVERFLOW",
                format!(
                    "{} owned plus {quantity} does not fit in 64 bits",
                    self.quantity
                ),
            )
            .at("quantity")
            .with("owned", self.quantity)
        })
    }

    /// The quantity owned after removing `quantity` units: never below zero.
    pub fn removed(&self, quantity: i64) -> Result<i64, Refusal> {
        if quantity > self.quantity {
            return Err(Refusal::precondition(
                "INSUFFICIENT_HOLDING",
                format!(
                    "{} owns {} of {}, {quantity} cannot be taken",
                    quote(&self.owner_ref),
                    self.quantity,
                    quote(&self.item_code)
                ),
            )
            .at("quantity")
            .with("owned", self.quantity));
        }
        Ok(self.quantity - quantity)
    }
}

/// A change of a holding, validated: `quantity` units to add or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldingChange {
    pub owner_ref: String,
    pub item_code: String,
    pub quantity: i64,
}

impl HoldingChange {
    /// Checks every field into `violations`; the value is only meaningful once they pass.
    pub fn parse(
        owner_ref: &str,
        item_code: &str,
        quantity: i64,
        violations: &mut Violations,
    ) -> Self {
        let owner_ref = owner_ref.trim();
        violations.take(check_owner_ref(owner_ref));
        violations.take(check_code("item_code", item_code));
        violations.take(check_quantity(quantity));
        Self {
            owner_ref: owner_ref.to_owned(),
            item_code: item_code.to_owned(),
            quantity,
        }
    }
}

/// A sku or item code: 1-64 letters, digits, '-', '_' or '.'.
pub fn check_code(field: &str, code: &str) -> Result<(), Refusal> {
    let ok = (1..=MAX_CODE_CHARS).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Refusal::invalid(
            field,
            "INVALID_CODE",
            "must be 1-64 letters, digits, '-', '_' or '.' (e.g. SKU-42)",
        ))
    }
}

fn check_quantity(quantity: i64) -> Result<(), Refusal> {
    if quantity > 0 {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "quantity",
            "INVALID_QUANTITY",
            "must be one unit or more",
        ))
    }
}

fn check_expected_version(expected: Option<i64>) -> Result<(), Refusal> {
    match expected {
        Some(version) if version < 1 => Err(Refusal::invalid(
            "expected_version",
            "INVALID_VERSION",
            "versions start at 1; leave it unset to skip the check",
        )),
        _ => Ok(()),
    }
}

fn is_text(text: &str) -> bool {
    text.chars().count() <= MAX_TEXT_CHARS && !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(on_hand: i64, reserved: i64) -> InventoryItem {
        InventoryItem {
            tenant_id: Uuid::nil(),
            sku: "SKU-1".into(),
            name: "Widget".into(),
            on_hand,
            reserved,
            version: 3,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// What a parser decided: the value, or the refusal listing every bad field.
    fn parsed<T>(parse: impl FnOnce(&mut Violations) -> T) -> Result<T, Refusal> {
        let mut violations = Violations::new();
        let value = parse(&mut violations);
        violations.finish().map(|()| value)
    }

    fn fields(refusal: Refusal) -> Vec<String> {
        refusal.violations.into_iter().map(|v| v.field).collect()
    }

    fn open(quantity: i64, expires_at: DateTime<Utc>) -> Reservation {
        let request = parsed(|v| ReservationRequest::parse("SKU-1", quantity, None, None, "", v))
            .expect("valid");
        Reservation {
            expires_at,
            ..request.open(Uuid::nil(), Uuid::nil(), DateTime::<Utc>::UNIX_EPOCH)
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("valid time")
    }

    #[test]
    fn codes_are_short_words_of_letters_digits_and_dots() {
        for good in ["SKU-42", "gem.red_1", "a", &"x".repeat(64)] {
            assert!(check_code("sku", good).is_ok(), "{good:?}");
        }
        for bad in ["", "has space", "a/b", "ñ", &"x".repeat(65)] {
            let refusal = check_code("sku", bad).expect_err(bad);
            assert_eq!(refusal.field(), Some("sku"));
        }
    }

    #[test]
    fn every_bad_field_of_a_new_item_is_reported() {
        let refusal =
            parsed(|v| NewInventoryItem::parse("bad sku", " ", -1, v)).expect_err("all bad");
        assert_eq!(fields(refusal), ["sku", "name", "on_hand"]);
        assert_eq!(
            parsed(|v| NewInventoryItem::parse("SKU-1", " Widget ", 0, v))
                .expect("valid")
                .name,
            "Widget"
        );
    }

    #[test]
    fn an_adjustment_never_takes_on_hand_below_reserved() {
        assert_eq!(
            item(10, 4).adjusted(-6).expect("leaves 4"),
            StockLevels {
                on_hand: 4,
                reserved: 4
            }
        );
        let refusal = item(10, 4).adjusted(-7).expect_err("below reserved");
        assert_eq!(refusal.reason, "BELOW_RESERVED");
        assert_eq!(refusal.kind, RefusalKind::Precondition);
        assert_eq!(item(10, 0).adjusted(5).expect("restock").on_hand, 15);
    }

    #[test]
    fn an_overflowing_adjustment_is_refused_not_wrapped() {
        let refusal = item(10, 0).adjusted(i64::MAX).expect_err("overflow");
        assert_eq!(refusal.reason, "QUANTITY_OVERFLOW");
        assert_eq!(refusal.field(), Some("delta"));
        assert_eq!(
            item(10, 0).adjusted(i64::MIN).expect_err("below").reason,
            "BELOW_RESERVED"
        );
    }

    #[test]
    fn zero_deltas_and_quantities_are_invalid() {
        assert_eq!(
            fields(parsed(|v| Adjustment::parse("SKU-1", 0, Some(0), "", v)).expect_err("bad")),
            ["delta", "expected_version"]
        );
        assert_eq!(
            fields(
                parsed(|v| ReservationRequest::parse("SKU-1", -1, None, None, "", v))
                    .expect_err("bad")
            ),
            ["quantity"]
        );
        assert_eq!(
            fields(parsed(|v| HoldingChange::parse("", "gem", 0, v)).expect_err("bad")),
            ["owner_ref", "quantity"]
        );
    }

    #[test]
    fn a_reservation_takes_at_most_what_is_available() {
        assert_eq!(
            item(10, 7).reserved_more(3).expect("fits"),
            StockLevels {
                on_hand: 10,
                reserved: 10
            }
        );
        let refusal = item(10, 7).reserved_more(4).expect_err("oversold");
        assert_eq!(refusal.reason, "INSUFFICIENT_STOCK");
        assert!(refusal.metadata.contains(&("available".into(), "3".into())));
        assert_eq!(
            item(10, 0)
                .reserved_more(i64::MAX)
                .expect_err("huge")
                .reason,
            "INSUFFICIENT_STOCK"
        );
    }

    #[test]
    fn reservation_ttls_default_to_fifteen_minutes_and_are_bounded() {
        let request =
            parsed(|v| ReservationRequest::parse("SKU-1", 1, None, None, "", v)).expect("valid");
        assert_eq!(request.ttl, Duration::minutes(15));
        let opened = request.open(Uuid::nil(), Uuid::nil(), at(0));
        assert_eq!(opened.expires_at, at(15 * 60));
        assert_eq!(opened.state, ReservationState::Open);
        for bad in [Duration::days(31), Duration::milliseconds(999)] {
            let refused = parsed(|v| ReservationRequest::parse("SKU-1", 1, None, Some(bad), "", v));
            assert_eq!(refused.expect_err("out of range").field(), Some("ttl"));
        }
    }

    #[test]
    fn committing_takes_units_out_and_releasing_gives_them_back() {
        let item = item(10, 4);
        assert_eq!(
            item.settled(3, Resolution::Commit).expect("commit"),
            StockLevels {
                on_hand: 7,
                reserved: 1
            }
        );
        for back in [Resolution::Release, Resolution::Expire] {
            assert_eq!(
                item.settled(3, back).expect("back"),
                StockLevels {
                    on_hand: 10,
                    reserved: 1
                }
            );
        }
        assert!(matches!(
            item.settled(5, Resolution::Release)
                .expect_err("more than reserved"),
            Error::Invariant {
                invariant: "STOCK_INCONSISTENT",
                ..
            }
        ));
    }

    #[test]
    fn only_open_reservations_are_resolved() {
        let reservation = open(2, at(100));
        let committed = reservation
            .resolved(Resolution::Commit, at(50))
            .expect("open");
        assert_eq!(committed.state, ReservationState::Committed);
        assert_eq!(committed.resolved_at, Some(at(50)));
        for again in [Resolution::Commit, Resolution::Release, Resolution::Expire] {
            let refusal = committed.resolved(again, at(200)).expect_err("final");
            assert_eq!(refusal.reason, "RESERVATION_NOT_OPEN");
            assert_eq!(refusal.kind, RefusalKind::Precondition);
        }
        let released = reservation
            .resolved(Resolution::Release, at(50))
            .expect("open");
        assert_eq!(released.state, ReservationState::Released);
        assert_eq!(
            released
                .resolved(Resolution::Commit, at(60))
                .expect_err("released")
                .reason,
            "RESERVATION_NOT_OPEN"
        );
    }

    #[test]
    fn a_due_reservation_can_expire_but_not_be_committed() {
        let reservation = open(2, at(100));
        assert_eq!(
            reservation
                .resolved(Resolution::Expire, at(99))
                .expect_err("early")
                .reason,
            "RESERVATION_NOT_DUE"
        );
        assert_eq!(
            reservation
                .resolved(Resolution::Commit, at(100))
                .expect_err("due")
                .reason,
            "RESERVATION_EXPIRED"
        );
        assert_eq!(
            reservation
                .resolved(Resolution::Expire, at(100))
                .expect("due")
                .state,
            ReservationState::Expired
        );
        assert_eq!(
            reservation
                .resolved(Resolution::Release, at(150))
                .expect("release")
                .state,
            ReservationState::Released
        );
    }

    #[test]
    fn a_stale_expected_version_is_a_conflict_naming_the_current_one() {
        assert!(item(1, 0).check_version(None).is_ok());
        assert!(item(1, 0).check_version(Some(3)).is_ok());
        let refusal = item(1, 0).check_version(Some(2)).expect_err("stale");
        assert_eq!(refusal.kind, RefusalKind::Conflict);
        assert_eq!(refusal.reason, "VERSION_CONFLICT");
        assert!(
            refusal
                .metadata
                .contains(&("current_version".into(), "3".into()))
        );
    }

    #[test]
    fn holdings_never_go_below_zero_or_overflow() {
        let mut holding = Holding::empty(Uuid::nil(), "user-1", "gem", at(0));
        assert_eq!(holding.stream_id(), "user-1/gem");
        holding.quantity = holding.added(5).expect("add");
        assert_eq!(holding.removed(5), Ok(0));
        let refusal = holding.removed(6).expect_err("more than owned");
        assert_eq!(refusal.reason, "INSUFFICIENT_HOLDING");
        assert!(refusal.metadata.contains(&("owned".into(), "5".into())));
        assert_eq!(
            holding.added(i64::MAX).expect_err("overflow").reason,
            "QUANTITY_OVERFLOW"
        );
    }
}
