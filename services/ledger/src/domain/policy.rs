//! Policies as data (the seed's `gobernanza.policies`, its circuit breakers): limits a tenant
//! sets on its own ledger, checked by the posting engine inside the posting transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use phoenix_runtime::Violations;

use super::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    /// No single transfer above the limit.
    MaxTransferAmount,
    /// No account debited more than the limit per UTC day.
    MaxDailyDebits,
    /// No debits at all.
    KillSwitch,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxTransferAmount => "MAX_TRANSFER_AMOUNT",
            Self::MaxDailyDebits => "MAX_DAILY_DEBITS",
            Self::KillSwitch => "KILL_SWITCH",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::MaxTransferAmount,
            Self::MaxDailyDebits,
            Self::KillSwitch,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// A policy, active from `effective_from` until `effective_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: PolicyKind,
    /// Empty: every asset.
    pub asset_code: String,
    /// `None` for a kill switch.
    pub limit: Option<i64>,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
}

impl Policy {
    pub fn applies_to(&self, asset_code: &str) -> bool {
        self.asset_code.is_empty() || self.asset_code == asset_code
    }

    /// Only an active policy can be disabled.
    pub fn require_active(&self) -> Result<(), Refusal> {
        match self.effective_to {
            None => Ok(()),
            Some(_) => Err(Refusal::precondition(
                "POLICY_ENDED",
                format!("policy {} has already ended", self.id),
            )
            .at("policy_id")),
        }
    }
}

/// A policy to set, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    pub kind: PolicyKind,
    pub asset_code: String,
    pub limit: Option<i64>,
}

impl PolicySpec {
    /// Checks every field into `violations`; `kind` is `None` when the caller chose none. The
    /// value is only meaningful once the violations pass.
    pub fn parse(
        kind: Option<PolicyKind>,
        asset_code: &str,
        limit: i64,
        violations: &mut Violations,
    ) -> Self {
        violations.check(
            kind.is_some(),
            "kind",
            "POLICY_KIND_REQUIRED",
            "choose MAX_TRANSFER_AMOUNT, MAX_DAILY_DEBITS or KILL_SWITCH",
        );
        let asset_ok = asset_code.is_empty()
            || ((1..=16).contains(&asset_code.len())
                && asset_code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
        violations.check(
            asset_ok,
            "asset_code",
            "INVALID_ASSET_CODE",
            "must be empty (every asset) or an asset code such as BESITOS",
        );
        // Without a kind, the limit cannot be judged.
        let limit = match (kind, limit) {
            (None, _) | (Some(PolicyKind::KillSwitch), 0) => None,
            (Some(PolicyKind::KillSwitch), _) => {
                violations.add(
                    "limit",
                    "INVALID_LIMIT",
                    "a kill switch has no limit; send 0",
                );
                None
            }
            (_, limit) => {
                violations.check(
                    limit > 0,
                    "limit",
                    "INVALID_LIMIT",
                    "must be a positive amount in minor units",
                );
                Some(limit)
            }
        };
        Self {
            kind: kind.unwrap_or(PolicyKind::KillSwitch),
            asset_code: asset_code.to_owned(),
            limit,
        }
    }
}

/// Checks a new debit of `amount` in `asset` against `policies`. `debited_today` is what the
/// account was already debited today; `counts_today` says whether this debit adds to it.
pub fn check_debit(
    policies: &[Policy],
    asset: &str,
    amount: i64,
    debited_today: i64,
    counts_today: bool,
) -> Result<(), Refusal> {
    for policy in policies.iter().filter(|p| p.applies_to(asset)) {
        let limit = policy.limit.unwrap_or(0);
        let refused = match policy.kind {
            PolicyKind::KillSwitch => true,
            PolicyKind::MaxTransferAmount => counts_today && amount > limit,
            PolicyKind::MaxDailyDebits => {
                counts_today && debited_today.saturating_add(amount) > limit
            }
        };
        if refused {
            let message = match policy.kind {
                PolicyKind::KillSwitch => {
                    "the kill switch is on: no debits are accepted".to_owned()
                }
                PolicyKind::MaxTransferAmount => {
                    format!("the amount {amount} is above the per-transfer limit {limit}")
                }
                PolicyKind::MaxDailyDebits => format!(
                    "the account was debited {debited_today} today; {amount} more would pass the daily limit {limit}"
                ),
            };
            return Err(Refusal::precondition("POLICY_VIOLATION", message)
                .with("policy_id", policy.id)
                .with("policy_kind", policy.kind.as_str()));
        }
    }
    Ok(())
}

/// Whether any of `policies` needs the day's debits of the accounts involved.
pub fn needs_daily_debits(policies: &[Policy]) -> bool {
    policies
        .iter()
        .any(|p| p.kind == PolicyKind::MaxDailyDebits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: PolicyKind, asset: &str, limit: Option<i64>) -> Policy {
        Policy {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            kind,
            asset_code: asset.into(),
            limit,
            effective_from: DateTime::UNIX_EPOCH,
            effective_to: None,
        }
    }

    #[test]
    fn limits_apply_to_their_asset_only() {
        let policies = [policy(PolicyKind::MaxTransferAmount, "USD", Some(100))];
        assert!(check_debit(&policies, "USD", 101, 0, true).is_err());
        assert!(check_debit(&policies, "USD", 100, 0, true).is_ok());
        assert!(check_debit(&policies, "XP", 1_000, 0, true).is_ok());
    }

    #[test]
    fn the_daily_limit_counts_what_was_debited_today() {
        let policies = [policy(PolicyKind::MaxDailyDebits, "", Some(500))];
        assert!(check_debit(&policies, "USD", 100, 400, true).is_ok());
        let refusal = check_debit(&policies, "USD", 101, 400, true).expect_err("over");
        assert_eq!(refusal.reason, "POLICY_VIOLATION");
    }

    #[test]
    fn the_kill_switch_stops_every_debit() {
        let policies = [policy(PolicyKind::KillSwitch, "", None)];
        assert!(check_debit(&policies, "USD", 1, 0, false).is_err());
    }

    #[test]
    fn a_kill_switch_takes_no_limit_and_limits_must_be_positive() {
        let parse = |kind, asset: &str, limit| {
            let mut violations = Violations::new();
            let spec = PolicySpec::parse(kind, asset, limit, &mut violations);
            violations.finish().map(|()| spec)
        };
        assert!(parse(Some(PolicyKind::KillSwitch), "", 5).is_err());
        assert!(parse(Some(PolicyKind::MaxDailyDebits), "", 0).is_err());
        assert!(parse(None, "", 5).is_err());
        let spec = parse(Some(PolicyKind::MaxDailyDebits), "USD", 5).expect("valid");
        assert_eq!(spec.limit, Some(5));
    }
}
