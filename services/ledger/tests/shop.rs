//! ShopService through its gRPC API, against a real server and database: items that name an
//! existing inventory item and a revenue account of the price's asset, upserts that replace
//! whole and keep the version when nothing changes, idempotent retries, pages, and every bad
//! field refused at once with nothing written.

mod support;

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::shop_service_client::ShopServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use support::{Harness, assert_refused, count, field_reasons, key, metadata};
use tonic::Code;
use tonic::transport::Channel;

const FRAGMENT: &str = "0b5e4a3c-9a43-4b8e-9d53-2d3f4c5b6a71";
const EXPERIENCE: &str = "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f";

struct Shop {
    harness: Harness,
    shop: ShopServiceClient<Channel>,
    revenue: String,
}

async fn start() -> Shop {
    let mut harness = Harness::start().await;
    let revenue = harness
        .account("shop", "BESITOS", pb::BalanceLimit::None)
        .await;
    let mut stock = StockServiceClient::new(harness.service.channel.clone());
    stock
        .create_inventory_item(pb::CreateInventoryItemRequest {
            tenant_id: harness.tenant.clone(),
            sku: "GEM-RED".into(),
            name: "Red gem".into(),
            on_hand: 10,
            idempotency_key: key(),
        })
        .await
        .expect("item created");
    Shop {
        shop: ShopServiceClient::new(harness.service.channel.clone()),
        harness,
        revenue,
    }
}

impl Shop {
    fn upsert(&self, id: &str, amount: i64) -> pb::UpsertShopItemRequest {
        pb::UpsertShopItemRequest {
            tenant_id: self.harness.tenant.clone(),
            shop_item_id: id.into(),
            name: "Red gem".into(),
            price: Some(pb::Price {
                asset_code: "BESITOS".into(),
                amount,
            }),
            sku: "GEM-RED".into(),
            revenue_account_id: self.revenue.clone(),
            unlocks: Some(pb::ShopItemUnlocks {
                fragment_ids: vec![FRAGMENT.into()],
                experience_ids: vec![EXPERIENCE.into()],
            }),
            available: true,
            idempotency_key: key(),
        }
    }

    async fn get(&mut self, id: &str) -> Result<pb::ShopItem, tonic::Status> {
        self.shop
            .get_shop_item(pb::GetShopItemRequest {
                tenant_id: self.harness.tenant.clone(),
                shop_item_id: id.into(),
            })
            .await
            .map(|r| r.into_inner().item.expect("item"))
    }
}

#[tokio::test]
async fn an_upserted_item_is_read_back_whole_and_replaced_with_a_new_version() {
    let mut shop = start().await;
    let created = shop
        .shop
        .upsert_shop_item(shop.upsert("gem.red", 50))
        .await
        .expect("created")
        .into_inner();
    assert!(created.created);
    let item = created.item.expect("item");
    assert_eq!(item.version, 1);
    assert_eq!(item.price.as_ref().map(|p| p.amount), Some(50));
    assert_eq!(
        item.unlocks.as_ref().map(|u| u.fragment_ids.clone()),
        Some(vec![FRAGMENT.to_owned()])
    );
    assert_eq!(shop.get("gem.red").await.expect("found"), item);

    // The same content under a new key changes nothing: same version, no new event.
    let events = count(&shop.harness.service.pool, "events").await;
    let same = shop
        .shop
        .upsert_shop_item(shop.upsert("gem.red", 50))
        .await
        .expect("same")
        .into_inner();
    assert!(!same.created);
    assert_eq!(same.item.expect("item").version, 1);
    assert_eq!(count(&shop.harness.service.pool, "events").await, events);

    let mut cheaper = shop.upsert("gem.red", 40);
    cheaper.available = false;
    cheaper.unlocks = None;
    let replaced = shop
        .shop
        .upsert_shop_item(cheaper)
        .await
        .expect("replaced")
        .into_inner();
    assert!(!replaced.created);
    let item = replaced.item.expect("item");
    assert_eq!(
        (item.version, item.available, item.price.map(|p| p.amount)),
        (2, false, Some(40))
    );
    assert_eq!(
        item.unlocks.expect("unlocks"),
        pb::ShopItemUnlocks::default()
    );
    let stream: i64 = sqlx::query_scalar(
        "SELECT max(aggregate_version) FROM events
         WHERE aggregate_type = 'shop_item' AND aggregate_id = 'gem.red'",
    )
    .fetch_one(&shop.harness.service.pool)
    .await
    .expect("stream version");
    assert_eq!(stream, 2, "one event per version");
}

#[tokio::test]
async fn a_retry_answers_the_first_outcome_and_a_reused_key_is_refused() {
    let mut shop = start().await;
    let request = shop.upsert("gem.red", 50);
    let first = shop
        .shop
        .upsert_shop_item(request.clone())
        .await
        .expect("created")
        .into_inner();
    let again = shop
        .shop
        .upsert_shop_item(request.clone())
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(first, again);
    assert!(again.created, "the replay answers the first outcome");

    let mut other = request;
    other.price = Some(pb::Price {
        asset_code: "BESITOS".into(),
        amount: 99,
    });
    let status = shop.shop.upsert_shop_item(other).await.expect_err("reused");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    let price = shop.get("gem.red").await.expect("found").price;
    assert_eq!(price.map(|p| p.amount), Some(50));
}

#[tokio::test]
async fn every_bad_field_is_refused_at_once_and_nothing_is_written() {
    let mut shop = start().await;
    let request = pb::UpsertShopItemRequest {
        shop_item_id: "has space".into(),
        name: " ".into(),
        price: Some(pb::Price {
            asset_code: "besitos".into(),
            amount: -1,
        }),
        sku: String::new(),
        revenue_account_id: "nope".into(),
        unlocks: Some(pb::ShopItemUnlocks {
            fragment_ids: vec![FRAGMENT.into(), FRAGMENT.into()],
            experience_ids: vec!["x".into()],
        }),
        idempotency_key: String::new(),
        ..shop.upsert("gem.red", 1)
    };
    let status = shop.shop.upsert_shop_item(request).await.expect_err("bad");
    assert_eq!(status.code(), Code::InvalidArgument);
    let found = field_reasons(&status);
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(f, r)| (f.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("shop_item_id", "INVALID_CODE"),
            ("name", "INVALID_NAME"),
            ("price.asset_code", "INVALID_ASSET_CODE"),
            ("price.amount", "INVALID_AMOUNT"),
            ("sku", "INVALID_CODE"),
            ("revenue_account_id", "INVALID_ID"),
            ("unlocks.fragment_ids[1]", "DUPLICATE_ID"),
            ("unlocks.experience_ids[0]", "INVALID_ID"),
            ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED"),
        ]
    );

    let no_price = pb::UpsertShopItemRequest {
        price: None,
        ..shop.upsert("gem.red", 1)
    };
    let status = shop.shop.upsert_shop_item(no_price).await.expect_err("bad");
    assert_eq!(
        field_reasons(&status),
        [("price".to_owned(), "REQUIRED".to_owned())]
    );
    assert_eq!(count(&shop.harness.service.pool, "shop_items").await, 0);
}

#[tokio::test]
async fn what_an_item_names_must_exist_and_the_revenue_account_must_hold_the_price_asset() {
    let mut shop = start().await;
    let unknown_sku = pb::UpsertShopItemRequest {
        sku: "GEM-BLUE".into(),
        ..shop.upsert("gem.blue", 5)
    };
    let status = shop
        .shop
        .upsert_shop_item(unknown_sku)
        .await
        .expect_err("no such sku");
    assert_refused(&status, Code::NotFound, "ITEM_NOT_FOUND");

    let missing_account = uuid::Uuid::new_v4().to_string();
    let unknown_account = pb::UpsertShopItemRequest {
        revenue_account_id: missing_account.clone(),
        ..shop.upsert("gem.red", 5)
    };
    let status = shop
        .shop
        .upsert_shop_item(unknown_account)
        .await
        .expect_err("no such account");
    assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    assert_eq!(
        metadata(&status, "account_id").as_deref(),
        Some(missing_account.as_str())
    );

    let xp = shop
        .harness
        .account("shop", "XP", pb::BalanceLimit::None)
        .await;
    let wrong_asset = pb::UpsertShopItemRequest {
        revenue_account_id: xp,
        ..shop.upsert("gem.red", 5)
    };
    let status = shop
        .shop
        .upsert_shop_item(wrong_asset)
        .await
        .expect_err("XP account for a BESITOS price");
    assert_refused(&status, Code::FailedPrecondition, "REVENUE_ASSET_MISMATCH");
    assert_eq!(
        metadata(&status, "account_asset_code").as_deref(),
        Some("XP")
    );
    assert_eq!(count(&shop.harness.service.pool, "shop_items").await, 0);

    let status = shop.get("gem.red").await.expect_err("never written");
    assert_refused(&status, Code::NotFound, "SHOP_ITEM_NOT_FOUND");
}

#[tokio::test]
async fn the_database_refuses_a_revenue_account_of_another_asset() {
    let mut shop = start().await;
    shop.shop
        .upsert_shop_item(shop.upsert("gem.red", 5))
        .await
        .expect("created");
    let xp = shop
        .harness
        .account("shop", "XP", pb::BalanceLimit::None)
        .await;
    let broken = sqlx::query("UPDATE shop_items SET revenue_account_id = $1::uuid")
        .bind(&xp)
        .execute(&shop.harness.service.pool)
        .await
        .expect_err("the composite key holds");
    let code = broken
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("23503"), "foreign key violation");
}

#[tokio::test]
async fn items_are_listed_by_id_in_pages_and_filtered_by_availability() {
    let mut shop = start().await;
    for (id, available) in [("c", true), ("a", true), ("b", false), ("d", true)] {
        let request = pb::UpsertShopItemRequest {
            available,
            ..shop.upsert(id, 5)
        };
        shop.shop.upsert_shop_item(request).await.expect("created");
    }
    let tenant = shop.harness.tenant.clone();
    let page = |token: &str, only_available: bool| pb::ListShopItemsRequest {
        tenant_id: tenant.clone(),
        page_size: 2,
        page_token: token.to_owned(),
        only_available,
    };
    let first = shop
        .shop
        .list_shop_items(page("", false))
        .await
        .expect("page")
        .into_inner();
    let ids: Vec<&str> = first
        .items
        .iter()
        .map(|i| i.shop_item_id.as_str())
        .collect();
    assert_eq!((ids, first.next_page_token.as_str()), (vec!["a", "b"], "b"));
    let second = shop
        .shop
        .list_shop_items(page("b", false))
        .await
        .expect("page")
        .into_inner();
    let ids: Vec<&str> = second
        .items
        .iter()
        .map(|i| i.shop_item_id.as_str())
        .collect();
    assert_eq!((ids, second.next_page_token.as_str()), (vec!["c", "d"], ""));

    let available = shop
        .shop
        .list_shop_items(pb::ListShopItemsRequest {
            page_size: 10,
            ..page("", true)
        })
        .await
        .expect("page")
        .into_inner();
    let ids: Vec<&str> = available
        .items
        .iter()
        .map(|i| i.shop_item_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "c", "d"]);

    let status = shop
        .shop
        .list_shop_items(page("bad token!", false))
        .await
        .expect_err("bad token");
    assert_eq!(
        field_reasons(&status),
        [("page_token".to_owned(), "INVALID_CODE".to_owned())]
    );
}

#[tokio::test]
async fn another_tenant_sees_none_of_the_shop() {
    let mut shop = start().await;
    shop.shop
        .upsert_shop_item(shop.upsert("gem.red", 5))
        .await
        .expect("created");
    let other = support::create_tenant(&mut shop.harness.ledger, "other").await;
    let status = shop
        .shop
        .get_shop_item(pb::GetShopItemRequest {
            tenant_id: other.clone(),
            shop_item_id: "gem.red".into(),
        })
        .await
        .expect_err("not theirs");
    assert_refused(&status, Code::NotFound, "SHOP_ITEM_NOT_FOUND");
    // The first tenant's revenue account cannot be named from another tenant either.
    let request = pb::UpsertShopItemRequest {
        tenant_id: other,
        ..shop.upsert("gem.red", 5)
    };
    let status = shop
        .shop
        .upsert_shop_item(request)
        .await
        .expect_err("sku and account are the first tenant's");
    assert_refused(&status, Code::NotFound, "ITEM_NOT_FOUND");
}

#[tokio::test]
async fn a_nul_or_a_huge_value_in_any_text_field_is_refused_naming_the_field() {
    let mut shop = start().await;
    type Edit = fn(&mut pb::UpsertShopItemRequest, String);
    let cases: [(&str, &str, Edit); 6] = [
        ("shop_item_id", "INVALID_CODE", |r, v| r.shop_item_id = v),
        ("name", "INVALID_NAME", |r, v| r.name = v),
        ("price.asset_code", "INVALID_ASSET_CODE", |r, v| {
            r.price = Some(pb::Price {
                asset_code: v,
                amount: 5,
            })
        }),
        ("sku", "INVALID_CODE", |r, v| r.sku = v),
        ("revenue_account_id", "INVALID_ID", |r, v| {
            r.revenue_account_id = v
        }),
        ("unlocks.fragment_ids[0]", "INVALID_ID", |r, v| {
            r.unlocks = Some(pb::ShopItemUnlocks {
                fragment_ids: vec![v],
                experience_ids: Vec::new(),
            })
        }),
    ];
    for (field, reason, edit) in cases {
        for value in ["a\0b".to_owned(), "x".repeat(20_000)] {
            let mut request = shop.upsert("gem.red", 5);
            edit(&mut request, value);
            let status = shop.shop.upsert_shop_item(request).await.expect_err(field);
            assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
            assert_eq!(
                field_reasons(&status),
                [(field.to_owned(), reason.to_owned())],
                "{field}"
            );
            assert!(status.message().len() < 2_000, "{field}: a bounded message");
        }
    }
    assert_eq!(count(&shop.harness.service.pool, "shop_items").await, 0);
}
