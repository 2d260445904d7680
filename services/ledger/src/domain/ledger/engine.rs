//! The posting engine: given the locked accounts and a list of operations, decide what each
//! does to the balances and which rows it adds. Pure; the use case loads its inputs inside the
//! posting transaction and writes what it returns.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::plan;
use super::{
    BalanceDelta, BalanceLimit, Balances, Operation, PendingState, Transfer, TransferKind,
};
use crate::domain::Refusal;
use crate::domain::policy::{self, Policy};

/// An account as the engine sees it: locked for the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub id: Uuid,
    pub asset_code: String,
    pub balance_limit: BalanceLimit,
    pub balances: Balances,
    pub entry_version: i64,
    pub event_version: i64,
}

/// An earlier transfer an operation refers to, with what has happened to it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    pub transfer: Transfer,
    /// For a pending transfer: whether it is still open (read under the account locks).
    pub open: bool,
    /// For a posted transfer: how much of it reversals have already moved back.
    pub reversed: i64,
}

/// Everything the engine reads, loaded inside the posting transaction.
#[derive(Debug, Default)]
pub struct LedgerView {
    pub accounts: HashMap<Uuid, AccountState>,
    pub referenced: HashMap<Uuid, Referenced>,
    pub policies: Vec<Policy>,
    /// Debits of each account so far today (UTC), when a daily limit applies.
    pub debited_today: HashMap<Uuid, i64>,
}

/// A posted movement on one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account_id: Uuid,
    pub version: i64,
    pub transfer_id: Uuid,
    pub asset_code: String,
    /// > 0 credits, < 0 debits.
    pub amount: i64,
    /// Posted balance after the entry.
    pub balance: i64,
    pub created_at: DateTime<Utc>,
}

/// One event of an account's stream: what one posting call changed on the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub account_id: Uuid,
    pub version: i64,
    /// The call's transfers that touched the account, in order.
    pub transfers: Vec<TransferEffect>,
}

/// What one transfer changed on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferEffect {
    pub transfer_id: Uuid,
    pub kind: TransferKind,
    pub delta: BalanceDelta,
}

/// What a posting call writes.
#[derive(Debug, Default)]
pub struct Posting {
    pub transfers: Vec<Transfer>,
    pub entries: Vec<Entry>,
    pub changes: Vec<AccountChange>,
    /// Pending transfers opened, and pending transfers resolved.
    pub opened: Vec<Uuid>,
    pub resolved: Vec<Uuid>,
    /// Touched accounts as they end, with the stream version they started at.
    pub accounts: Vec<(AccountState, i64)>,
    /// One result per operation, in order.
    pub results: Vec<Result<Transfer, Refusal>>,
}

/// How a failed operation affects the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    /// The first refusal refuses the whole call.
    Linked,
    /// Each operation stands alone.
    Independent,
}

/// A linked call refused as a whole: the operation at `index` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRefusal {
    pub index: usize,
    /// Boxed: a posting's result stays small on the way out.
    pub refusal: Box<Refusal>,
}

/// Identity and time of one posting call.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub tenant_id: Uuid,
    pub batch_id: Uuid,
    pub now: DateTime<Utc>,
    pub idempotency_key: Option<String>,
}

/// Applies `operations` in order to `view`. Linked: the first refusal is returned with its index
/// and nothing is to be written. Independent: refused operations change nothing and the others
/// go through.
pub fn post(
    view: &mut LedgerView,
    operations: &[Operation],
    linking: Linking,
    call: &CallContext,
    mut new_id: impl FnMut() -> Uuid,
) -> Result<Posting, BatchRefusal> {
    let mut posting = Posting::default();
    let mut effects: HashMap<Uuid, Vec<TransferEffect>> = HashMap::new();
    for (index, operation) in operations.iter().enumerate() {
        match apply(view, operation, call, new_id(), &mut posting, &mut effects) {
            Ok(transfer) => posting.results.push(Ok(transfer)),
            Err(refusal) if linking == Linking::Independent => posting.results.push(Err(refusal)),
            Err(refusal) => {
                return Err(BatchRefusal {
                    index,
                    refusal: Box::new(refusal),
                });
            }
        }
    }
    // One event per touched account for the whole call: a batch of 8,000 transfers among 500
    // accounts appends 500 events, not 16,000. Effects are only ever recorded for accounts of
    // the view, so each finds its account here.
    let mut touched: Vec<(&mut AccountState, Vec<TransferEffect>)> = view
        .accounts
        .values_mut()
        .filter_map(|state| {
            effects
                .remove(&state.id)
                .map(|transfers| (state, transfers))
        })
        .collect();
    touched.sort_by_key(|(state, _)| state.id);
    for (state, transfers) in touched {
        let first_version = state.event_version;
        state.event_version += 1;
        posting.changes.push(AccountChange {
            account_id: state.id,
            version: state.event_version,
            transfers,
        });
        posting.accounts.push((state.clone(), first_version));
    }
    Ok(posting)
}

/// One operation: checks everything first, then changes `view` and `posting` only on success.
fn apply(
    view: &mut LedgerView,
    operation: &Operation,
    call: &CallContext,
    id: Uuid,
    posting: &mut Posting,
    effects: &mut HashMap<Uuid, Vec<TransferEffect>>,
) -> Result<Transfer, Refusal> {
    let plan = plan(view, operation, call)?;
    // A new transfer's spec was checked for this; a stored one's by the database. The two
    // sides are updated separately below, so it must hold.
    if plan.debit == plan.credit {
        return Err(Refusal::invalid(
            "credit_account_id",
            "SAME_ACCOUNT",
            "must differ from debit_account_id",
        ));
    }
    // Copies, written back once everything is checked.
    let mut debit = account(view, plan.debit, "debit_account_id")?.clone();
    let mut credit = account(view, plan.credit, "credit_account_id")?.clone();
    if debit.asset_code != credit.asset_code {
        return Err(Refusal::precondition(
            "ASSET_MISMATCH",
            format!(
                "the debit account holds {} and the credit account {}; a transfer moves one asset",
                debit.asset_code, credit.asset_code
            ),
        )
        .at("credit_account_id"));
    }
    let asset = debit.asset_code.clone();
    if plan.new_debit {
        let today = view.debited_today.get(&plan.debit).copied().unwrap_or(0);
        policy::check_debit(
            &view.policies,
            &asset,
            plan.amount,
            today,
            plan.counts_today,
        )?;
    }
    let debit_after = debit
        .balances
        .apply(&plan.debit_delta)
        .ok_or_else(|| overflow(debit.id))?;
    let credit_after = credit
        .balances
        .apply(&plan.credit_delta)
        .ok_or_else(|| overflow(credit.id))?;
    if !debit_after.within(debit.balance_limit) {
        return Err(Refusal::precondition(
            "INSUFFICIENT_FUNDS",
            format!(
                "account {} has {} available; the transfer needs {}",
                debit.id,
                debit.balances.available(),
                plan.amount
            ),
        )
        .with("account_id", debit.id)
        .with("available", debit.balances.available())
        .with("amount", plan.amount));
    }
    if !credit_after.within(credit.balance_limit) {
        return Err(Refusal::precondition(
            "CREDIT_LIMIT_EXCEEDED",
            format!(
                "account {} may not be credited beyond its debits (credits may not exceed debits)",
                credit.id
            ),
        )
        .with("account_id", credit.id));
    }

    // Everything checked: record.
    let transfer = Transfer {
        id,
        tenant_id: call.tenant_id,
        batch_id: call.batch_id,
        kind: plan.kind,
        debit_account_id: plan.debit,
        credit_account_id: plan.credit,
        asset_code: asset.clone(),
        amount: plan.amount,
        pending_id: plan.pending_id,
        reversal_of: plan.reversal_of,
        expires_at: plan.expires_at,
        code: plan.code,
        metadata: plan.metadata,
        idempotency_key: call.idempotency_key.clone(),
        created_at: call.now,
        pending_state: PendingState::when_made(plan.kind),
    };
    for (state, after, delta, signed) in [
        (&mut debit, debit_after, plan.debit_delta, -plan.amount),
        (&mut credit, credit_after, plan.credit_delta, plan.amount),
    ] {
        let account_id = state.id;
        state.balances = after;
        if plan.kind.posts() {
            state.entry_version += 1;
            posting.entries.push(Entry {
                account_id,
                version: state.entry_version,
                transfer_id: id,
                asset_code: asset.clone(),
                amount: signed,
                balance: after.posted(),
                created_at: call.now,
            });
        }
        effects.entry(account_id).or_default().push(TransferEffect {
            transfer_id: id,
            kind: plan.kind,
            delta,
        });
    }
    view.accounts.insert(debit.id, debit);
    view.accounts.insert(credit.id, credit);
    if plan.new_debit && plan.counts_today {
        *view.debited_today.entry(plan.debit).or_insert(0) += plan.amount;
    }
    match (plan.kind, plan.pending_id) {
        (TransferKind::Pending, _) => {
            posting.opened.push(id);
            view.referenced.insert(
                id,
                Referenced {
                    transfer: transfer.clone(),
                    open: true,
                    reversed: 0,
                },
            );
        }
        // A resolution (post, void, expiry) names the pending it resolves.
        (_, Some(pending_id)) => {
            posting.resolved.push(pending_id);
            if let Some(pending) = view.referenced.get_mut(&pending_id) {
                pending.open = false;
            }
        }
        (_, None) => {
            if let Some(original) = plan.reversal_of.and_then(|id| view.referenced.get_mut(&id)) {
                original.reversed += plan.amount;
            }
            view.referenced.insert(
                id,
                Referenced {
                    transfer: transfer.clone(),
                    open: false,
                    reversed: 0,
                },
            );
        }
    }
    posting.transfers.push(transfer.clone());
    Ok(transfer)
}

fn account<'v>(view: &'v LedgerView, id: Uuid, field: &str) -> Result<&'v AccountState, Refusal> {
    view.accounts
        .get(&id)
        .ok_or_else(|| crate::error::account_not_found(id).at(field))
}

fn overflow(account: Uuid) -> Refusal {
    Refusal::precondition(
        "BALANCE_OVERFLOW",
        format!("the transfer would overflow the balances of account {account}"),
    )
    .at("amount")
    .with("account_id", account)
}

/// The accounts an operation needs locked, once its referenced transfer is known.
pub fn accounts_of(operation: &Operation, referenced: &HashMap<Uuid, Referenced>) -> Vec<Uuid> {
    match operation {
        Operation::Transfer(spec) => vec![spec.debit_account_id, spec.credit_account_id],
        other => other
            .referenced_transfer()
            .and_then(|id| referenced.get(&id))
            .map(|r| vec![r.transfer.debit_account_id, r.transfer.credit_account_id])
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::ledger::TransferSpec;

    fn wallet(id: u128, credits: i64) -> AccountState {
        AccountState {
            id: Uuid::from_u128(id),
            asset_code: "BESITOS".into(),
            balance_limit: BalanceLimit::DebitsMustNotExceedCredits,
            balances: Balances {
                credits_posted: credits,
                ..Balances::default()
            },
            entry_version: 0,
            event_version: 1,
        }
    }

    fn view(accounts: Vec<AccountState>) -> LedgerView {
        LedgerView {
            accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
            ..LedgerView::default()
        }
    }

    fn call() -> CallContext {
        CallContext {
            tenant_id: Uuid::from_u128(99),
            batch_id: Uuid::from_u128(98),
            now: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            idempotency_key: None,
        }
    }

    fn transfer(debit: u128, credit: u128, amount: i64, pending: bool) -> Operation {
        Operation::Transfer(TransferSpec {
            debit_account_id: Uuid::from_u128(debit),
            credit_account_id: Uuid::from_u128(credit),
            amount,
            pending,
            timeout: None,
            code: String::new(),
            metadata: BTreeMap::new(),
        })
    }

    fn ids() -> impl FnMut() -> Uuid {
        Uuid::new_v4
    }

    #[test]
    fn a_posted_transfer_writes_balanced_entries_with_running_balances() {
        let mut view = view(vec![wallet(1, 100), wallet(2, 0)]);
        let posting = post(
            &mut view,
            &[transfer(1, 2, 30, false)],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect("accepted");
        let amounts: Vec<_> = posting
            .entries
            .iter()
            .map(|e| (e.amount, e.balance, e.version))
            .collect();
        assert_eq!(amounts, [(-30, 70, 1), (30, 30, 1)]);
        assert_eq!(posting.entries.iter().map(|e| e.amount).sum::<i64>(), 0);
        assert_eq!(view.accounts[&Uuid::from_u128(1)].balances.available(), 70);
        assert_eq!(posting.changes.len(), 2);
        assert_eq!(posting.accounts.len(), 2);
    }

    #[test]
    fn a_call_appends_one_event_per_account_listing_its_transfers() {
        let mut view = view(vec![wallet(1, 100), wallet(2, 0), wallet(3, 0)]);
        let first_version = view.accounts[&Uuid::from_u128(1)].event_version;
        let posting = post(
            &mut view,
            &[
                transfer(1, 2, 30, false),
                transfer(1, 3, 20, true),
                transfer(2, 1, 5, false),
            ],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect("accepted");
        let events: Vec<_> = posting
            .changes
            .iter()
            .map(|c| (c.account_id.as_u128(), c.version, c.transfers.len()))
            .collect();
        assert_eq!(
            events,
            [
                (1, first_version + 1, 3),
                (2, first_version + 1, 2),
                (3, first_version + 1, 1)
            ]
        );
        let debits_of_1: Vec<_> = posting.changes[0]
            .transfers
            .iter()
            .map(|t| (t.kind, t.delta.debits_posted, t.delta.debits_pending))
            .collect();
        assert_eq!(
            debits_of_1,
            [
                (TransferKind::Posted, 30, 0),
                (TransferKind::Pending, 0, 20),
                (TransferKind::Posted, 0, 0)
            ]
        );
        assert_eq!(
            posting.accounts[0].0.event_version,
            first_version + 1,
            "the account's stream moves by one"
        );
    }

    #[test]
    fn no_overdraft_counts_pending_debits() {
        let mut view = view(vec![wallet(1, 100), wallet(2, 0)]);
        let result = post(
            &mut view,
            &[transfer(1, 2, 80, true), transfer(1, 2, 30, false)],
            Linking::Independent,
            &call(),
            ids(),
        )
        .expect("independent");
        assert!(result.results[0].is_ok());
        let refusal = result.results[1].as_ref().expect_err("overdraft");
        assert_eq!(refusal.reason, "INSUFFICIENT_FUNDS");
        assert_eq!(view.accounts[&Uuid::from_u128(1)].balances.available(), 20);
    }

    #[test]
    fn a_linked_batch_fails_as_one_and_names_the_transfer() {
        let mut view = view(vec![wallet(1, 100), wallet(2, 0)]);
        let BatchRefusal { index, refusal } = post(
            &mut view,
            &[transfer(1, 2, 60, false), transfer(1, 2, 60, false)],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect_err("second overdraws");
        assert_eq!(index, 1);
        assert_eq!(refusal.reason, "INSUFFICIENT_FUNDS");
    }

    #[test]
    fn a_pending_transfer_posts_in_part_and_releases_the_rest() {
        let mut view = view(vec![wallet(1, 100), wallet(2, 0)]);
        let first = post(
            &mut view,
            &[transfer(1, 2, 50, true)],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect("reserved");
        let pending_id = first.transfers[0].id;
        let posted = post(
            &mut view,
            &[Operation::PostPending {
                pending_id,
                amount: Some(20),
            }],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect("posted");
        assert_eq!(posted.resolved, [pending_id]);
        let payer = view.accounts[&Uuid::from_u128(1)].balances;
        assert_eq!(
            (payer.posted(), payer.debits_pending, payer.available()),
            (80, 0, 80)
        );
        let again = post(
            &mut view,
            &[Operation::VoidPending { pending_id }],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect_err("already resolved");
        assert_eq!(again.refusal.reason, "PENDING_NOT_OPEN");
    }

    #[test]
    fn amounts_that_would_overflow_are_refused() {
        let mut issuer = wallet(1, 0);
        issuer.balance_limit = BalanceLimit::None;
        issuer.balances.debits_posted = i64::MAX - 5;
        let mut view = view(vec![issuer, wallet(2, 0)]);
        let BatchRefusal { refusal, .. } = post(
            &mut view,
            &[transfer(1, 2, 10, false)],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect_err("overflow");
        assert_eq!(refusal.reason, "BALANCE_OVERFLOW");
    }

    #[test]
    fn reversals_never_move_back_more_than_was_posted() {
        let mut view = view(vec![wallet(1, 100), wallet(2, 0)]);
        let first = post(
            &mut view,
            &[transfer(1, 2, 40, false)],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect("posted");
        let original = first.transfers[0].id;
        let reverse = |amount| Operation::Reverse {
            transfer_id: original,
            amount,
            code: String::new(),
        };
        post(
            &mut view,
            &[reverse(Some(15))],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect("part");
        let BatchRefusal {
            refusal: too_much, ..
        } = post(
            &mut view,
            &[reverse(Some(30))],
            Linking::Linked,
            &call(),
            ids(),
        )
        .expect_err("only 25 left");
        assert_eq!(too_much.reason, "INVALID_AMOUNT");
        post(&mut view, &[reverse(None)], Linking::Linked, &call(), ids()).expect("rest");
        assert_eq!(view.accounts[&Uuid::from_u128(1)].balances.posted(), 100);
        let BatchRefusal { refusal: done, .. } =
            post(&mut view, &[reverse(None)], Linking::Linked, &call(), ids())
                .expect_err("nothing left");
        assert_eq!(done.reason, "ALREADY_REVERSED");
    }
}
