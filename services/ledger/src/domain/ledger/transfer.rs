//! Transfers as recorded, transfers as asked for, and the operations of a posting call.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use phoenix_runtime::Violations;

use super::{MAX_BATCH, MAX_CODE_CHARS, MAX_PENDING_TIMEOUT, check_metadata};

/// What a transfer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferKind {
    Posted,
    Pending,
    PostPending,
    VoidPending,
    ExpirePending,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "POSTED",
            Self::Pending => "PENDING",
            Self::PostPending => "POST_PENDING",
            Self::VoidPending => "VOID_PENDING",
            Self::ExpirePending => "EXPIRE_PENDING",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Posted,
            Self::Pending,
            Self::PostPending,
            Self::VoidPending,
            Self::ExpirePending,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }

    /// Whether it moved posted funds (and so wrote entries).
    pub fn posts(self) -> bool {
        matches!(self, Self::Posted | Self::PostPending)
    }
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingState {
    Open,
    Posted,
    Voided,
    Expired,
}

impl PendingState {
    /// The state a transfer of `kind` has when it is made: a pending one is open.
    pub fn when_made(kind: TransferKind) -> Option<Self> {
        (kind == TransferKind::Pending).then_some(Self::Open)
    }

    /// The state a resolution of kind `kind` leaves.
    pub fn after(kind: TransferKind) -> Option<Self> {
        match kind {
            TransferKind::PostPending => Some(Self::Posted),
            TransferKind::VoidPending => Some(Self::Voided),
            TransferKind::ExpirePending => Some(Self::Expired),
            TransferKind::Posted | TransferKind::Pending => None,
        }
    }
}

/// A recorded transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub batch_id: Uuid,
    pub kind: TransferKind,
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    pub asset_code: String,
    pub amount: i64,
    pub pending_id: Option<Uuid>,
    pub reversal_of: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub code: String,
    pub metadata: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// For a PENDING transfer: its state when this value was read or made.
    pub pending_state: Option<PendingState>,
}

impl Transfer {
    /// The transfer as the call that made it answered, whatever happened to it since: a
    /// replayed call answers the same, even if the pending transfer it opened was posted.
    pub fn as_made(self) -> Self {
        Self {
            pending_state: PendingState::when_made(self.kind),
            ..self
        }
    }
}

/// A transfer to make, as the caller described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSpec {
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    pub amount: i64,
    pub pending: bool,
    pub timeout: Option<chrono::Duration>,
    pub code: String,
    pub metadata: BTreeMap<String, String>,
}

impl TransferSpec {
    /// Checks the rules that hold whatever the state into `violations`, every one of them,
    /// with each field named under `field` (`transfer`, `transfers[3]`). The posting engine
    /// takes a checked spec and applies only the rules that depend on the ledger's state.
    /// A nil account id is one the caller left out or malformed, already reported.
    pub fn check(&self, field: &str, violations: &mut Violations) {
        let at = |name: &str| format!("{field}.{name}");
        if self.amount <= 0 {
            violations.add(
                at("amount"),
                "INVALID_AMOUNT",
                "must be a positive integer in minor units",
            );
        }
        if !self.debit_account_id.is_nil() && self.debit_account_id == self.credit_account_id {
            violations.add(
                at("credit_account_id"),
                "SAME_ACCOUNT",
                "must differ from debit_account_id",
            );
        }
        if let Some(timeout) = self.timeout {
            if !self.pending {
                violations.add(
                    at("timeout"),
                    "TIMEOUT_WITHOUT_PENDING",
                    "only a pending transfer has a timeout",
                );
            } else if timeout <= chrono::Duration::zero() || timeout > MAX_PENDING_TIMEOUT {
                violations.add(
                    at("timeout"),
                    "INVALID_TIMEOUT",
                    "must be positive and at most 366 days",
                );
            }
        }
        check_code(&self.code, &at("code"), violations);
        check_metadata(&self.metadata, &at("metadata"), violations);
    }
}

/// A transfer's application code (a reversal's too): at most 64 characters without control
/// characters; empty is allowed.
pub fn check_code(code: &str, field: &str, violations: &mut Violations) {
    if code.chars().count() > MAX_CODE_CHARS || code.chars().any(char::is_control) {
        violations.add(
            field,
            "INVALID_CODE",
            "must be at most 64 characters without control characters",
        );
    }
}

/// The `amount` of a pending's posting or of a reversal, where 0 means all of it (what is
/// pending, what is left to reverse): `None` then. A negative one is refused.
pub fn optional_amount(amount: i64, violations: &mut Violations) -> Option<i64> {
    violations.check(
        amount >= 0,
        "amount",
        "INVALID_AMOUNT",
        "must be positive, or 0 for all of it",
    );
    (amount > 0).then_some(amount)
}

/// A batch holds 1 to [`MAX_BATCH`] transfers; whether this one does.
pub fn check_batch_size(len: usize, violations: &mut Violations) -> bool {
    violations.check(
        (1..=MAX_BATCH).contains(&len),
        "transfers",
        "INVALID_BATCH_SIZE",
        &format!("must hold 1 to {MAX_BATCH} transfers, not {len}"),
    )
}

/// One thing a posting call asks of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Transfer(TransferSpec),
    /// Post `amount` (all of it when `None`) of a pending transfer.
    PostPending {
        pending_id: Uuid,
        amount: Option<i64>,
    },
    VoidPending {
        pending_id: Uuid,
    },
    /// Release a pending transfer whose timeout passed (the sweeper).
    ExpirePending {
        pending_id: Uuid,
    },
    /// Move `amount` (what is left when `None`) of a posted transfer back.
    Reverse {
        transfer_id: Uuid,
        amount: Option<i64>,
        code: String,
    },
}

impl Operation {
    /// The earlier transfer this operation refers to, if any.
    pub fn referenced_transfer(&self) -> Option<Uuid> {
        match self {
            Self::Transfer(_) => None,
            Self::PostPending { pending_id, .. }
            | Self::VoidPending { pending_id }
            | Self::ExpirePending { pending_id } => Some(*pending_id),
            Self::Reverse { transfer_id, .. } => Some(*transfer_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_and_reasons(spec: &TransferSpec) -> Vec<(String, String)> {
        let mut violations = Violations::new();
        spec.check("transfer", &mut violations);
        violations.finish().map_or_else(
            |refusal| {
                refusal
                    .violations
                    .into_iter()
                    .map(|v| (v.field, v.reason))
                    .collect()
            },
            |()| Vec::new(),
        )
    }

    fn spec() -> TransferSpec {
        TransferSpec {
            debit_account_id: Uuid::from_u128(1),
            credit_account_id: Uuid::from_u128(2),
            amount: 5,
            pending: true,
            timeout: Some(chrono::Duration::hours(1)),
            code: "purchase".into(),
            metadata: [("order".to_owned(), "line one\nline two".to_owned())].into(),
        }
    }

    #[test]
    fn a_valid_spec_passes() {
        assert_eq!(fields_and_reasons(&spec()), []);
    }

    #[test]
    fn every_broken_rule_of_a_spec_is_reported_with_its_field() {
        let broken = TransferSpec {
            credit_account_id: Uuid::from_u128(1),
            amount: 0,
            timeout: Some(chrono::Duration::days(367)),
            code: "tab\tbed".into(),
            metadata: [("k".to_owned(), "nul\u{0}".to_owned())].into(),
            ..spec()
        };
        let expected = [
            ("transfer.amount", "INVALID_AMOUNT"),
            ("transfer.credit_account_id", "SAME_ACCOUNT"),
            ("transfer.timeout", "INVALID_TIMEOUT"),
            ("transfer.code", "INVALID_CODE"),
            ("transfer.metadata", "INVALID_METADATA"),
        ]
        .map(|(field, reason)| (field.to_owned(), reason.to_owned()));
        assert_eq!(fields_and_reasons(&broken), expected);
        let posted_with_timeout = TransferSpec {
            pending: false,
            ..spec()
        };
        assert_eq!(
            fields_and_reasons(&posted_with_timeout),
            [(
                "transfer.timeout".to_owned(),
                "TIMEOUT_WITHOUT_PENDING".to_owned()
            )]
        );
    }

    #[test]
    fn ids_left_out_are_not_compared() {
        let missing = TransferSpec {
            debit_account_id: Uuid::nil(),
            credit_account_id: Uuid::nil(),
            ..spec()
        };
        assert_eq!(fields_and_reasons(&missing), []);
    }
}
