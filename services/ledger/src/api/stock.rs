//! StockService: a tenant's inventory with reservations, and the items its users own.

use chrono::Utc;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::stock_service_server::StockService;
use phoenix_runtime::idempotency::RequestKey;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Ledger, duration_field, invalid, page_size, request_key, tenant_of, uuid_field};
use crate::domain::stock::{
    Adjustment, HoldingChange, NewInventoryItem, ReservationRequest, Resolution, check_code,
    check_owner_ref,
};
use crate::error::LedgerError;
use crate::{metrics, proto, store};

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

/// The response, or the error as gRPC sees it; refusals are counted by reason.
fn answer<T>(result: Result<T, LedgerError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(status)
}

fn status(error: LedgerError) -> Status {
    if let LedgerError::Refused(refusal) = &error {
        metrics::refused(&refusal.reason);
    }
    error.into()
}

async fn create_inventory_item(
    ledger: &Ledger,
    request: Request<pb::CreateInventoryItemRequest>,
) -> Result<pb::CreateInventoryItemResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let new =
        NewInventoryItem::parse(&request.sku, &request.name, request.on_hand).map_err(invalid)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/CreateInventoryItem",
        &request,
    )?;
    let now = Utc::now();
    let item = store::once(
        &ledger.pool,
        &key,
        ledger.settings.idempotency_ttl,
        move |c| Box::pin(async move { store::stock::create_item(c, tenant, &new, now).await }),
    )
    .await?;
    tracing::info!(%tenant, sku = %item.sku, "inventory item created");
    Ok(pb::CreateInventoryItemResponse {
        item: Some(proto::inventory_item(&item)),
    })
}

async fn get_inventory_item(
    ledger: &Ledger,
    request: Request<pb::GetInventoryItemRequest>,
) -> Result<pb::GetInventoryItemResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let sku = &request.get_ref().sku;
    check_code("sku", sku).map_err(|r| invalid(vec![r]))?;
    let item = store::stock::get_item(&ledger.pool, tenant, sku).await?;
    Ok(pb::GetInventoryItemResponse {
        item: Some(proto::inventory_item(&item)),
    })
}

async fn list_inventory_items(
    ledger: &Ledger,
    request: Request<pb::ListInventoryItemsRequest>,
) -> Result<pb::ListInventoryItemsResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    // The token is the last sku of the previous page.
    let after = match request.page_token.as_str() {
        "" => None,
        token => {
            check_code("page_token", token).map_err(|r| invalid(vec![r]))?;
            Some(token)
        }
    };
    let mut items = store::stock::list_items(&ledger.pool, tenant, after, limit + 1).await?;
    let next_page_token = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        items.truncate(items.len() - 1);
        items
            .last()
            .map(|item| item.sku.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListInventoryItemsResponse {
        items: items.iter().map(proto::inventory_item).collect(),
        next_page_token,
    })
}

async fn adjust_inventory(
    ledger: &Ledger,
    request: Request<pb::AdjustInventoryRequest>,
) -> Result<pb::AdjustInventoryResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let adjustment = Adjustment::parse(
        &request.sku,
        request.delta,
        request.expected_version,
        &request.reason,
    )
    .map_err(invalid)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/AdjustInventory",
        &request,
    )?;
    let now = Utc::now();
    let item = store::once(
        &ledger.pool,
        &key,
        ledger.settings.idempotency_ttl,
        move |c| Box::pin(async move { store::stock::adjust(c, tenant, &adjustment, now).await }),
    )
    .await?;
    Ok(pb::AdjustInventoryResponse {
        item: Some(proto::inventory_item(&item)),
    })
}

async fn reserve_stock(
    ledger: &Ledger,
    request: Request<pb::ReserveStockRequest>,
) -> Result<pb::ReserveStockResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let ttl = duration_field("ttl", request.ttl.as_ref())?;
    let reservation = ReservationRequest::parse(
        &request.sku,
        request.quantity,
        request.expected_version,
        ttl,
        &request.reference,
    )
    .map_err(invalid)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/ReserveStock",
        &request,
    )?;
    let now = Utc::now();
    let (reservation, item) = store::once(
        &ledger.pool,
        &key,
        ledger.settings.idempotency_ttl,
        move |c| Box::pin(async move { store::stock::reserve(c, tenant, &reservation, now).await }),
    )
    .await?;
    Ok(pb::ReserveStockResponse {
        reservation: Some(proto::reservation(&reservation)),
        item: Some(proto::inventory_item(&item)),
    })
}

async fn release_reservation(
    ledger: &Ledger,
    request: Request<pb::ReleaseReservationRequest>,
) -> Result<pb::ReleaseReservationResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let id = uuid_field("reservation_id", &request.reservation_id)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/ReleaseReservation",
        &request,
    )?;
    let (reservation, item) = resolve(ledger, tenant, id, key, Resolution::Release).await?;
    Ok(pb::ReleaseReservationResponse {
        reservation: Some(reservation),
        item: Some(item),
    })
}

async fn commit_reservation(
    ledger: &Ledger,
    request: Request<pb::CommitReservationRequest>,
) -> Result<pb::CommitReservationResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let id = uuid_field("reservation_id", &request.reservation_id)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/CommitReservation",
        &request,
    )?;
    let (reservation, item) = resolve(ledger, tenant, id, key, Resolution::Commit).await?;
    Ok(pb::CommitReservationResponse {
        reservation: Some(reservation),
        item: Some(item),
    })
}

/// Commits or releases reservation `id`, once per key.
async fn resolve(
    ledger: &Ledger,
    tenant: Uuid,
    id: Uuid,
    key: RequestKey,
    resolution: Resolution,
) -> Result<(pb::Reservation, pb::InventoryItem), LedgerError> {
    let now = Utc::now();
    let (reservation, item) = store::once(
        &ledger.pool,
        &key,
        ledger.settings.idempotency_ttl,
        move |c| {
            Box::pin(async move { store::stock::resolve(c, tenant, id, resolution, now).await })
        },
    )
    .await?;
    Ok((
        proto::reservation(&reservation),
        proto::inventory_item(&item),
    ))
}

async fn get_reservation(
    ledger: &Ledger,
    request: Request<pb::GetReservationRequest>,
) -> Result<pb::GetReservationResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let id = uuid_field("reservation_id", &request.get_ref().reservation_id)?;
    let reservation = store::stock::get_reservation(&ledger.pool, tenant, id).await?;
    Ok(pb::GetReservationResponse {
        reservation: Some(proto::reservation(&reservation)),
    })
}

async fn add_holding(
    ledger: &Ledger,
    request: Request<pb::AddHoldingRequest>,
) -> Result<pb::AddHoldingResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let change = HoldingChange::parse(&request.owner_ref, &request.item_code, request.quantity)
        .map_err(invalid)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/AddHolding",
        &request,
    )?;
    let holding = change_holding(ledger, tenant, change, &key, HoldingMove::Add).await?;
    Ok(pb::AddHoldingResponse {
        holding: Some(holding),
    })
}

async fn remove_holding(
    ledger: &Ledger,
    request: Request<pb::RemoveHoldingRequest>,
) -> Result<pb::RemoveHoldingResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let request = request.into_inner();
    let change = HoldingChange::parse(&request.owner_ref, &request.item_code, request.quantity)
        .map_err(invalid)?;
    let key = request_key(
        tenant,
        &request.idempotency_key,
        "StockService/RemoveHolding",
        &request,
    )?;
    let holding = change_holding(ledger, tenant, change, &key, HoldingMove::Remove).await?;
    Ok(pb::RemoveHoldingResponse {
        holding: Some(holding),
    })
}

/// Which way a holding call moves units.
#[derive(Debug, Clone, Copy)]
enum HoldingMove {
    Add,
    Remove,
}

/// Applies a validated holding change once per idempotency key.
async fn change_holding(
    ledger: &Ledger,
    tenant: Uuid,
    change: HoldingChange,
    key: &RequestKey,
    direction: HoldingMove,
) -> Result<pb::Holding, LedgerError> {
    let now = Utc::now();
    let holding = store::once(
        &ledger.pool,
        key,
        ledger.settings.idempotency_ttl,
        move |c| {
            Box::pin(async move {
                match direction {
                    HoldingMove::Add => store::stock::add_holding(c, tenant, &change, now).await,
                    HoldingMove::Remove => {
                        store::stock::remove_holding(c, tenant, &change, now).await
                    }
                }
            })
        },
    )
    .await?;
    Ok(proto::holding(&holding))
}

async fn list_holdings(
    ledger: &Ledger,
    request: Request<pb::ListHoldingsRequest>,
) -> Result<pb::ListHoldingsResponse, LedgerError> {
    let tenant = tenant_of(&request, &request.get_ref().tenant_id)?;
    let owner_ref = request.get_ref().owner_ref.trim();
    check_owner_ref(owner_ref).map_err(|r| invalid(vec![r]))?;
    let holdings = store::stock::list_holdings(&ledger.pool, tenant, owner_ref).await?;
    Ok(pb::ListHoldingsResponse {
        holdings: holdings.iter().map(proto::holding).collect(),
    })
}
