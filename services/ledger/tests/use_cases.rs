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
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// The use cases on the test service's database, until `shutdown`.
fn use_cases(h: &Harness, shutdown: &CancellationToken) -> Ledger {
    Ledger::new(
        h.service.pool.clone(),
        LedgerSettings::parse(&[]).expect("default settings"),
        shutdown.clone(),
    )
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
    let h = Harness::start().await;
    let tenant = h.tenant.parse().expect("a tenant id");
    let shutdown = CancellationToken::new();
    let ledger = use_cases(&h, &shutdown);
    let asked = pb::ReserveStockRequest {
        tenant_id: h.tenant.clone(),
        sku: "SKU-404".into(),
        quantity: 1,
        expected_version: None,
        ttl: None,
        reference: String::new(),
        idempotency_key: key(),
    };
    let mut violations = Violations::new();
    let reservation = ReservationRequest::parse(&asked.sku, 1, None, None, "", &mut violations);
    violations.finish().expect("a valid reservation");
    let before = refusals("ITEM_NOT_FOUND");

    let refused = ledger
        .reserve(
            &RequestKey::new(
                &h.tenant,
                &asked.idempotency_key,
                "StockService/ReserveStock",
                &asked,
            ),
            tenant,
            reservation,
        )
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
    shutdown.cancel();
}

#[tokio::test]
async fn items_are_listed_by_pages_that_say_where_the_next_starts() {
    let h = Harness::start().await;
    let tenant = h.tenant.parse().expect("a tenant id");
    let shutdown = CancellationToken::new();
    let ledger = use_cases(&h, &shutdown);
    for sku in ["SKU-1", "SKU-2", "SKU-3"] {
        let asked = pb::CreateInventoryItemRequest {
            sku: sku.into(),
            idempotency_key: key(),
            ..Default::default()
        };
        let mut violations = Violations::new();
        let new = NewInventoryItem::parse(sku, "Gem", 1, &mut violations);
        violations.finish().expect("a valid item");
        let key = RequestKey::new(
            &h.tenant,
            &asked.idempotency_key,
            "StockService/CreateInventoryItem",
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
    shutdown.cancel();
}
