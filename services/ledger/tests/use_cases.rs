//! The ledger's use cases called directly, as its tools and jobs call them, not through the
//! API: what they promise holds without it.

mod support;

use phoenix_ledger::app::Ledger;
use phoenix_ledger::config::LedgerSettings;
use phoenix_ledger::domain::stock::{NewInventoryItem, ReservationRequest};
use phoenix_ledger::metrics;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::metrics::ReasonLabels;
use phoenix_testkit::assert_refused;
use support::{Harness, key};
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::Code;
use uuid::Uuid;

/// A ledger service with one tenant, and its use cases on the same database.
struct Direct {
    h: Harness,
    tenant: Uuid,
    ledger: Ledger,
    /// Stops the use cases' sequencer with the test.
    _stop: DropGuard,
}

async fn direct() -> Direct {
    let h = Harness::start().await;
    let shutdown = CancellationToken::new();
    let ledger = Ledger::new(
        h.service.pool.clone(),
        LedgerSettings::parse(&[]).expect("default settings"),
        shutdown.clone(),
    );
    Direct {
        tenant: h.tenant.parse().expect("a tenant id"),
        h,
        ledger,
        _stop: shutdown.drop_guard(),
    }
}

/// What a domain parser made of valid input.
fn valid<T>(parse: impl FnOnce(&mut Violations) -> T) -> T {
    let mut violations = Violations::new();
    let value = parse(&mut violations);
    violations.finish().expect("valid input");
    value
}

/// The idempotency key of `request` in the tenant's scope, as the API would make it.
fn keyed(
    h: &Harness,
    method: &'static str,
    key: &str,
    request: &impl prost::Message,
) -> RequestKey {
    RequestKey::new(&h.tenant, key, method, request)
}

/// Refusals of `reason` counted so far, in this process.
fn refusals(reason: &str) -> u64 {
    metrics::get()
        .refusals
        .get_or_create(&ReasonLabels {
            reason: reason.to_owned(),
        })
        .get()
}

#[tokio::test]
async fn a_stock_use_case_counts_its_refusals_once() {
    let Direct {
        h, tenant, ledger, ..
    } = direct().await;
    let asked = pb::ReserveStockRequest {
        tenant_id: h.tenant.clone(),
        sku: "SKU-404".into(),
        quantity: 1,
        expected_version: None,
        ttl: None,
        reference: String::new(),
        idempotency_key: key(),
    };
    let reservation = valid(|v| ReservationRequest::parse(&asked.sku, 1, None, None, "", v));
    let request_key = keyed(
        &h,
        "StockService/ReserveStock",
        &asked.idempotency_key,
        &asked,
    );
    let before = refusals("ITEM_NOT_FOUND");

    let refused = ledger
        .reserve(&request_key, tenant, reservation)
        .await
        .expect_err("no such item");
    assert_eq!(
        (refused.code(), refused.reason()),
        (Code::NotFound, "ITEM_NOT_FOUND")
    );
    assert_eq!(
        refusals("ITEM_NOT_FOUND"),
        before + 1,
        "the use case counts its refusal"
    );

    let status = StockServiceClient::new(h.service.channel.clone())
        .reserve_stock(pb::ReserveStockRequest {
            idempotency_key: key(),
            ..asked
        })
        .await
        .expect_err("no such item");
    assert_refused(&status, Code::NotFound, "ITEM_NOT_FOUND");
    assert_eq!(
        refusals("ITEM_NOT_FOUND"),
        before + 2,
        "a call through the API is counted once"
    );
}

#[tokio::test]
async fn items_are_listed_by_pages_that_say_where_the_next_starts() {
    let Direct {
        h, tenant, ledger, ..
    } = direct().await;
    for sku in ["SKU-1", "SKU-2", "SKU-3"] {
        let asked = pb::CreateInventoryItemRequest {
            sku: sku.into(),
            idempotency_key: key(),
            ..Default::default()
        };
        let new = valid(|v| NewInventoryItem::parse(sku, "Gem", 1, v));
        let key = keyed(
            &h,
            "StockService/CreateInventoryItem",
            &asked.idempotency_key,
            &asked,
        );
        ledger
            .create_item(&key, tenant, new)
            .await
            .expect("created");
    }
    let first = ledger.items(tenant, None, 2).await.expect("a page");
    let skus: Vec<_> = first.items.iter().map(|i| i.sku.as_str()).collect();
    assert_eq!(skus, ["SKU-1", "SKU-2"]);
    assert_eq!(first.next_after.as_deref(), Some("SKU-2"));
    let last = ledger
        .items(tenant, first.next_after.as_deref(), 2)
        .await
        .expect("the last page");
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_after, None);
}
