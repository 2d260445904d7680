//! What an operation would do, before the balance checks: the transfer it makes and the change
//! of each side's sums, or why it cannot be made.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::engine::{CallContext, LedgerView, Referenced};
use super::{BalanceDelta, Operation, Transfer, TransferKind, TransferSpec};
use crate::domain::Refusal;

/// What an operation will do, before the balance checks.
pub(super) struct Plan {
    pub(super) kind: TransferKind,
    pub(super) debit: Uuid,
    pub(super) credit: Uuid,
    pub(super) amount: i64,
    pub(super) debit_delta: BalanceDelta,
    pub(super) credit_delta: BalanceDelta,
    pub(super) pending_id: Option<Uuid>,
    pub(super) reversal_of: Option<Uuid>,
    pub(super) expires_at: Option<DateTime<Utc>>,
    pub(super) code: String,
    pub(super) metadata: BTreeMap<String, String>,
    /// A new debit (not the resolution of a reservation): policies apply.
    pub(super) new_debit: bool,
    /// Counts toward the daily debit limit.
    pub(super) counts_today: bool,
}

pub(super) fn plan(
    view: &LedgerView,
    operation: &Operation,
    call: &CallContext,
) -> Result<Plan, Refusal> {
    match operation {
        // The API checked the spec's own rules (`TransferSpec::check`).
        Operation::Transfer(spec) => Ok(new_transfer(spec, None, call.now)),
        Operation::Reverse {
            transfer_id,
            amount,
            code,
        } => {
            let original = referenced(view, *transfer_id, "transfer_id")?;
            if !original.transfer.kind.posts() {
                return Err(Refusal::precondition(
                    "NOT_REVERSIBLE",
                    format!(
                        "transfer {transfer_id} is {} and moved no posted funds; only POSTED and POST_PENDING transfers can be reversed",
                        original.transfer.kind.as_str()
                    ),
                )
                .at("transfer_id"));
            }
            let left = original.transfer.amount - original.reversed;
            if left == 0 {
                return Err(Refusal::precondition(
                    "ALREADY_REVERSED",
                    format!("transfer {transfer_id} has been reversed in full"),
                )
                .at("transfer_id"));
            }
            let amount = amount.unwrap_or(left);
            if amount <= 0 || amount > left {
                return Err(Refusal::invalid(
                    "amount",
                    "INVALID_AMOUNT",
                    format!("must be between 1 and {left}, what is left to reverse (0 reverses all of it)"),
                )
                .with("reversible", left));
            }
            // The original's accounts and a positive amount; the API checked the code.
            let spec = TransferSpec {
                debit_account_id: original.transfer.credit_account_id,
                credit_account_id: original.transfer.debit_account_id,
                amount,
                pending: false,
                timeout: None,
                code: if code.is_empty() {
                    "reversal".to_owned()
                } else {
                    code.clone()
                },
                metadata: BTreeMap::new(),
            };
            Ok(new_transfer(&spec, Some(*transfer_id), call.now))
        }
        Operation::PostPending { pending_id, amount } => {
            let pending = open_pending(view, *pending_id, call.now, true)?;
            let full = pending.amount;
            let amount = amount.unwrap_or(full);
            if amount <= 0 || amount > full {
                return Err(Refusal::invalid(
                    "amount",
                    "INVALID_AMOUNT",
                    format!("must be between 1 and the pending amount {full} (0 posts all of it)"),
                )
                .with("pending_amount", full));
            }
            Ok(resolution(pending, TransferKind::PostPending, amount))
        }
        Operation::VoidPending { pending_id } => {
            let pending = open_pending(view, *pending_id, call.now, true)?;
            Ok(resolution(
                pending,
                TransferKind::VoidPending,
                pending.amount,
            ))
        }
        Operation::ExpirePending { pending_id } => {
            let pending = open_pending(view, *pending_id, call.now, false)?;
            if pending.expires_at.is_none_or(|at| at > call.now) {
                return Err(Refusal::precondition(
                    "NOT_EXPIRED",
                    format!("pending transfer {pending_id} has not expired"),
                ));
            }
            Ok(resolution(
                pending,
                TransferKind::ExpirePending,
                pending.amount,
            ))
        }
    }
}

fn new_transfer(spec: &TransferSpec, reversal_of: Option<Uuid>, now: DateTime<Utc>) -> Plan {
    let amount = spec.amount;
    let (debit_delta, credit_delta) = if spec.pending {
        (
            BalanceDelta {
                debits_pending: amount,
                ..BalanceDelta::default()
            },
            BalanceDelta {
                credits_pending: amount,
                ..BalanceDelta::default()
            },
        )
    } else {
        (
            BalanceDelta {
                debits_posted: amount,
                ..BalanceDelta::default()
            },
            BalanceDelta {
                credits_posted: amount,
                ..BalanceDelta::default()
            },
        )
    };
    Plan {
        kind: if spec.pending {
            TransferKind::Pending
        } else {
            TransferKind::Posted
        },
        debit: spec.debit_account_id,
        credit: spec.credit_account_id,
        amount,
        debit_delta,
        credit_delta,
        pending_id: None,
        reversal_of,
        expires_at: spec.timeout.map(|timeout| now + timeout),
        code: spec.code.clone(),
        metadata: spec.metadata.clone(),
        new_debit: true,
        counts_today: true,
    }
}

/// Posting `posted` of `pending` (0 for a void or expiry) and releasing the whole reservation.
fn resolution(pending: &Transfer, kind: TransferKind, posted: i64) -> Plan {
    let posted = if kind == TransferKind::PostPending {
        posted
    } else {
        0
    };
    Plan {
        kind,
        debit: pending.debit_account_id,
        credit: pending.credit_account_id,
        amount: if kind == TransferKind::PostPending {
            posted
        } else {
            pending.amount
        },
        debit_delta: BalanceDelta {
            debits_posted: posted,
            debits_pending: -pending.amount,
            ..BalanceDelta::default()
        },
        credit_delta: BalanceDelta {
            credits_posted: posted,
            credits_pending: -pending.amount,
            ..BalanceDelta::default()
        },
        pending_id: Some(pending.id),
        reversal_of: None,
        expires_at: None,
        code: pending.code.clone(),
        metadata: BTreeMap::new(),
        // Posting a reservation is a debit the kill switch stops; limits were checked when the
        // funds were reserved.
        new_debit: kind == TransferKind::PostPending,
        counts_today: false,
    }
}

fn referenced<'v>(view: &'v LedgerView, id: Uuid, field: &str) -> Result<&'v Referenced, Refusal> {
    view.referenced
        .get(&id)
        .ok_or_else(|| crate::error::transfer_not_found(id).at(field))
}

fn open_pending(
    view: &LedgerView,
    id: Uuid,
    now: DateTime<Utc>,
    refuse_expired: bool,
) -> Result<&Transfer, Refusal> {
    let pending = referenced(view, id, "pending_id")?;
    if pending.transfer.kind != TransferKind::Pending {
        return Err(Refusal::precondition(
            "NOT_PENDING",
            format!(
                "transfer {id} is {}, not a pending transfer",
                pending.transfer.kind.as_str()
            ),
        )
        .at("pending_id"));
    }
    if !pending.open {
        return Err(Refusal::precondition(
            "PENDING_NOT_OPEN",
            format!("pending transfer {id} has already been posted, voided or expired"),
        )
        .at("pending_id"));
    }
    if refuse_expired && pending.transfer.expires_at.is_some_and(|at| at <= now) {
        return Err(Refusal::precondition(
            "PENDING_EXPIRED",
            format!("pending transfer {id} expired; its reservation is being released"),
        )
        .at("pending_id"));
    }
    Ok(&pending.transfer)
}
