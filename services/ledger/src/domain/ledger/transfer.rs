//! Transfers as recorded, transfers as asked for, and the operations of a posting call.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MAX_CODE_CHARS, MAX_PENDING_TIMEOUT, check_metadata};
use crate::domain::Refusal;

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
    /// Rules that hold whatever the state; fields are named relative to the spec.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.amount <= 0 {
            return Err(Refusal::invalid(
                "amount",
                "INVALID_AMOUNT",
                "must be a positive integer in minor units",
            ));
        }
        if self.debit_account_id == self.credit_account_id {
            return Err(Refusal::invalid(
                "credit_account_id",
                "SAME_ACCOUNT",
                "must differ from debit_account_id",
            ));
        }
        if let Some(timeout) = self.timeout {
            if !self.pending {
                return Err(Refusal::invalid(
                    "timeout",
                    "TIMEOUT_WITHOUT_PENDING",
                    "only a pending transfer has a timeout",
                ));
            }
            if timeout <= chrono::Duration::zero() || timeout > MAX_PENDING_TIMEOUT {
                return Err(Refusal::invalid(
                    "timeout",
                    "INVALID_TIMEOUT",
                    "must be positive and at most 366 days",
                ));
            }
        }
        if self.code.chars().count() > MAX_CODE_CHARS || self.code.chars().any(char::is_control) {
            return Err(Refusal::invalid(
                "code",
                "INVALID_CODE",
                "must be at most 64 characters without control characters",
            ));
        }
        check_metadata(&self.metadata)
    }
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
