//! Purchase's gRPC face: the request validated whole, one use-case call, the saga's outcome in
//! seed 001's result shape.

use phoenix_proto::coordinator::v1 as pb;
use phoenix_runtime::auth::Access;
use phoenix_runtime::{Error, Violations};

use super::{PurchaseOrder, Purchases, receipt};
use crate::saga::{SagaOutcome, SagaState};

/// Most units one purchase buys.
pub const MAX_QUANTITY: i64 = 1000;

/// Validates `request`, runs the purchase and answers its outcome. With authentication on, a
/// user buys for themselves only (PERMISSION_DENIED `NOT_OWNER`), unless the caller holds the
/// role `coordinator-admin`.
pub async fn purchase(
    purchases: &Purchases,
    access: &Access,
    request: pb::PurchaseRequest,
) -> Result<pb::PurchaseResponse, Error> {
    let order = validate(&request)?;
    access.owner(order.user_id)?;
    let outcome = purchases.purchase(order, &request).await?;
    answer(&outcome)
}

fn validate(request: &pb::PurchaseRequest) -> Result<PurchaseOrder, Error> {
    let mut violations = Violations::new();
    let tenant_id = violations.uuid("tenant_id", &request.tenant_id);
    let user_id = violations.uuid("user_id", &request.user_id);
    let shop_item_id = request.shop_item_id.as_str();
    violations.check(
        (1..=64).contains(&shop_item_id.len())
            && shop_item_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "shop_item_id",
        "INVALID_CODE",
        "must be 1-64 letters, digits, '-', '_' or '.' (a ShopService item id)",
    );
    violations.check(
        (1..=MAX_QUANTITY).contains(&request.quantity),
        "quantity",
        "INVALID_QUANTITY",
        &format!("must be 1 to {MAX_QUANTITY} units"),
    );
    let idempotency_key = violations.idempotency_key(&request.idempotency_key);
    violations.finish()?;
    Ok(PurchaseOrder {
        tenant_id,
        user_id,
        shop_item_id: shop_item_id.to_owned(),
        quantity: request.quantity,
        idempotency_key,
    })
}

fn answer(outcome: &SagaOutcome) -> Result<pb::PurchaseResponse, Error> {
    let state = match outcome.state {
        SagaState::Completed => pb::PurchaseState::Completed,
        SagaState::Compensated => pb::PurchaseState::Compensated,
        SagaState::Stuck => pb::PurchaseState::Stuck,
        SagaState::Running | SagaState::Compensating => pb::PurchaseState::InProgress,
    };
    let receipt = match outcome.state {
        SagaState::Completed => {
            let receipt = receipt(outcome)?;
            Some(pb::PurchaseReceipt {
                reservation_id: receipt.reservation_id,
                transfer_id: receipt.transfer_id,
                amount: receipt.amount,
                asset_code: receipt.asset_code,
                item_code: receipt.item_code,
                holding_quantity: receipt.holding_quantity,
                unlocked_fragment_ids: receipt.unlocked_fragment_ids,
                unlocked_experience_ids: receipt.unlocked_experience_ids,
            })
        }
        _ => None,
    };
    let failure = outcome
        .failure
        .as_ref()
        .map(|(step, failure)| pb::PurchaseFailure {
            step: step.clone(),
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        });
    Ok(pb::PurchaseResponse {
        success: outcome.state == SagaState::Completed,
        saga_id: outcome.saga_id.to_string(),
        state: state.into(),
        receipt,
        failure,
        replayed: outcome.replayed,
    })
}
