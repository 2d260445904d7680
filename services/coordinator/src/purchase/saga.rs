//! The purchase saga (seed 001's `PurchaseSaga`, section 7.1): reserve the stock → a pending
//! transfer of the price from the user's wallet → add the holding → unlock the fragments →
//! unlock the experiences → post the transfer (the pivot) → commit the reservation.
//!
//! Everything that can be refused on business rules (no stock, no funds, a narrative id that
//! does not exist) happens before the pivot, so a refusal compensates in reverse order: the
//! experiences and fragments this purchase unlocked are locked again, the holding removed, the
//! transfer voided and the reservation released. Once the transfer is posted the purchase only
//! goes forward: the reservation is committed (retried until it is).
//!
//! Every compensation is safe when its action never happened or its outcome is unknown: it
//! first replays the action with the action's own key (the participant answers the first
//! outcome, or does it now; a refusal means it never happened), then undoes what that answer
//! names, with its own key. An undo finding the effect already gone (a reservation expired, a
//! pending transfer expired) is done.

use std::time::Duration;

use phoenix_proto::events::v1 as events;
use phoenix_runtime::RemoteError;
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use super::participants::{self as calls, Call, Participants, PurchasePlan};
use crate::saga::{SagaDefinition, SagaEvent, Step, StepContext, StepError, StepResult};

/// The saga type, as `ListSagas` shows it.
pub const SAGA_TYPE: &str = "purchase";
/// Version of the steps below; a change of steps is a new version.
pub const VERSION: u32 = 1;

/// Step names (part of every derived idempotency key: never rename one).
pub mod steps {
    pub const RESERVE_STOCK: &str = "reserve_stock";
    pub const PENDING_TRANSFER: &str = "pending_transfer";
    pub const ADD_HOLDING: &str = "add_holding";
    pub const UNLOCK_FRAGMENTS: &str = "unlock_fragments";
    pub const UNLOCK_EXPERIENCES: &str = "unlock_experiences";
    pub const POST_TRANSFER: &str = "post_transfer";
    pub const COMMIT_RESERVATION: &str = "commit_reservation";
}

/// Output of `reserve_stock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reserved {
    pub reservation_id: String,
}

/// Output of `pending_transfer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub transfer_id: String,
    pub amount: i64,
    pub asset_code: String,
}

/// Output of `add_holding`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held {
    pub item_code: String,
    /// Units the user holds after the step.
    pub quantity: i64,
}

/// Output of the unlock steps: the ids this purchase unlocked (not those unlocked already).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Unlocked {
    pub ids: Vec<String>,
}

/// The purchase saga over `participants`.
pub fn definition(participants: &Participants) -> SagaDefinition {
    SagaDefinition::new(SAGA_TYPE, VERSION)
        .deadline(Duration::from_secs(30))
        .step(
            Step::new(steps::RESERVE_STOCK, with(participants, reserve))
                .compensate(with(participants, release)),
        )
        .step(
            Step::new(steps::PENDING_TRANSFER, with(participants, pay_pending))
                .compensate(with(participants, void)),
        )
        .step(
            Step::new(steps::ADD_HOLDING, with(participants, hold))
                .compensate(with(participants, unhold)),
        )
        .step(
            Step::new(
                steps::UNLOCK_FRAGMENTS,
                with(participants, unlock_fragments),
            )
            .compensate(with(participants, lock_fragments)),
        )
        .step(
            Step::new(
                steps::UNLOCK_EXPERIENCES,
                with(participants, unlock_experiences),
            )
            .compensate(with(participants, lock_experiences)),
        )
        .step(Step::new(steps::POST_TRANSFER, with(participants, post)).pivot())
        .step(Step::new(
            steps::COMMIT_RESERVATION,
            with(participants, commit),
        ))
        .on_commit(|saga| {
            let plan: PurchasePlan = saga.input()?;
            let pending: Option<Pending> = saga.output_of(steps::PENDING_TRANSFER)?;
            Ok(vec![SagaEvent::new(
                "commerce.purchase_completed",
                &events::CommercePurchaseCompleted {
                    user_id: plan.user_id,
                    purchase_id: saga.saga_id().to_string(),
                    shop_item_id: plan.shop_item_id,
                    quantity: plan.quantity,
                    asset: plan.asset_code,
                    total_price: plan.amount,
                    transfer_id: pending.map(|p| p.transfer_id).unwrap_or_default(),
                },
            )])
        })
        .on_compensated(|saga| {
            let plan: PurchasePlan = saga.input()?;
            let reason = saga
                .failure()
                .map(|(_, failure)| failure.reason.clone())
                .unwrap_or_else(|| "SAGA_CANCELLED".to_owned());
            Ok(vec![SagaEvent::new(
                "commerce.purchase_failed",
                &events::CommercePurchaseFailed {
                    user_id: plan.user_id,
                    purchase_id: saga.saga_id().to_string(),
                    shop_item_id: plan.shop_item_id,
                    quantity: plan.quantity,
                    reason,
                },
            )])
        })
}

/// A step function over cloned participants, as the engine's `Fn(StepContext)` wants it.
fn with<F, Fut, O>(
    participants: &Participants,
    step: F,
) -> impl Fn(StepContext) -> Fut + Send + Sync + 'static
where
    F: Fn(Participants, StepContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = StepResult<O>> + Send + 'static,
{
    let participants = participants.clone();
    move |ctx| step(participants.clone(), ctx)
}

/// This attempt's call: its derived key and the attempt's deadline.
fn call(ctx: &StepContext) -> Call {
    Call {
        key: ctx.idempotency_key(),
        timeout: Some(ctx.remaining().max(Duration::from_millis(1))),
    }
}

/// The action's call again (same key), for a compensation that must learn what it did.
fn action_call(ctx: &StepContext) -> Call {
    Call {
        key: ctx.action_idempotency_key(),
        ..call(ctx)
    }
}

/// The reference the ledger keeps with the saga's reservation and transfer.
fn reference(ctx: &StepContext) -> String {
    format!("saga:{}", ctx.saga_id())
}

/// A compensation's replay of its action: `Ok(None)` when the participant refuses it (so the
/// action never happened); transient errors stay errors (the compensation is retried).
fn replayed<T>(answer: Result<T, Status>) -> StepResult<Option<T>> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(status) => match StepError::from_status(&status) {
            StepError::Refused(_) => Ok(None),
            other => Err(other),
        },
    }
}

/// An undo that found nothing left to undo (e.g. `RESERVATION_NOT_OPEN`) is done.
fn undone(
    answer: Result<(), Status>,
    already_done: impl Fn(&RemoteError) -> bool,
) -> StepResult<()> {
    match answer {
        Ok(()) => Ok(()),
        Err(status) if status.code() == Code::FailedPrecondition => {
            let remote = RemoteError::from_status(&status);
            if already_done(&remote) {
                Ok(())
            } else {
                Err(StepError::from_status(&status))
            }
        }
        Err(status) => Err(StepError::from_status(&status)),
    }
}

async fn reserve(participants: Participants, ctx: StepContext) -> StepResult<Reserved> {
    let plan: PurchasePlan = ctx.input()?;
    let reservation_id =
        calls::reserve_stock(&participants, &plan, &reference(&ctx), &call(&ctx)).await?;
    Ok(Reserved { reservation_id })
}

async fn release(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    let reservation_id = match ctx.output::<Reserved>()? {
        Some(reserved) => reserved.reservation_id,
        None => {
            let replay =
                calls::reserve_stock(&participants, &plan, &reference(&ctx), &action_call(&ctx))
                    .await;
            match replayed(replay)? {
                Some(id) => id,
                None => return Ok(()),
            }
        }
    };
    let answer =
        calls::release_reservation(&participants, &plan, &reservation_id, &call(&ctx)).await;
    // Released already, or expired: its units are back. (Committed cannot be: that step comes
    // after the pivot, which is never compensated.)
    undone(answer, |remote| {
        remote.reason == "RESERVATION_NOT_OPEN"
            && remote.metadata.get("state").map(String::as_str) != Some("COMMITTED")
    })
}

async fn pay_pending(participants: Participants, ctx: StepContext) -> StepResult<Pending> {
    let plan: PurchasePlan = ctx.input()?;
    let transfer_id =
        calls::pending_transfer(&participants, &plan, &reference(&ctx), &call(&ctx)).await?;
    Ok(Pending {
        transfer_id,
        amount: plan.amount,
        asset_code: plan.asset_code,
    })
}

async fn void(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    let transfer_id = match ctx.output::<Pending>()? {
        Some(pending) => pending.transfer_id,
        None => {
            let replay =
                calls::pending_transfer(&participants, &plan, &reference(&ctx), &action_call(&ctx))
                    .await;
            match replayed(replay)? {
                Some(id) => id,
                None => return Ok(()),
            }
        }
    };
    let answer = calls::void_transfer(&participants, &plan, &transfer_id, &call(&ctx)).await;
    // Voided already or expired (posting is the pivot, never compensated): nothing is held.
    undone(answer, |remote| {
        matches!(
            remote.reason.as_str(),
            "PENDING_NOT_OPEN" | "PENDING_EXPIRED"
        )
    })
}

async fn hold(participants: Participants, ctx: StepContext) -> StepResult<Held> {
    let plan: PurchasePlan = ctx.input()?;
    let quantity = calls::add_holding(&participants, &plan, &call(&ctx)).await?;
    Ok(Held {
        item_code: plan.sku,
        quantity,
    })
}

async fn unhold(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    if ctx.output::<Held>()?.is_none() {
        let replay = calls::add_holding(&participants, &plan, &action_call(&ctx)).await;
        if replayed(replay)?.is_none() {
            return Ok(());
        }
    }
    Ok(calls::remove_holding(&participants, &plan, &call(&ctx)).await?)
}

async fn unlock_fragments(participants: Participants, ctx: StepContext) -> StepResult<Unlocked> {
    let plan: PurchasePlan = ctx.input()?;
    let ids = calls::unlock_fragments(&participants, &plan, &call(&ctx)).await?;
    Ok(Unlocked { ids })
}

async fn lock_fragments(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    let ids = match ctx.output::<Unlocked>()? {
        Some(unlocked) => unlocked.ids,
        None => {
            let replay = calls::unlock_fragments(&participants, &plan, &action_call(&ctx)).await;
            replayed(replay)?.unwrap_or_default()
        }
    };
    Ok(calls::lock_fragments(&participants, &plan, ids, &call(&ctx)).await?)
}

/// The key of one experience's call within the step's call.
fn per_experience(call: &Call, experience_id: &str) -> Call {
    Call {
        key: format!("{}:{experience_id}", call.key),
        timeout: call.timeout,
    }
}

/// Unlocks each experience in turn. When one is refused, the ones this step already unlocked
/// are locked again before the refusal is answered: a refused step is not compensated.
async fn unlock_experiences(participants: Participants, ctx: StepContext) -> StepResult<Unlocked> {
    let plan: PurchasePlan = ctx.input()?;
    let step = call(&ctx);
    let mut ids = Vec::new();
    for experience_id in &plan.experience_ids {
        let this = per_experience(&step, experience_id);
        match calls::unlock_experience(&participants, &plan, experience_id, &this).await {
            Ok(true) => ids.push(experience_id.clone()),
            Ok(false) => {}
            Err(status) => {
                let error = StepError::from_status(&status);
                if matches!(error, StepError::Refused(_)) {
                    for done in &ids {
                        let undo = Call {
                            key: format!("{}:undo", per_experience(&step, done).key),
                            timeout: step.timeout,
                        };
                        if let Err(status) =
                            calls::lock_experience(&participants, &plan, done, &undo).await
                        {
                            // The step's outcome is now partial: compensation (which replays
                            // every unlock by its key) finishes the job.
                            return Err(StepError::unknown(
                                "PARTIAL_UNLOCK",
                                format!("experience {done} stayed unlocked: {status}"),
                            ));
                        }
                    }
                }
                return Err(error);
            }
        }
    }
    Ok(Unlocked { ids })
}

async fn lock_experiences(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    let ids = match ctx.output::<Unlocked>()? {
        Some(unlocked) => unlocked.ids,
        None => {
            let action = action_call(&ctx);
            let mut ids = Vec::new();
            for experience_id in &plan.experience_ids {
                let this = per_experience(&action, experience_id);
                let replay =
                    calls::unlock_experience(&participants, &plan, experience_id, &this).await;
                if replayed(replay)? == Some(true) {
                    ids.push(experience_id.clone());
                }
            }
            ids
        }
    };
    let undo = call(&ctx);
    for experience_id in &ids {
        let this = per_experience(&undo, experience_id);
        calls::lock_experience(&participants, &plan, experience_id, &this).await?;
    }
    Ok(())
}

async fn post(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    let pending: Pending = ctx.output_of(steps::PENDING_TRANSFER)?;
    Ok(calls::post_transfer(&participants, &plan, &pending.transfer_id, &call(&ctx)).await?)
}

async fn commit(participants: Participants, ctx: StepContext) -> StepResult<()> {
    let plan: PurchasePlan = ctx.input()?;
    let reserved: Reserved = ctx.output_of(steps::RESERVE_STOCK)?;
    Ok(
        calls::commit_reservation(&participants, &plan, &reserved.reservation_id, &call(&ctx))
            .await?,
    )
}
