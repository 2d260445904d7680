//! StockService: a tenant's inventory with reservations, and the items its users own.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::stock_service_server::StockService;
use phoenix_runtime::{Error, Violations};
use tonic::{Request, Response, Status};

use super::{answer, code_token, keyed, tenant_of};
use crate::app::Ledger;
use crate::app::stock::HoldingMove;
use crate::domain::owner::check_owner_ref;
use crate::domain::stock::{
    Adjustment, HoldingChange, NewInventoryItem, ReservationRequest, Resolution, check_code,
};
use crate::proto;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;

#[tonic::async_trait]
impl StockService for Ledger {
    async fn create_inventory_item(
        &self,
        request: Request<pb::CreateInventoryItemRequest>,
    ) -> Result<Response<pb::CreateInventoryItemResponse>, Status> {
        answer(create_inventory_item(self, request).await)
    }

    async fn get_inventory_item(
        &self,
        request: Request<pb::GetInventoryItemRequest>,
    ) -> Result<Response<pb::GetInventoryItemResponse>, Status> {
        answer(get_inventory_item(self, request).await)
    }

    async fn list_inventory_items(
        &self,
        request: Request<pb::ListInventoryItemsRequest>,
    ) -> Result<Response<pb::ListInventoryItemsResponse>, Status> {
        answer(list_inventory_items(self, request).await)
    }

    async fn adjust_inventory(
        &self,
        request: Request<pb::AdjustInventoryRequest>,
    ) -> Result<Response<pb::AdjustInventoryResponse>, Status> {
        answer(adjust_inventory(self, request).await)
    }

    async fn reserve_stock(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::ReserveStockResponse>, Status> {
        answer(reserve_stock(self, request).await)
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::ReleaseReservationResponse>, Status> {
        answer(release_reservation(self, request).await)
    }

    async fn commit_reservation(
        &self,
        request: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::CommitReservationResponse>, Status> {
        answer(commit_reservation(self, request).await)
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::GetReservationResponse>, Status> {
        answer(get_reservation(self, request).await)
    }

    async fn add_holding(
        &self,
        request: Request<pb::AddHoldingRequest>,
    ) -> Result<Response<pb::AddHoldingResponse>, Status> {
        answer(add_holding(self, request).await)
    }

    async fn remove_holding(
        &self,
        request: Request<pb::RemoveHoldingRequest>,
    ) -> Result<Response<pb::RemoveHoldingResponse>, Status> {
        answer(remove_holding(self, request).await)
    }

    async fn list_holdings(
        &self,
        request: Request<pb::ListHoldingsRequest>,
    ) -> Result<Response<pb::ListHoldingsResponse>, Status> {
        answer(list_holdings(self, request).await)
    }
}

async fn create_inventory_item(
    ledger: &Ledger,
    request: Request<pb::CreateInventoryItemRequest>,
) -> Result<pb::CreateInventoryItemResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let new = NewInventoryItem::parse(
        &request.sku,
        &request.name,
        request.on_hand,
        &mut violations,
    );
    let key = keyed(
        violations,
        tenant,
        &request.idempotency_key,
        "StockService/CreateInventoryItem",
        &request,
    )?;
    let item = ledger.create_item(&key, tenant, new).await?;
    Ok(pb::CreateInventoryItemResponse {
        item: Some(proto::inventory_item(&item)),
    })
}

async fn get_inventory_item(
    ledger: &Ledger,
    request: Request<pb::GetInventoryItemRequest>,
) -> Result<pb::GetInventoryItemResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let sku = &request.get_ref().sku;
    violations.take(check_code("sku", sku));
    violations.finish()?;
    let item = ledger.item(tenant, sku).await?;
    Ok(pb::GetInventoryItemResponse {
        item: Some(proto::inventory_item(&item)),
    })
}

async fn list_inventory_items(
    ledger: &Ledger,
    request: Request<pb::ListInventoryItemsRequest>,
) -> Result<pb::ListInventoryItemsResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let limit = violations.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = code_token(&mut violations, &request.page_token);
    violations.finish()?;
    let page = ledger.items(tenant, after, limit).await?;
    Ok(pb::ListInventoryItemsResponse {
        items: page.items.iter().map(proto::inventory_item).collect(),
        next_page_token: page.next_after.unwrap_or_default(),
    })
}

async fn adjust_inventory(
    ledger: &Ledger,
    request: Request<pb::AdjustInventoryRequest>,
) -> Result<pb::AdjustInventoryResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let adjustment = Adjustment::parse(
        &request.sku,
        request.delta,
        request.expected_version,
        &request.reason,
        &mut violations,
    );
    let key = keyed(
        violations,
        tenant,
        &request.idempotency_key,
        "StockService/AdjustInventory",
        &request,
    )?;
    let item = ledger.adjust_item(&key, tenant, adjustment).await?;
    Ok(pb::AdjustInventoryResponse {
        item: Some(proto::inventory_item(&item)),
    })
}

async fn reserve_stock(
    ledger: &Ledger,
    request: Request<pb::ReserveStockRequest>,
) -> Result<pb::ReserveStockResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    // The domain bounds the time to live (INVALID_TTL).
    let ttl = violations.positive_duration("ttl", request.ttl.as_ref(), chrono::Duration::MAX);
    let reservation = ReservationRequest::parse(
        &request.sku,
        request.quantity,
        request.expected_version,
        ttl,
        &request.reference,
        &mut violations,
    );
    let key = keyed(
        violations,
        tenant,
        &request.idempotency_key,
        "StockService/ReserveStock",
        &request,
    )?;
    let (reservation, item) = ledger.reserve(&key, tenant, reservation).await?;
    Ok(pb::ReserveStockResponse {
        reservation: Some(proto::reservation(&reservation)),
        item: Some(proto::inventory_item(&item)),
    })
}

async fn release_reservation(
    ledger: &Ledger,
    request: Request<pb::ReleaseReservationRequest>,
) -> Result<pb::ReleaseReservationResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let id = violations.uuid("reservation_id", &request.reservation_id);
    let key = keyed(
        violations,
        tenant,
        &request.idempotency_key,
        "StockService/ReleaseReservation",
        &request,
    )?;
    let (reservation, item) = ledger
        .resolve_reservation(&key, tenant, id, Resolution::Release)
        .await?;
    Ok(pb::ReleaseReservationResponse {
        reservation: Some(proto::reservation(&reservation)),
        item: Some(proto::inventory_item(&item)),
    })
}

async fn commit_reservation(
    ledger: &Ledger,
    request: Request<pb::CommitReservationRequest>,
) -> Result<pb::CommitReservationResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let id = violations.uuid("reservation_id", &request.reservation_id);
    let key = keyed(
        violations,
        tenant,
        &request.idempotency_key,
        "StockService/CommitReservation",
        &request,
    )?;
    let (reservation, item) = ledger
        .resolve_reservation(&key, tenant, id, Resolution::Commit)
        .await?;
    Ok(pb::CommitReservationResponse {
        reservation: Some(proto::reservation(&reservation)),
        item: Some(proto::inventory_item(&item)),
    })
}

async fn get_reservation(
    ledger: &Ledger,
    request: Request<pb::GetReservationRequest>,
) -> Result<pb::GetReservationResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let id = violations.uuid("reservation_id", &request.get_ref().reservation_id);
    violations.finish()?;
    let reservation = ledger.reservation(tenant, id).await?;
    Ok(pb::GetReservationResponse {
        reservation: Some(proto::reservation(&reservation)),
    })
}

async fn add_holding(
    ledger: &Ledger,
    request: Request<pb::AddHoldingRequest>,
) -> Result<pb::AddHoldingResponse, Error> {
    let body = request.get_ref();
    let asked = HoldingCall {
        tenant_id: &body.tenant_id,
        owner_ref: &body.owner_ref,
        item_code: &body.item_code,
        quantity: body.quantity,
        idempotency_key: &body.idempotency_key,
        method: "StockService/AddHolding",
        direction: HoldingMove::Add,
    };
    Ok(pb::AddHoldingResponse {
        holding: Some(change_holding(ledger, &request, asked).await?),
    })
}

async fn remove_holding(
    ledger: &Ledger,
    request: Request<pb::RemoveHoldingRequest>,
) -> Result<pb::RemoveHoldingResponse, Error> {
    let body = request.get_ref();
    let asked = HoldingCall {
        tenant_id: &body.tenant_id,
        owner_ref: &body.owner_ref,
        item_code: &body.item_code,
        quantity: body.quantity,
        idempotency_key: &body.idempotency_key,
        method: "StockService/RemoveHolding",
        direction: HoldingMove::Remove,
    };
    Ok(pb::RemoveHoldingResponse {
        holding: Some(change_holding(ledger, &request, asked).await?),
    })
}

/// What AddHolding and RemoveHolding ask: the same fields, each its own direction.
struct HoldingCall<'a> {
    tenant_id: &'a str,
    owner_ref: &'a str,
    item_code: &'a str,
    quantity: i64,
    idempotency_key: &'a str,
    method: &'static str,
    direction: HoldingMove,
}

async fn change_holding<R: prost::Message>(
    ledger: &Ledger,
    request: &Request<R>,
    asked: HoldingCall<'_>,
) -> Result<pb::Holding, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(request, asked.tenant_id, &mut violations)?;
    let change = HoldingChange::parse(
        asked.owner_ref,
        asked.item_code,
        asked.quantity,
        &mut violations,
    );
    let key = keyed(
        violations,
        tenant,
        asked.idempotency_key,
        asked.method,
        request.get_ref(),
    )?;
    let holding = ledger
        .change_holding(&key, tenant, change, asked.direction)
        .await?;
    Ok(proto::holding(&holding))
}

async fn list_holdings(
    ledger: &Ledger,
    request: Request<pb::ListHoldingsRequest>,
) -> Result<pb::ListHoldingsResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let owner_ref = request.get_ref().owner_ref.trim();
    violations.take(check_owner_ref(owner_ref));
    violations.finish()?;
    let holdings = ledger.holdings(tenant, owner_ref).await?;
    Ok(pb::ListHoldingsResponse {
        holdings: holdings.iter().map(proto::holding).collect(),
    })
}
