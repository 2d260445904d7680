//! ShopService: the items a tenant sells.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::shop_service_server::ShopService;
use phoenix_runtime::{Error, Violations};
use tonic::{Request, Response, Status};

use super::{answer, code_token, keyed, tenant_of};
use crate::app::Ledger;
use crate::domain::shop::{ShopItemFields, ShopItemSpec};
use crate::domain::stock::check_code;
use crate::proto;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;

#[tonic::async_trait]
impl ShopService for Ledger {
    async fn upsert_shop_item(
        &self,
        request: Request<pb::UpsertShopItemRequest>,
    ) -> Result<Response<pb::UpsertShopItemResponse>, Status> {
        answer(upsert_shop_item(self, request).await)
    }

    async fn get_shop_item(
        &self,
        request: Request<pb::GetShopItemRequest>,
    ) -> Result<Response<pb::GetShopItemResponse>, Status> {
        answer(get_shop_item(self, request).await)
    }

    async fn list_shop_items(
        &self,
        request: Request<pb::ListShopItemsRequest>,
    ) -> Result<Response<pb::ListShopItemsResponse>, Status> {
        answer(list_shop_items(self, request).await)
    }
}

async fn upsert_shop_item(
    ledger: &Ledger,
    request: Request<pb::UpsertShopItemRequest>,
) -> Result<pb::UpsertShopItemResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let unlocks = request.unlocks.clone().unwrap_or_default();
    let spec = ShopItemSpec::parse(
        ShopItemFields {
            shop_item_id: &request.shop_item_id,
            name: &request.name,
            price: request
                .price
                .as_ref()
                .map(|price| (price.asset_code.as_str(), price.amount)),
            sku: &request.sku,
            revenue_account_id: &request.revenue_account_id,
            fragment_ids: &unlocks.fragment_ids,
            experience_ids: &unlocks.experience_ids,
            available: request.available,
        },
        &mut violations,
    );
    let key = keyed(
        violations,
        tenant,
        &request.idempotency_key,
        "ShopService/UpsertShopItem",
        &request,
    )?;
    let upserted = ledger.upsert_shop_item(&key, tenant, spec).await?;
    Ok(pb::UpsertShopItemResponse {
        item: Some(proto::shop_item(&upserted.item)),
        created: upserted.created,
    })
}

async fn get_shop_item(
    ledger: &Ledger,
    request: Request<pb::GetShopItemRequest>,
) -> Result<pb::GetShopItemResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let id = &request.get_ref().shop_item_id;
    violations.take(check_code("shop_item_id", id));
    violations.finish()?;
    let item = ledger.shop_item(tenant, id).await?;
    Ok(pb::GetShopItemResponse {
        item: Some(proto::shop_item(&item)),
    })
}

async fn list_shop_items(
    ledger: &Ledger,
    request: Request<pb::ListShopItemsRequest>,
) -> Result<pb::ListShopItemsResponse, Error> {
    let mut violations = Violations::new();
    let tenant = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
    let request = request.into_inner();
    let limit = violations.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = code_token(&mut violations, &request.page_token);
    violations.finish()?;
    let page = ledger
        .shop_items(tenant, after, request.only_available, limit)
        .await?;
    Ok(pb::ListShopItemsResponse {
        items: page.items.iter().map(proto::shop_item).collect(),
        next_page_token: page.next_after.unwrap_or_default(),
    })
}
