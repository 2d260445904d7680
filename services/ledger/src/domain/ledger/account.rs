//! Accounts: their balance limits, their four sums, and what opening one takes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use phoenix_runtime::{Violations, quote};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::MAX_METADATA_ENTRIES;
use crate::domain::owner::check_owner_ref;

/// Which way an account's balance may not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BalanceLimit {
    None,
    /// No overdraft: debits (posted + pending) ≤ posted credits.
    DebitsMustNotExceedCredits,
    /// Credits (posted + pending) ≤ posted debits.
    CreditsMustNotExceedDebits,
}

impl BalanceLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::DebitsMustNotExceedCredits => "DEBITS_MUST_NOT_EXCEED_CREDITS",
            Self::CreditsMustNotExceedDebits => "CREDITS_MUST_NOT_EXCEED_DEBITS",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::None,
            Self::DebitsMustNotExceedCredits,
            Self::CreditsMustNotExceedDebits,
        ]
        .into_iter()
        .find(|limit| limit.as_str() == value)
    }
}

/// An account's four sums, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

/// A signed change of the four sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceDelta {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

impl Balances {
    /// credits_posted - debits_posted. Both are ≥ 0, so this cannot overflow.
    pub fn posted(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }

    /// credits_pending - debits_pending.
    pub fn pending(&self) -> i64 {
        self.credits_pending - self.debits_pending
    }

    /// What a debit may still take: posted - debits_pending. The engine keeps
    /// debits_posted + debits_pending within i64, so this cannot overflow either.
    pub fn available(&self) -> i64 {
        self.credits_posted - (self.debits_posted + self.debits_pending)
    }

    /// The sums after `delta`, or `None` when one would overflow or go negative, or a side's
    /// posted + pending would no longer fit in an i64.
    pub fn apply(&self, delta: &BalanceDelta) -> Option<Self> {
        let add = |value: i64, change: i64| value.checked_add(change).filter(|v| *v >= 0);
        let next = Self {
            debits_posted: add(self.debits_posted, delta.debits_posted)?,
            credits_posted: add(self.credits_posted, delta.credits_posted)?,
            debits_pending: add(self.debits_pending, delta.debits_pending)?,
            credits_pending: add(self.credits_pending, delta.credits_pending)?,
        };
        next.debits_posted.checked_add(next.debits_pending)?;
        next.credits_posted.checked_add(next.credits_pending)?;
        Some(next)
    }

    /// Whether these sums respect `limit`.
    pub fn within(&self, limit: BalanceLimit) -> bool {
        match limit {
            BalanceLimit::None => true,
            BalanceLimit::DebitsMustNotExceedCredits => {
                self.debits_posted + self.debits_pending <= self.credits_posted
            }
            BalanceLimit::CreditsMustNotExceedDebits => {
                self.credits_posted + self.credits_pending <= self.debits_posted
            }
        }
    }
}

/// An open account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub asset_code: String,
    pub asset_scale: i16,
    pub owner_ref: String,
    pub kind: String,
    pub balance_limit: BalanceLimit,
    pub metadata: BTreeMap<String, String>,
    pub balances: Balances,
    /// Number of entries.
    pub entry_version: i64,
    pub created_at: DateTime<Utc>,
}

/// A request to open an account, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub asset_code: String,
    pub asset_scale: i16,
    pub owner_ref: String,
    pub kind: String,
    pub balance_limit: BalanceLimit,
    pub metadata: BTreeMap<String, String>,
}

impl NewAccount {
    /// Checks every field into `violations`; `balance_limit` is `None` when the caller did not
    /// choose one. The value is only meaningful once the violations pass.
    pub fn parse(
        asset_code: &str,
        asset_scale: u32,
        owner_ref: &str,
        kind: &str,
        balance_limit: Option<BalanceLimit>,
        metadata: BTreeMap<String, String>,
        violations: &mut Violations,
    ) -> Self {
        violations.check(
            is_asset_code(asset_code),
            "asset_code",
            "INVALID_ASSET_CODE",
            "must be 1-16 upper-case letters, digits or underscores, starting with a letter (e.g. BESITOS)",
        );
        let asset_scale = i16::try_from(asset_scale).unwrap_or(i16::MAX);
        violations.check(
            asset_scale <= 18,
            "asset_scale",
            "INVALID_ASSET_SCALE",
            "must be between 0 and 18",
        );
        let owner_ref = owner_ref.trim().to_owned();
        violations.take(check_owner_ref(&owner_ref));
        violations.check(
            is_kind(kind),
            "kind",
            "INVALID_KIND",
            "must be 1-40 lower-case letters, digits or underscores, starting with a letter (e.g. wallet)",
        );
        violations.check(
            balance_limit.is_some(),
            "balance_limit",
            "BALANCE_LIMIT_REQUIRED",
            "choose NONE, DEBITS_MUST_NOT_EXCEED_CREDITS (no overdraft) or CREDITS_MUST_NOT_EXCEED_DEBITS",
        );
        check_metadata(&metadata, "metadata", violations);
        Self {
            asset_code: asset_code.to_owned(),
            asset_scale,
            owner_ref,
            kind: kind.to_owned(),
            balance_limit: balance_limit.unwrap_or(BalanceLimit::None),
            metadata,
        }
    }
}

pub(crate) fn is_asset_code(code: &str) -> bool {
    (1..=16).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_uppercase())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_kind(kind: &str) -> bool {
    (1..=40).contains(&kind.len())
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 64;
/// Longest metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 1024;

/// Labels, checked into `violations` as one field: at most 32; keys 1-64 characters without
/// control characters; values at most 1024 characters without control characters other than
/// line breaks and tabs (jsonb cannot hold NUL). The violation names the first bad label.
pub fn check_metadata(
    metadata: &BTreeMap<String, String>,
    field: &str,
    violations: &mut Violations,
) {
    const RULE: &str = "at most 32 labels; keys 1-64 characters without control characters, \
                        values at most 1024 characters without control characters but line \
                        breaks and tabs";
    if metadata.len() > MAX_METADATA_ENTRIES {
        violations.add(
            field,
            "INVALID_METADATA",
            format!("{RULE}; got {} labels", metadata.len()),
        );
        return;
    }
    let bad_key = |key: &str| {
        key.is_empty()
            || key.chars().count() > MAX_METADATA_KEY_CHARS
            || key.chars().any(char::is_control)
    };
    let bad_value = |value: &str| {
        value.chars().count() > MAX_METADATA_VALUE_CHARS
            || value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    };
    let problem = metadata.iter().find_map(|(key, value)| {
        if bad_key(key) {
            Some(format!("the key {} is not", quote(key)))
        } else if bad_value(value) {
            Some(format!("the value of {} is not", quote(key)))
        } else {
            None
        }
    });
    if let Some(problem) = problem {
        violations.add(field, "INVALID_METADATA", format!("{RULE}; {problem}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(metadata: &[(&str, &str)]) -> Result<(), phoenix_runtime::Refusal> {
        let metadata = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut violations = Violations::new();
        check_metadata(&metadata, "metadata", &mut violations);
        violations.finish()
    }

    #[test]
    fn metadata_values_are_text_jsonb_can_hold() {
        assert!(checked(&[("note", "two\nlines\tand a tab")]).is_ok());
        for bad in [
            ("k", "nul\u{0}"),
            ("k", "bell\u{7}"),
            ("", "v"),
            ("k\u{0}", "v"),
        ] {
            let refusal = checked(&[bad]).expect_err("refused");
            assert_eq!(refusal.reason, "INVALID_METADATA", "{bad:?}");
            assert_eq!(refusal.field(), Some("metadata"));
        }
        let huge = "x".repeat(20_000);
        let refusal = checked(&[(huge.as_str(), "v")]).expect_err("a huge key");
        assert!(
            refusal.violations[0].description.len() < 400,
            "{}",
            refusal.violations[0].description
        );
        let many: Vec<(String, String)> = (0..33).map(|i| (i.to_string(), String::new())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            checked(&many).expect_err("33 labels").reason,
            "INVALID_METADATA"
        );
    }
}
