//! Saga steps more than one operation uses: a reward paid from the issuer that its
//! compensation reverses, items added to holdings that it removes, and unlocks in the
//! narrative that it locks again.
//!
//! Both follow the rule of [`super::participants`] for an action whose outcome is unknown:
//! the compensation repeats the action under the action's own key (the participant answers the
//! first call's result, or makes it now), then undoes exactly that.

use phoenix_proto::narrative::v1 as narrative;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_runtime::client::PeerChannel;

use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;

use super::participants::{Grant, HoldingChange, LedgerBook, LedgerBooks, Participants};
use crate::saga::{Step, StepContext, StepResult};

/// A reward payment a step makes: `amount` of `asset` to `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub user: String,
    pub asset: String,
    pub amount: i64,
    pub code: &'static str,
}

/// What a step pays, read from the saga's input and earlier outputs; `None`: nothing.
pub type PaymentOf = fn(&StepContext) -> StepResult<Option<Payment>>;

/// A step paying `payment_of` from the issuer (output: the transfer id, or `None` when there
/// was nothing to pay), compensated by reversing that transfer.
pub fn reversible_grant(
    name: &'static str,
    participants: &Participants,
    book: &LedgerBooks,
    payment_of: PaymentOf,
) -> Step {
    let (action, action_book) = (participants.clone(), book.clone());
    let (undo, undo_book) = (participants.clone(), book.clone());
    Step::new(name, move |ctx: StepContext| {
        let mut ledger = action.ledger.clone();
        let book = action_book.clone();
        async move {
            let book = book.in_saga(&ctx)?;
            pay(&mut ledger, &book, &ctx, payment_of, ctx.idempotency_key()).await
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut ledger = undo.ledger.clone();
        let book = undo_book.clone();
        async move {
            let book = book.in_saga(&ctx)?;
            let transfer = match ctx.output::<Option<String>>()? {
                Some(transfer) => transfer,
                None => {
                    pay(
                        &mut ledger,
                        &book,
                        &ctx,
                        payment_of,
                        ctx.action_idempotency_key(),
                    )
                    .await?
                }
            };
            if let Some(transfer) = transfer {
                book.reverse(
                    &mut ledger,
                    &transfer,
                    ctx.idempotency_key(),
                    ctx.remaining(),
                )
                .await?;
            }
            Ok(())
        }
    })
}

async fn pay(
    ledger: &mut phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient<PeerChannel>,
    book: &LedgerBook,
    ctx: &StepContext,
    payment_of: PaymentOf,
    key: String,
) -> StepResult<Option<String>> {
    let Some(payment) = payment_of(ctx)?.filter(|payment| payment.amount > 0) else {
        return Ok(None);
    };
    let grant = Grant {
        user: &payment.user,
        asset: &payment.asset,
        amount: payment.amount,
        code: payment.code,
        key: &key,
    };
    Ok(Some(book.grant(ledger, &grant, ctx.remaining()).await?))
}

/// The user and the items (code, quantity) a step adds, read from the saga.
pub type ItemsOf = fn(&StepContext) -> StepResult<(String, Vec<(String, i64)>)>;

/// A step adding `items_of` to the user's holdings (key `<step key>:<item>` each; output: the
/// items), compensated by removing exactly those.
pub fn reversible_items(
    name: &'static str,
    participants: &Participants,
    book: &LedgerBooks,
    items_of: ItemsOf,
) -> Step {
    let (action, action_book) = (participants.clone(), book.clone());
    let (undo, undo_book) = (participants.clone(), book.clone());
    Step::new(name, move |ctx: StepContext| {
        let mut stock = action.stock.clone();
        let book = action_book.clone();
        async move {
            let book = book.in_saga(&ctx)?;
            let (user, items) = items_of(&ctx)?;
            let key = ctx.idempotency_key();
            change_each(&mut stock, &book, &ctx, (&user, &items), key, true).await?;
            Ok(items)
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut stock = undo.stock.clone();
        let book = undo_book.clone();
        async move {
            let book = book.in_saga(&ctx)?;
            let (user, planned) = items_of(&ctx)?;
            let items = match ctx.output::<Vec<(String, i64)>>()? {
                Some(items) => items,
                None => {
                    // Unknown outcome: the adds under their own keys happen once, now or before.
                    let key = ctx.action_idempotency_key();
                    change_each(&mut stock, &book, &ctx, (&user, &planned), key, true).await?;
                    planned
                }
            };
            let key = ctx.idempotency_key();
            change_each(&mut stock, &book, &ctx, (&user, &items), key, false).await
        }
    })
}

/// Adds (or removes) each item of the user's under `key:<item>`.
async fn change_each(
    stock: &mut StockServiceClient<PeerChannel>,
    book: &LedgerBook,
    ctx: &StepContext,
    (user, items): (&str, &[(String, i64)]),
    key: String,
    add: bool,
) -> StepResult<()> {
    for (item, quantity) in items {
        let change = HoldingChange {
            user,
            item,
            quantity: *quantity,
            key: format!("{key}:{item}"),
        };
        book.change_holding(stock, change, add, ctx.remaining())
            .await?;
    }
    Ok(())
}

/// What a narrative unlock step unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlockable {
    Fragments,
    Experiences,
}

/// The user and the ids a step unlocks, read from the saga.
pub type TargetsOf = fn(&StepContext) -> StepResult<(String, Vec<String>)>;

/// A step unlocking `targets_of` (output: the ids this step unlocked, not those unlocked
/// before), compensated by locking exactly those again.
pub fn reversible_unlock(
    name: &'static str,
    kind: Unlockable,
    participants: &Participants,
    targets_of: TargetsOf,
) -> Step {
    let action = participants.clone();
    let undo = participants.clone();
    Step::new(name, move |ctx: StepContext| {
        let mut narrative = action.narrative.clone();
        async move {
            let (user, ids) = targets_of(&ctx)?;
            kind.unlock(&mut narrative, &ctx, &user, ids, ctx.idempotency_key())
                .await
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut narrative = undo.narrative.clone();
        async move {
            let (user, ids) = targets_of(&ctx)?;
            let unlocked = match ctx.output::<Vec<String>>()? {
                Some(unlocked) => unlocked,
                None => {
                    let key = ctx.action_idempotency_key();
                    kind.unlock(&mut narrative, &ctx, &user, ids, key).await?
                }
            };
            kind.lock(&mut narrative, &ctx, &user, unlocked).await
        }
    })
}

impl Unlockable {
    /// Unlocks `ids` under `key` (one call per experience, `key:<id>`); answers the ones these
    /// calls unlocked. A replay answers what the first call unlocked.
    async fn unlock(
        self,
        narrative: &mut NarrativeServiceClient<PeerChannel>,
        ctx: &StepContext,
        user: &str,
        ids: Vec<String>,
        key: String,
    ) -> StepResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if self == Self::Fragments {
            return Ok(narrative
                .unlock_fragments(ctx.request(narrative::UnlockFragmentsRequest {
                    user_id: user.to_owned(),
                    fragment_ids: ids,
                    idempotency_key: key,
                }))
                .await?
                .into_inner()
                .unlocked_fragment_ids);
        }
        let mut newly = Vec::new();
        for id in ids {
            let answer = narrative
                .unlock_experience(ctx.request(narrative::UnlockExperienceRequest {
                    user_id: user.to_owned(),
                    experience_id: id.clone(),
                    idempotency_key: format!("{key}:{id}"),
                }))
                .await?
                .into_inner();
            if answer.newly_unlocked {
                newly.push(id);
            }
        }
        Ok(newly)
    }

    /// Locks `ids` again under the compensation's key.
    async fn lock(
        self,
        narrative: &mut NarrativeServiceClient<PeerChannel>,
        ctx: &StepContext,
        user: &str,
        ids: Vec<String>,
    ) -> StepResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        if self == Self::Fragments {
            narrative
                .lock_fragments(ctx.request(narrative::LockFragmentsRequest {
                    user_id: user.to_owned(),
                    fragment_ids: ids,
                    idempotency_key: ctx.idempotency_key(),
                }))
                .await?;
            return Ok(());
        }
        for id in ids {
            narrative
                .lock_experience(ctx.request(narrative::LockExperienceRequest {
                    user_id: user.to_owned(),
                    experience_id: id.clone(),
                    idempotency_key: format!("{}:{id}", ctx.idempotency_key()),
                }))
                .await?;
        }
        Ok(())
    }
}
