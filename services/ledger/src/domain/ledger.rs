//! Accounts, transfers and the posting engine: given the locked accounts and a list of
//! operations, decide what each does to the balances and which rows it adds. The engine is pure;
//! the store loads its inputs inside the posting transaction and writes what it returns.
//!
//! Balances follow TigerBeetle: four sums per account that only grow or (for the pending ones)
//! shrink when a reservation is resolved. The balance limit is checked after every change:
//! for a no-overdraft account, posted debits plus pending debits never exceed posted credits.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use phoenix_runtime::Violations;

use super::Refusal;
use super::policy::{self, Policy};

/// Largest batch of transfers one call may carry.
pub const MAX_BATCH: usize = 8_000;
/// Longest timeout of a pending transfer.
pub const MAX_PENDING_TIMEOUT: chrono::Duration = chrono::Duration::days(366);
/// Longest transfer code.
pub const MAX_CODE_CHARS: usize = 64;
/// Most metadata labels on one record.
pub const MAX_METADATA_ENTRIES: usize = 32;

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
        violations.check(
            !(owner_ref.is_empty()
                || owner_ref.chars().count() > 200
                || owner_ref.chars().any(char::is_control)),
            "owner_ref",
            "INVALID_OWNER_REF",
            "is required: 1-200 characters without control characters",
        );
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
        if let Err(refusal) = check_metadata(&metadata) {
            violations.absorb(refusal);
        }
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

fn is_asset_code(code: &str) -> bool {
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

/// Labels: at most 32, keys 1-64 characters, values at most 1024.
pub fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), Refusal> {
    let bad = metadata.len() > MAX_METADATA_ENTRIES
        || metadata.iter().any(|(key, value)| {
            key.is_empty()
                || key.chars().count() > 64
                || value.chars().count() > 1024
                || key.chars().any(char::is_control)
        });
    if bad {
        Err(Refusal::invalid(
            "metadata",
            "INVALID_METADATA",
            "at most 32 labels; keys 1-64 characters without control characters, values at most 1024",
        ))
    } else {
        Ok(())
    }
}

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
    // accounts appends 500 events, not 16,000.
    let mut touched: Vec<_> = effects.into_iter().collect();
    touched.sort_by_key(|(id, _)| *id);
    for (account_id, transfers) in touched {
        let state = view
            .accounts
            .get_mut(&account_id)
            .expect("only accounts of the view are touched");
        let first_version = state.event_version;
        state.event_version += 1;
        posting.changes.push(AccountChange {
            account_id,
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
    let debit = account(view, plan.debit, "debit_account_id")?;
    let credit = account(view, plan.credit, "credit_account_id")?;
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
    for (account_id, after, delta, signed) in [
        (plan.debit, debit_after, plan.debit_delta, -plan.amount),
        (plan.credit, credit_after, plan.credit_delta, plan.amount),
    ] {
        let state = view.accounts.get_mut(&account_id).expect("checked above");
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
    if plan.new_debit && plan.counts_today {
        *view.debited_today.entry(plan.debit).or_insert(0) += plan.amount;
    }
    match plan.kind {
        TransferKind::Pending => {
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
        TransferKind::PostPending | TransferKind::VoidPending | TransferKind::ExpirePending => {
            let pending_id = plan.pending_id.expect("resolutions name their pending");
            posting.resolved.push(pending_id);
            if let Some(pending) = view.referenced.get_mut(&pending_id) {
                pending.open = false;
            }
        }
        TransferKind::Posted => {
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

/// What an operation will do, before the balance checks.
struct Plan {
    kind: TransferKind,
    debit: Uuid,
    credit: Uuid,
    amount: i64,
    debit_delta: BalanceDelta,
    credit_delta: BalanceDelta,
    pending_id: Option<Uuid>,
    reversal_of: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
    code: String,
    metadata: BTreeMap<String, String>,
    /// A new debit (not the resolution of a reservation): policies apply.
    new_debit: bool,
    /// Counts toward the daily debit limit.
    counts_today: bool,
}

fn plan(view: &LedgerView, operation: &Operation, call: &CallContext) -> Result<Plan, Refusal> {
    match operation {
        Operation::Transfer(spec) => {
            spec.check()?;
            Ok(new_transfer(spec, None, call.now))
        }
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
            spec.check()?;
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
    use super::*;

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
