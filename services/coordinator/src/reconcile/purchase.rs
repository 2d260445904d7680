//! The purchase checks: what the ledger must show for each purchase saga that ended.
//!
//! Ids are read from the saga's input and its steps' outputs (the engine's log), by field name
//! wherever a step recorded them, so a new version of the saga that moves a field from one step
//! to another is still checked.

use std::collections::BTreeMap;

use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::client::{RetryPolicy, call_idempotent};
use uuid::Uuid;

use super::store::EndedSaga;
use super::{Finding, Participants};
use crate::saga::{SagaOutcome, SagaState};

pub const SAGA_TYPE: &str = "purchase";

/// The checks of one reconciliation run, and the holdings the completed purchases add up to.
pub struct Check {
    participants: Participants,
    /// Units bought by completed purchases, by (tenant, user, item code).
    bought: BTreeMap<(String, String, String), (i64, Vec<Uuid>)>,
}

/// What a purchase saga recorded about itself.
#[derive(Debug, Default)]
struct Purchase {
    tenant_id: String,
    user_id: String,
    quantity: i64,
    item_code: Option<String>,
    reservation_id: Option<String>,
    transfer_id: Option<String>,
}

impl Purchase {
    fn of(saga: &EndedSaga, outcome: &SagaOutcome) -> Self {
        let outputs: Vec<&serde_json::Value> = outcome.outputs.values().collect();
        let from_outputs = |names: &[&str]| outputs.iter().find_map(|o| text(o, names));
        Self {
            tenant_id: text(&saga.input, &["tenant_id"]).unwrap_or_default(),
            user_id: text(&saga.input, &["user_id"]).unwrap_or_else(|| saga.user_id.clone()),
            quantity: saga
                .input
                .get("quantity")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
            item_code: from_outputs(&["item_code", "sku"])
                .or_else(|| text(&saga.input, &["sku", "item_code"])),
            reservation_id: from_outputs(&["reservation_id"]),
            transfer_id: from_outputs(&["transfer_id", "pending_transfer_id", "pending_id"]),
        }
    }
}

/// The first of `names` that `value` (an object, searched one level of nesting deep too)
/// holds as a non-empty string.
fn text(value: &serde_json::Value, names: &[&str]) -> Option<String> {
    let object = value.as_object()?;
    names
        .iter()
        .find_map(|name| {
            object
                .get(*name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        })
        .map(str::to_owned)
        .or_else(|| {
            object
                .values()
                .find_map(|nested| nested.as_object().and_then(|_| text(nested, names)))
        })
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
        let purchase = Purchase::of(saga, outcome);
        let mut found = |check: &'static str, detail: String| {
            findings.push(Finding {
                saga_id: Some(saga.saga_id),
                saga_type: SAGA_TYPE.to_owned(),
                check,
                detail,
            });
        };
        match outcome.state {
            SagaState::Completed => {
                match &purchase.transfer_id {
                    None => found(
                        "TRANSFER_MISSING",
                        "the completed purchase recorded no transfer".into(),
                    ),
                    Some(id) => {
                        let state = self.transfer_state(&purchase.tenant_id, id).await?;
                        if state != Some(pb::PendingState::Posted) {
                            found(
                                "TRANSFER_NOT_POSTED",
                                format!(
                                    "the completed purchase's transfer {id} is {}",
                                    transfer_text(state)
                                ),
                            );
                        }
                    }
                }
                match &purchase.reservation_id {
                    None => found(
                        "RESERVATION_MISSING",
                        "the completed purchase recorded no reservation".into(),
                    ),
                    Some(id) => {
                        let state = self.reservation_state(&purchase.tenant_id, id).await?;
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
                match &purchase.item_code {
                    None => found(
                        "ITEM_MISSING",
                        "the completed purchase recorded no item code".into(),
                    ),
                    Some(code) => {
                        let entry = self
                            .bought
                            .entry((
                                purchase.tenant_id.clone(),
                                purchase.user_id.clone(),
                                code.clone(),
                            ))
                            .or_default();
                        entry.0 += purchase.quantity;
                        entry.1.push(saga.saga_id);
                    }
                }
            }
            SagaState::Compensated => {
                if let Some(id) = &purchase.transfer_id {
                    let state = self.transfer_state(&purchase.tenant_id, id).await?;
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
                if let Some(id) = &purchase.reservation_id {
                    let state = self.reservation_state(&purchase.tenant_id, id).await?;
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

    async fn transfer_state(
        &self,
        tenant: &str,
        id: &str,
    ) -> anyhow::Result<Option<pb::PendingState>> {
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
            Ok(answer) => Ok(answer
                .into_inner()
                .transfer
                .map(|t| pb::PendingState::try_from(t.pending_state).unwrap_or_default())),
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

fn transfer_text(state: Option<pb::PendingState>) -> String {
    state.map_or_else(|| "not found".to_owned(), |s| s.as_str_name().to_owned())
}

fn reservation_text(state: Option<pb::ReservationState>) -> String {
    state.map_or_else(|| "not found".to_owned(), |s| s.as_str_name().to_owned())
}
