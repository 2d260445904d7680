//! The purchase checks: what the ledger must show for each purchase saga that ended.
//!
//! What a saga did is read from its input (the [`PurchasePlan`]) and its steps' outputs in the
//! engine's log. A step whose outcome is unknown left no output; its compensation found the
//! effect by the action's key, which the reconciliation cannot: the ledger-wide checks of
//! `phoenix chaos sagas` (no open reservation, no pending debit left) cover those.

use std::collections::BTreeMap;

use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::client::{RetryPolicy, call_idempotent};
use uuid::Uuid;

use super::store::EndedSaga;
use super::{Finding, Participants};
use crate::purchase::participants::PurchasePlan;
use crate::purchase::saga::{Pending, Reserved, steps};
use crate::saga::{SagaOutcome, SagaState};

pub use crate::purchase::saga::SAGA_TYPE;

/// The checks of one reconciliation run, and the holdings the completed purchases add up to.
pub struct Check {
    participants: Participants,
    /// Units bought by completed purchases, by (tenant, user, item code).
    bought: BTreeMap<(String, String, String), (i64, Vec<Uuid>)>,
}

/// What a purchase saga recorded about itself.
#[derive(Debug)]
struct Purchase {
    plan: PurchasePlan,
    reserved: Option<Reserved>,
    pending: Option<Pending>,
}

impl Purchase {
    fn of(saga: &EndedSaga, outcome: &SagaOutcome) -> Result<Self, String> {
        let plan = serde_json::from_value(saga.input.clone())
            .map_err(|e| format!("the saga's input is not a purchase plan: {e}"))?;
        let output = |step: &str| outcome.outputs.get(step).cloned();
        Ok(Self {
            plan,
            reserved: output(steps::RESERVE_STOCK).and_then(|v| serde_json::from_value(v).ok()),
            pending: output(steps::PENDING_TRANSFER).and_then(|v| serde_json::from_value(v).ok()),
        })
    }
}

impl Check {
    pub fn new(participants: Participants) -> Self {
        Self {
            participants,
            bought: BTreeMap::new(),
        }
    }

    /// Checks one ended purchase saga.
    pub async fn saga(
        &mut self,
        saga: &EndedSaga,
        outcome: &SagaOutcome,
        findings: &mut Vec<Finding>,
    ) -> anyhow::Result<()> {
        let mut found = |check: &'static str, detail: String| {
            findings.push(Finding {
                saga_id: Some(saga.saga_id),
                saga_type: SAGA_TYPE.to_owned(),
                check,
                detail,
            });
        };
        let purchase = match Purchase::of(saga, outcome) {
            Ok(purchase) => purchase,
            Err(detail) => {
                found("PURCHASE_UNREADABLE", detail);
                return Ok(());
            }
        };
        let tenant = purchase.plan.tenant_id.clone();
        match outcome.state {
            SagaState::Completed => {
                match &purchase.pending {
                    None => found(
                        "TRANSFER_MISSING",
                        "the completed purchase recorded no transfer".into(),
                    ),
                    Some(pending) => {
                        let id = &pending.transfer_id;
                        let transfer = self.transfer(&tenant, id).await?;
                        let state = transfer.as_ref().map(pending_state);
                        if state != Some(pb::PendingState::Posted) {
                            found(
                                "TRANSFER_NOT_POSTED",
                                format!(
                                    "the completed purchase's transfer {id} is {}",
                                    transfer_text(state)
                                ),
                            );
                        }
                        let plan = &purchase.plan;
                        if let Some(transfer) = transfer
                            && (transfer.amount != plan.amount
                                || transfer.debit_account_id != plan.wallet_account_id)
                        {
                            found(
                                "TRANSFER_MISMATCH",
                                format!(
                                    "the completed purchase's transfer {id} took {} from {}; the purchase costs {} from {}",
                                    transfer.amount,
                                    transfer.debit_account_id,
                                    plan.amount,
                                    plan.wallet_account_id
                                ),
                            );
                        }
                    }
                }
                match &purchase.reserved {
                    None => found(
                        "RESERVATION_MISSING",
                        "the completed purchase recorded no reservation".into(),
                    ),
                    Some(Reserved { reservation_id: id }) => {
                        let state = self.reservation_state(&tenant, id).await?;
                        if state != Some(pb::ReservationState::Committed) {
                            found(
                                "RESERVATION_NOT_COMMITTED",
                                format!(
                                    "the completed purchase's reservation {id} is {}",
                                    reservation_text(state)
                                ),
                            );
                        }
                    }
                }
                let plan = &purchase.plan;
                let entry = self
                    .bought
                    .entry((tenant.clone(), plan.user_id.clone(), plan.sku.clone()))
                    .or_default();
                entry.0 += plan.quantity;
                entry.1.push(saga.saga_id);
            }
            SagaState::Compensated => {
                if let Some(Pending {
                    transfer_id: id, ..
                }) = &purchase.pending
                {
                    let state = self
                        .transfer(&tenant, id)
                        .await?
                        .as_ref()
                        .map(pending_state);
                    match state {
                        Some(pb::PendingState::Posted) => found(
                            "COMPENSATED_BUT_PAID",
                            format!(
                                "the compensated purchase's transfer {id} was posted: the user paid for nothing"
                            ),
                        ),
                        Some(pb::PendingState::Open) => found(
                            "PENDING_TRANSFER_LEFT",
                            format!("the compensated purchase left its pending transfer {id} open"),
                        ),
                        _ => {}
                    }
                }
                if let Some(Reserved { reservation_id: id }) = &purchase.reserved {
                    let state = self.reservation_state(&tenant, id).await?;
                    match state {
                        Some(pb::ReservationState::Committed) => found(
                            "COMPENSATED_BUT_STOCK_TAKEN",
                            format!("the compensated purchase's reservation {id} was committed"),
                        ),
                        Some(pb::ReservationState::Open) => found(
                            "RESERVATION_LEFT",
                            format!("the compensated purchase left its reservation {id} open"),
                        ),
                        _ => {}
                    }
                }
            }
            // A stuck saga is listed as such; its effects are for the operator who resumes it.
            _ => {}
        }
        Ok(())
    }

    /// The check over many sagas: every user holds at least what their completed purchases of
    /// an item bought.
    pub async fn finish(&mut self, findings: &mut Vec<Finding>) -> anyhow::Result<()> {
        let mut holdings: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
        for ((tenant, user, code), (bought, sagas)) in &self.bought {
            let owned = match holdings.get(&(tenant.clone(), user.clone())) {
                Some(owned) => owned,
                None => {
                    let listed = self.holdings(tenant, user).await?;
                    holdings
                        .entry((tenant.clone(), user.clone()))
                        .or_insert(listed)
                }
            };
            let held = owned.get(code).copied().unwrap_or(0);
            if held < *bought {
                findings.push(Finding {
                    saga_id: (sagas.len() == 1).then(|| sagas[0]),
                    saga_type: SAGA_TYPE.to_owned(),
                    check: "HOLDING_MISSING",
                    detail: format!(
                        "user {user} holds {held} of {code} but {} completed purchase(s) bought {bought}",
                        sagas.len()
                    ),
                });
            }
        }
        Ok(())
    }

    async fn transfer(&self, tenant: &str, id: &str) -> anyhow::Result<Option<pb::Transfer>> {
        let request = pb::GetTransferRequest {
            tenant_id: tenant.to_owned(),
            transfer_id: id.to_owned(),
        };
        let answer = call_idempotent(RetryPolicy::default(), || {
            let mut ledger = self.participants.ledger.clone();
            let request = request.clone();
            async move { ledger.get_transfer(request).await }
        })
        .await;
        match answer {
            Ok(answer) => Ok(answer.into_inner().transfer),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(anyhow::anyhow!("ledger GetTransfer {id}: {status}")),
        }
    }

    async fn reservation_state(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<pb::ReservationState>> {
        let request = pb::GetReservationRequest {
            tenant_id: tenant.to_owned(),
            reservation_id: id.to_owned(),
        };
        let answer = call_idempotent(RetryPolicy::default(), || {
            let mut stock = self.participants.stock.clone();
            let request = request.clone();
            async move { stock.get_reservation(request).await }
        })
        .await;
        match answer {
            Ok(answer) => Ok(answer
                .into_inner()
                .reservation
                .map(|r| pb::ReservationState::try_from(r.state).unwrap_or_default())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(anyhow::anyhow!("ledger GetReservation {id}: {status}")),
        }
    }

    async fn holdings(&self, tenant: &str, user: &str) -> anyhow::Result<BTreeMap<String, i64>> {
        let request = pb::ListHoldingsRequest {
            tenant_id: tenant.to_owned(),
            owner_ref: user.to_owned(),
        };
        let answer = call_idempotent(RetryPolicy::default(), || {
            let mut stock = self.participants.stock.clone();
            let request = request.clone();
            async move { stock.list_holdings(request).await }
        })
        .await
        .map_err(|status| anyhow::anyhow!("ledger ListHoldings of {user}: {status}"))?;
        Ok(answer
            .into_inner()
            .holdings
            .into_iter()
            .map(|h| (h.item_code, h.quantity))
            .collect())
    }
}

fn pending_state(transfer: &pb::Transfer) -> pb::PendingState {
    pb::PendingState::try_from(transfer.pending_state).unwrap_or_default()
}

fn transfer_text(state: Option<pb::PendingState>) -> String {
    state.map_or_else(|| "not found".to_owned(), |s| s.as_str_name().to_owned())
}

fn reservation_text(state: Option<pb::ReservationState>) -> String {
    state.map_or_else(|| "not found".to_owned(), |s| s.as_str_name().to_owned())
}
