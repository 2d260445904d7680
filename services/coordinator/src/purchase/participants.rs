//! The participant calls a purchase makes, one function per call, each with the idempotency key
//! it is given. The saga's steps call them with their derived keys; `phoenix bench sagas` calls
//! the same functions directly, without the saga log, as its floor.

use std::collections::BTreeMap;
use std::time::Duration;

use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::shop_service_client::ShopServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_runtime::client::PeerChannel;
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

/// How long a purchase's reservation and pending transfer hold before the ledger gives them
/// back on its own: far longer than a saga takes (its deadline is 30 s), so only a purchase
/// abandoned for good (every coordinator gone) is released by expiry.
pub const HOLD_FOR: Duration = Duration::from_secs(3600);

/// Transfer code of a purchase's payment.
pub const TRANSFER_CODE: &str = "purchase";

/// The clients of the participants a purchase calls. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Participants {
    pub ledger: LedgerServiceClient<PeerChannel>,
    pub stock: StockServiceClient<PeerChannel>,
    pub shop: ShopServiceClient<PeerChannel>,
    pub narrative: NarrativeServiceClient<PeerChannel>,
}

impl Participants {
    /// Clients over the ledger's and the narrative's channels.
    pub fn new(ledger: PeerChannel, narrative: PeerChannel) -> Self {
        Self {
            ledger: LedgerServiceClient::new(ledger.clone()),
            stock: StockServiceClient::new(ledger.clone()),
            shop: ShopServiceClient::new(ledger),
            narrative: NarrativeServiceClient::new(narrative),
        }
    }
}

/// What a purchase acts on, resolved before its saga starts and stored as the saga's input, so
/// a recovered saga needs no lookup and acts on what the caller saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchasePlan {
    pub tenant_id: String,
    pub user_id: String,
    pub shop_item_id: String,
    pub quantity: i64,
    /// The inventory item reserved, and the holding code the user receives.
    pub sku: String,
    pub asset_code: String,
    /// price × quantity, minor units.
    pub amount: i64,
    pub wallet_account_id: String,
    pub revenue_account_id: String,
    pub fragment_ids: Vec<String>,
    pub experience_ids: Vec<String>,
}

/// One participant call: its idempotency key and, when it has one, its gRPC deadline.
#[derive(Debug, Clone)]
pub struct Call {
    pub key: String,
    pub timeout: Option<Duration>,
}

impl Call {
    /// `message` as a request with this call's deadline.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        request
    }
}

/// Reserves the plan's units; answers the reservation id.
pub async fn reserve_stock(
    participants: &Participants,
    plan: &PurchasePlan,
    reference: &str,
    call: &Call,
) -> Result<String, Status> {
    let answer = participants
        .stock
        .clone()
        .reserve_stock(call.request(ledger::ReserveStockRequest {
            tenant_id: plan.tenant_id.clone(),
            sku: plan.sku.clone(),
            quantity: plan.quantity,
            expected_version: None,
            ttl: Some(duration(HOLD_FOR)),
            reference: reference.to_owned(),
            idempotency_key: call.key.clone(),
        }))
        .await?
        .into_inner();
    Ok(answer.reservation.map(|r| r.id).unwrap_or_default())
}

pub async fn release_reservation(
    participants: &Participants,
    plan: &PurchasePlan,
    reservation_id: &str,
    call: &Call,
) -> Result<(), Status> {
    participants
        .stock
        .clone()
        .release_reservation(call.request(ledger::ReleaseReservationRequest {
            tenant_id: plan.tenant_id.clone(),
            reservation_id: reservation_id.to_owned(),
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

pub async fn commit_reservation(
    participants: &Participants,
    plan: &PurchasePlan,
    reservation_id: &str,
    call: &Call,
) -> Result<(), Status> {
    participants
        .stock
        .clone()
        .commit_reservation(call.request(ledger::CommitReservationRequest {
            tenant_id: plan.tenant_id.clone(),
            reservation_id: reservation_id.to_owned(),
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

/// A pending transfer of the plan's amount from the wallet to the revenue account; answers
/// the transfer id.
pub async fn pending_transfer(
    participants: &Participants,
    plan: &PurchasePlan,
    reference: &str,
    call: &Call,
) -> Result<String, Status> {
    let metadata = BTreeMap::from([
        ("purchase".to_owned(), reference.to_owned()),
        ("shop_item_id".to_owned(), plan.shop_item_id.clone()),
    ]);
    let answer = participants
        .ledger
        .clone()
        .create_transfer(call.request(ledger::CreateTransferRequest {
            tenant_id: plan.tenant_id.clone(),
            transfer: Some(ledger::TransferSpec {
                debit_account_id: plan.wallet_account_id.clone(),
                credit_account_id: plan.revenue_account_id.clone(),
                amount: plan.amount,
                pending: true,
                timeout: Some(duration(HOLD_FOR)),
                code: TRANSFER_CODE.to_owned(),
                metadata,
            }),
            idempotency_key: call.key.clone(),
        }))
        .await?
        .into_inner();
    Ok(answer.transfer.map(|t| t.id).unwrap_or_default())
}

pub async fn void_transfer(
    participants: &Participants,
    plan: &PurchasePlan,
    transfer_id: &str,
    call: &Call,
) -> Result<(), Status> {
    participants
        .ledger
        .clone()
        .void_pending_transfer(call.request(ledger::VoidPendingTransferRequest {
            tenant_id: plan.tenant_id.clone(),
            pending_id: transfer_id.to_owned(),
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

pub async fn post_transfer(
    participants: &Participants,
    plan: &PurchasePlan,
    transfer_id: &str,
    call: &Call,
) -> Result<(), Status> {
    participants
        .ledger
        .clone()
        .post_pending_transfer(call.request(ledger::PostPendingTransferRequest {
            tenant_id: plan.tenant_id.clone(),
            pending_id: transfer_id.to_owned(),
            // All of it.
            amount: 0,
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

/// Gives the user the plan's units; answers how many they hold after.
pub async fn add_holding(
    participants: &Participants,
    plan: &PurchasePlan,
    call: &Call,
) -> Result<i64, Status> {
    let answer = participants
        .stock
        .clone()
        .add_holding(call.request(ledger::AddHoldingRequest {
            tenant_id: plan.tenant_id.clone(),
            owner_ref: plan.user_id.clone(),
            item_code: plan.sku.clone(),
            quantity: plan.quantity,
            idempotency_key: call.key.clone(),
        }))
        .await?
        .into_inner();
    Ok(answer.holding.map_or(0, |h| h.quantity))
}

pub async fn remove_holding(
    participants: &Participants,
    plan: &PurchasePlan,
    call: &Call,
) -> Result<(), Status> {
    participants
        .stock
        .clone()
        .remove_holding(call.request(ledger::RemoveHoldingRequest {
            tenant_id: plan.tenant_id.clone(),
            owner_ref: plan.user_id.clone(),
            item_code: plan.sku.clone(),
            quantity: plan.quantity,
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

/// Unlocks the plan's fragments (none: no call); answers the ones this call unlocked.
pub async fn unlock_fragments(
    participants: &Participants,
    plan: &PurchasePlan,
    call: &Call,
) -> Result<Vec<String>, Status> {
    if plan.fragment_ids.is_empty() {
        return Ok(Vec::new());
    }
    let answer = participants
        .narrative
        .clone()
        .unlock_fragments(call.request(narrative::UnlockFragmentsRequest {
            user_id: plan.user_id.clone(),
            fragment_ids: plan.fragment_ids.clone(),
            idempotency_key: call.key.clone(),
        }))
        .await?
        .into_inner();
    Ok(answer.unlocked_fragment_ids)
}

pub async fn lock_fragments(
    participants: &Participants,
    plan: &PurchasePlan,
    fragment_ids: Vec<String>,
    call: &Call,
) -> Result<(), Status> {
    if fragment_ids.is_empty() {
        return Ok(());
    }
    participants
        .narrative
        .clone()
        .lock_fragments(call.request(narrative::LockFragmentsRequest {
            user_id: plan.user_id.clone(),
            fragment_ids,
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

/// Unlocks one experience; answers whether this call unlocked it.
pub async fn unlock_experience(
    participants: &Participants,
    plan: &PurchasePlan,
    experience_id: &str,
    call: &Call,
) -> Result<bool, Status> {
    let answer = participants
        .narrative
        .clone()
        .unlock_experience(call.request(narrative::UnlockExperienceRequest {
            user_id: plan.user_id.clone(),
            experience_id: experience_id.to_owned(),
            idempotency_key: call.key.clone(),
        }))
        .await?
        .into_inner();
    Ok(answer.newly_unlocked)
}

pub async fn lock_experience(
    participants: &Participants,
    plan: &PurchasePlan,
    experience_id: &str,
    call: &Call,
) -> Result<(), Status> {
    participants
        .narrative
        .clone()
        .lock_experience(call.request(narrative::LockExperienceRequest {
            user_id: plan.user_id.clone(),
            experience_id: experience_id.to_owned(),
            idempotency_key: call.key.clone(),
        }))
        .await?;
    Ok(())
}

fn duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    }
}
