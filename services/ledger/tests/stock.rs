//! StockService through its gRPC API, against a real server and database: inventory that is
//! never oversold, reservations that commit, release or expire, holdings that never go below
//! zero, and tenants that never see each other's stock.

use chrono::Utc;
use phoenix_ledger::store;
use phoenix_proto::ledger::v1::CreateTenantRequest;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_proto::ledger::v1::{
    AddHoldingRequest, AdjustInventoryRequest, CommitReservationRequest,
    CreateInventoryItemRequest, GetInventoryItemRequest, GetReservationRequest, Holding,
    InventoryItem, ListHoldingsRequest, ListInventoryItemsRequest, ReleaseReservationRequest,
    RemoveHoldingRequest, Reservation, ReservationState, ReserveStockRequest,
};
use phoenix_testkit::{TestService, spawn_with};
use phoenix_testkit::{fields, metadata, reason};
use tonic::Code;
use tonic::transport::Channel;

type Client = StockServiceClient<Channel>;

/// A ledger service whose own reservation sweeper stays out of the way: the tests run
/// [`sweeper`] when they say (a reservation a test lets expire was otherwise, now and then,
/// released by the service's sweep first).
async fn start() -> (TestService, Client) {
    let service = spawn_with(phoenix_ledger::spec(), |config| {
        config
            .jobs
            .set("expire-reservations", std::time::Duration::from_secs(3600));
    })
    .await;
    let client = StockServiceClient::new(service.channel.clone());
    (service, client)
}

/// A tenant, created through LedgerService.
async fn tenant(service: &TestService, slug: &str) -> String {
    LedgerServiceClient::new(service.channel.clone())
        .create_tenant(CreateTenantRequest {
            slug: slug.into(),
            name: slug.into(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect("tenant created")
        .into_inner()
        .tenant
        .expect("tenant")
        .id
}

/// The ledger's use cases on the service's database, to run the reservation sweeper when a
/// test says.
fn sweeper(service: &TestService) -> phoenix_ledger::app::Ledger {
    phoenix_ledger::app::Ledger::new(
        service.pool.clone(),
        phoenix_ledger::config::LedgerSettings::parse(&[]).expect("settings"),
        tokio_util::sync::CancellationToken::new(),
    )
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn new_item(tenant: &str, sku: &str, on_hand: i64) -> CreateInventoryItemRequest {
    CreateInventoryItemRequest {
        tenant_id: tenant.into(),
        sku: sku.into(),
        name: format!("Item {sku}"),
        on_hand,
        idempotency_key: key(),
    }
}

async fn create(client: &mut Client, tenant: &str, sku: &str, on_hand: i64) -> InventoryItem {
    client
        .create_inventory_item(new_item(tenant, sku, on_hand))
        .await
        .expect("item created")
        .into_inner()
        .item
        .expect("item")
}

fn reserve_request(tenant: &str, sku: &str, quantity: i64) -> ReserveStockRequest {
    ReserveStockRequest {
        tenant_id: tenant.into(),
        sku: sku.into(),
        quantity,
        expected_version: None,
        ttl: None,
        reference: "order-1".into(),
        idempotency_key: key(),
    }
}

async fn reserve(client: &mut Client, tenant: &str, sku: &str, quantity: i64) -> Reservation {
    client
        .reserve_stock(reserve_request(tenant, sku, quantity))
        .await
        .expect("reserved")
        .into_inner()
        .reservation
        .expect("reservation")
}

async fn item(client: &mut Client, tenant: &str, sku: &str) -> InventoryItem {
    client
        .get_inventory_item(GetInventoryItemRequest {
            tenant_id: tenant.into(),
            sku: sku.into(),
        })
        .await
        .expect("item found")
        .into_inner()
        .item
        .expect("item")
}

async fn reservation(client: &mut Client, tenant: &str, id: &str) -> Reservation {
    client
        .get_reservation(GetReservationRequest {
            tenant_id: tenant.into(),
            reservation_id: id.into(),
        })
        .await
        .expect("reservation found")
        .into_inner()
        .reservation
        .expect("reservation")
}

fn commit_request(tenant: &str, id: &str) -> CommitReservationRequest {
    CommitReservationRequest {
        tenant_id: tenant.into(),
        reservation_id: id.into(),
        idempotency_key: key(),
    }
}

fn release_request(tenant: &str, id: &str) -> ReleaseReservationRequest {
    ReleaseReservationRequest {
        tenant_id: tenant.into(),
        reservation_id: id.into(),
        idempotency_key: key(),
    }
}

fn holding_request(tenant: &str, owner: &str, code: &str, quantity: i64) -> AddHoldingRequest {
    AddHoldingRequest {
        tenant_id: tenant.into(),
        owner_ref: owner.into(),
        item_code: code.into(),
        quantity,
        idempotency_key: key(),
    }
}

fn removal(tenant: &str, owner: &str, code: &str, quantity: i64) -> RemoveHoldingRequest {
    RemoveHoldingRequest {
        tenant_id: tenant.into(),
        owner_ref: owner.into(),
        item_code: code.into(),
        quantity,
        idempotency_key: key(),
    }
}

async fn holdings(client: &mut Client, tenant: &str, owner: &str) -> Vec<Holding> {
    client
        .list_holdings(ListHoldingsRequest {
            tenant_id: tenant.into(),
            owner_ref: owner.into(),
        })
        .await
        .expect("listed")
        .into_inner()
        .holdings
}

/// Rows and events the stock slice wrote, to show that a refused call wrote nothing.
async fn written(service: &TestService) -> (i64, i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM inventory_items),
                (SELECT coalesce(sum(version), 0)::bigint FROM inventory_items),
                (SELECT count(*) FROM reservations),
                (SELECT coalesce(sum(version), 0)::bigint FROM holdings),
                (SELECT count(*) FROM events)",
    )
    .fetch_one(&service.pool)
    .await
    .expect("counts")
}

async fn assert_audit_clean(service: &TestService) {
    let violations = store::stock::audit(&service.pool).await.expect("audit");
    assert!(violations.is_empty(), "audit found: {violations:#?}");
}

#[tokio::test]
async fn items_are_created_fetched_and_listed_by_sku() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;

    let created = create(&mut client, &acme, "SKU-B", 5).await;
    create(&mut client, &acme, "SKU-A", 0).await;
    create(&mut client, &acme, "SKU-C", 7).await;

    assert_eq!(created.sku, "SKU-B");
    assert_eq!(created.tenant_id, acme);
    assert_eq!(
        (created.on_hand, created.reserved, created.available),
        (5, 0, 5)
    );
    assert_eq!(created.version, 1);
    assert_eq!(item(&mut client, &acme, "SKU-B").await, created);

    let first = client
        .list_inventory_items(ListInventoryItemsRequest {
            tenant_id: acme.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("first page")
        .into_inner();
    let skus: Vec<_> = first.items.iter().map(|i| i.sku.as_str()).collect();
    assert_eq!(skus, ["SKU-A", "SKU-B"]);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_inventory_items(ListInventoryItemsRequest {
            tenant_id: acme.clone(),
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .expect("second page")
        .into_inner();
    let skus: Vec<_> = second.items.iter().map(|i| i.sku.as_str()).collect();
    assert_eq!(skus, ["SKU-C"]);
    assert_eq!(second.next_page_token, "");

    let status = client
        .create_inventory_item(new_item(&acme, "SKU-B", 1))
        .await
        .expect_err("duplicate sku");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "ITEM_EXISTS");
    assert_eq!(item(&mut client, &acme, "SKU-B").await.on_hand, 5);
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn adjustments_restock_and_shrink_under_optimistic_locking() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    let adjust = |delta: i64, expected_version: Option<i64>| AdjustInventoryRequest {
        tenant_id: acme.clone(),
        sku: "SKU-1".into(),
        delta,
        expected_version,
        reason: "restock".into(),
        idempotency_key: key(),
    };

    let restocked = client
        .adjust_inventory(adjust(5, None))
        .await
        .expect("restock")
        .into_inner()
        .item
        .expect("item");
    assert_eq!((restocked.on_hand, restocked.version), (15, 2));
    let shrunk = client
        .adjust_inventory(adjust(-3, Some(2)))
        .await
        .expect("at the current version")
        .into_inner()
        .item
        .expect("item");
    assert_eq!((shrunk.on_hand, shrunk.version), (12, 3));

    let status = client
        .adjust_inventory(adjust(-1, Some(2)))
        .await
        .expect_err("stale version");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(reason(&status), "VERSION_CONFLICT");
    assert_eq!(metadata(&status, "current_version").as_deref(), Some("3"));
    assert_eq!(item(&mut client, &acme, "SKU-1").await, shrunk);

    // Units promised to a reservation cannot be written off.
    reserve(&mut client, &acme, "SKU-1", 10).await;
    let status = client
        .adjust_inventory(adjust(-3, None))
        .await
        .expect_err("below reserved");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "BELOW_RESERVED");
    let after = item(&mut client, &acme, "SKU-1").await;
    assert_eq!(
        (after.on_hand, after.reserved, after.available),
        (12, 10, 2)
    );
    client
        .adjust_inventory(adjust(-2, None))
        .await
        .expect("down to the reserved units");
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn a_reservation_holds_units_until_committed_or_released() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;

    let response = client
        .reserve_stock(reserve_request(&acme, "SKU-1", 3))
        .await
        .expect("reserved")
        .into_inner();
    let held = response.reservation.expect("reservation");
    let after_reserve = response.item.expect("item");
    assert_eq!(held.state(), ReservationState::Open);
    assert_eq!((held.sku.as_str(), held.quantity), ("SKU-1", 3));
    assert_eq!(held.reference, "order-1");
    let ttl =
        held.expire_time.expect("expiry").seconds - held.create_time.expect("created").seconds;
    assert_eq!(ttl, 15 * 60, "the default ttl is 15 minutes");
    assert_eq!(
        (
            after_reserve.on_hand,
            after_reserve.reserved,
            after_reserve.available
        ),
        (10, 3, 7)
    );
    assert_eq!(reservation(&mut client, &acme, &held.id).await, held);

    let committed = client
        .commit_reservation(commit_request(&acme, &held.id))
        .await
        .expect("committed")
        .into_inner();
    assert_eq!(
        committed.reservation.expect("reservation").state(),
        ReservationState::Committed
    );
    let after_commit = committed.item.expect("item");
    assert_eq!(
        (
            after_commit.on_hand,
            after_commit.reserved,
            after_commit.available
        ),
        (7, 0, 7),
        "committed units leave stock"
    );

    let second = reserve(&mut client, &acme, "SKU-1", 2).await;
    let released = client
        .release_reservation(release_request(&acme, &second.id))
        .await
        .expect("released")
        .into_inner();
    assert_eq!(
        released.reservation.expect("reservation").state(),
        ReservationState::Released
    );
    let after_release = released.item.expect("item");
    assert_eq!(
        (
            after_release.on_hand,
            after_release.reserved,
            after_release.available
        ),
        (7, 0, 7),
        "released units are available again"
    );
    assert_eq!(
        reservation(&mut client, &acme, &second.id).await.state(),
        ReservationState::Released
    );

    let before = written(&service).await;
    let status = client
        .commit_reservation(commit_request(&acme, &second.id))
        .await
        .expect_err("released already");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "RESERVATION_NOT_OPEN");
    assert_eq!(metadata(&status, "state").as_deref(), Some("RELEASED"));
    let status = client
        .release_reservation(release_request(&acme, &held.id))
        .await
        .expect_err("committed already");
    assert_eq!(status.code(), Code::FailedPrecondition);

    let status = client
        .reserve_stock(reserve_request(&acme, "SKU-1", 8))
        .await
        .expect_err("more than available");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "INSUFFICIENT_STOCK");
    assert_eq!(metadata(&status, "available").as_deref(), Some("7"));

    let stale = ReserveStockRequest {
        expected_version: Some(1),
        ..reserve_request(&acme, "SKU-1", 1)
    };
    let status = client
        .reserve_stock(stale)
        .await
        .expect_err("stale version");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(
        metadata(&status, "current_version"),
        Some(after_release.version.to_string())
    );
    assert_eq!(written(&service).await, before, "refusals write nothing");

    let current = ReserveStockRequest {
        expected_version: Some(after_release.version),
        ..reserve_request(&acme, "SKU-1", 1)
    };
    client
        .reserve_stock(current)
        .await
        .expect("reserved at the current version");
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn concurrent_reservations_never_oversell() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "LAST-10", 10).await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let mut client = client.clone();
        let request = reserve_request(&acme, "LAST-10", 1);
        calls.spawn(async move { client.reserve_stock(request).await });
    }
    let (mut reserved, mut refused) = (0, 0);
    while let Some(outcome) = calls.join_next().await {
        match outcome.expect("call finished") {
            Ok(_) => reserved += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason(&status), "INSUFFICIENT_STOCK");
                refused += 1;
            }
        }
    }

    assert_eq!((reserved, refused), (10, 20));
    let after = item(&mut client, &acme, "LAST-10").await;
    assert_eq!(
        (after.on_hand, after.reserved, after.available),
        (10, 10, 0)
    );
    assert_eq!(after.version, 11, "one change per reservation");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE state = 'OPEN'")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(open, 10);
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn an_expired_reservation_gives_its_units_back() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    let short = client
        .reserve_stock(ReserveStockRequest {
            ttl: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..reserve_request(&acme, "SKU-1", 4)
        })
        .await
        .expect("reserved")
        .into_inner()
        .reservation
        .expect("reservation");
    let long = reserve(&mut client, &acme, "SKU-1", 2).await;

    // A sweep a minute later: the 1-second one is due, the 15-minute one is not.
    let later = Utc::now() + chrono::Duration::minutes(1);
    let expired = sweeper(&service)
        .expire_reservations(later, 100)
        .await
        .expect("sweep");

    assert_eq!(expired, 1);
    assert_eq!(
        reservation(&mut client, &acme, &short.id).await.state(),
        ReservationState::Expired
    );
    assert_eq!(
        reservation(&mut client, &acme, &long.id).await.state(),
        ReservationState::Open
    );
    let after = item(&mut client, &acme, "SKU-1").await;
    assert_eq!((after.on_hand, after.reserved, after.available), (10, 2, 8));
    let status = client
        .commit_reservation(commit_request(&acme, &short.id))
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "RESERVATION_NOT_OPEN");
    assert_eq!(
        sweeper(&service)
            .expire_reservations(later, 100)
            .await
            .expect("second sweep"),
        0,
        "an expired reservation expires once"
    );
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn a_reservation_past_its_expiry_cannot_be_committed_before_the_sweep() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 1).await;
    let held = client
        .reserve_stock(ReserveStockRequest {
            ttl: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..reserve_request(&acme, "SKU-1", 1)
        })
        .await
        .expect("reserved")
        .into_inner()
        .reservation
        .expect("reservation");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let status = client
        .commit_reservation(commit_request(&acme, &held.id))
        .await
        .expect_err("past its expiry");

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "RESERVATION_EXPIRED");
    assert_eq!(item(&mut client, &acme, "SKU-1").await.reserved, 1);
    assert_eq!(
        sweeper(&service)
            .expire_reservations(Utc::now(), 100)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(item(&mut client, &acme, "SKU-1").await.available, 1);
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn holdings_are_added_removed_and_listed_never_below_zero() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;

    client
        .add_holding(holding_request(&acme, "user-1", "gem", 5))
        .await
        .expect("gems given");
    client
        .add_holding(holding_request(&acme, "user-1", "sword", 1))
        .await
        .expect("sword given");
    let gems = client
        .remove_holding(removal(&acme, "user-1", "gem", 3))
        .await
        .expect("gems spent")
        .into_inner()
        .holding
        .expect("holding");
    assert_eq!((gems.quantity, gems.version), (2, 2));

    let owned = holdings(&mut client, &acme, "user-1").await;
    let owned: Vec<_> = owned
        .iter()
        .map(|h| (h.item_code.as_str(), h.quantity))
        .collect();
    assert_eq!(owned, [("gem", 2), ("sword", 1)]);

    let before = written(&service).await;
    let status = client
        .remove_holding(removal(&acme, "user-1", "gem", 3))
        .await
        .expect_err("more than owned");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "INSUFFICIENT_HOLDING");
    assert_eq!(metadata(&status, "owned").as_deref(), Some("2"));
    let status = client
        .remove_holding(removal(&acme, "user-1", "shield", 1))
        .await
        .expect_err("never owned");
    assert_eq!(reason(&status), "INSUFFICIENT_HOLDING");
    let status = client
        .add_holding(holding_request(&acme, "user-1", "gem", i64::MAX))
        .await
        .expect_err("overflow");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "QUANTITY_OVERFLOW");
    assert_eq!(written(&service).await, before, "refusals write nothing");

    client
        .remove_holding(removal(&acme, "user-1", "sword", 1))
        .await
        .expect("sword spent");
    let owned = holdings(&mut client, &acme, "user-1").await;
    assert_eq!(owned.len(), 1, "a holding at zero is not listed");
    assert_eq!(owned[0].item_code, "gem");
    assert!(holdings(&mut client, &acme, "user-2").await.is_empty());
    // Back from zero, the holding's version (and event stream) goes on.
    let sword = client
        .add_holding(holding_request(&acme, "user-1", "sword", 1))
        .await
        .expect("sword again")
        .into_inner()
        .holding
        .expect("holding");
    assert_eq!((sword.quantity, sword.version), (1, 3));
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn a_retried_reservation_reserves_once() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    let request = reserve_request(&acme, "SKU-1", 4);

    let first = client
        .reserve_stock(request.clone())
        .await
        .expect("reserved")
        .into_inner();
    let retry = client
        .reserve_stock(request.clone())
        .await
        .expect("replayed")
        .into_inner();

    assert_eq!(retry, first, "the retry gets the first answer");
    let after = item(&mut client, &acme, "SKU-1").await;
    assert_eq!((after.reserved, after.available), (4, 6));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(rows, 1);

    let status = client
        .reserve_stock(ReserveStockRequest {
            quantity: 5,
            ..request
        })
        .await
        .expect_err("same key, other request");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(item(&mut client, &acme, "SKU-1").await.reserved, 4);

    // A commit retried after it succeeded is answered, not refused as "not open".
    let commit = commit_request(&acme, &first.reservation.expect("reservation").id);
    let committed = client
        .commit_reservation(commit.clone())
        .await
        .expect("committed")
        .into_inner();
    let again = client
        .commit_reservation(commit)
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(again, committed);
    assert_eq!(item(&mut client, &acme, "SKU-1").await.on_hand, 6);
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_others_stock() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    let globex = tenant(&service, "globex").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    let held = reserve(&mut client, &acme, "SKU-1", 2).await;
    client
        .add_holding(holding_request(&acme, "user-1", "gem", 5))
        .await
        .expect("given");

    let status = client
        .get_inventory_item(GetInventoryItemRequest {
            tenant_id: globex.clone(),
            sku: "SKU-1".into(),
        })
        .await
        .expect_err("another tenant's item");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "ITEM_NOT_FOUND");
    let status = client
        .reserve_stock(reserve_request(&globex, "SKU-1", 1))
        .await
        .expect_err("another tenant's item");
    assert_eq!(status.code(), Code::NotFound);
    for status in [
        client
            .get_reservation(GetReservationRequest {
                tenant_id: globex.clone(),
                reservation_id: held.id.clone(),
            })
            .await
            .expect_err("another tenant's reservation"),
        client
            .commit_reservation(commit_request(&globex, &held.id))
            .await
            .expect_err("another tenant's reservation"),
        client
            .release_reservation(release_request(&globex, &held.id))
            .await
            .expect_err("another tenant's reservation"),
    ] {
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(reason(&status), "RESERVATION_NOT_FOUND");
    }
    let status = client
        .remove_holding(removal(&globex, "user-1", "gem", 1))
        .await
        .expect_err("another tenant's holding");
    assert_eq!(reason(&status), "INSUFFICIENT_HOLDING");
    assert!(holdings(&mut client, &globex, "user-1").await.is_empty());
    let listed = client
        .list_inventory_items(ListInventoryItemsRequest {
            tenant_id: globex.clone(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("listed")
        .into_inner();
    assert!(listed.items.is_empty());

    // The same sku is another item in another tenant.
    let theirs = create(&mut client, &globex, "SKU-1", 1).await;
    assert_eq!(theirs.tenant_id, globex);
    let ours = item(&mut client, &acme, "SKU-1").await;
    assert_eq!((ours.on_hand, ours.reserved), (10, 2));
    assert_eq!(
        reservation(&mut client, &acme, &held.id).await.state(),
        ReservationState::Open
    );
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    let before = written(&service).await;

    let status = client
        .create_inventory_item(CreateInventoryItemRequest {
            sku: "not a sku".into(),
            name: " ".into(),
            on_hand: -1,
            ..new_item(&acme, "x", 0)
        })
        .await
        .expect_err("three bad fields");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["sku", "name", "on_hand"]);

    for (quantity, code) in [(0, Code::InvalidArgument), (-1, Code::InvalidArgument)] {
        let status = client
            .reserve_stock(reserve_request(&acme, "SKU-1", quantity))
            .await
            .expect_err("not a quantity");
        assert_eq!(status.code(), code);
        assert_eq!(fields(&status), ["quantity"]);
    }
    let status = client
        .reserve_stock(ReserveStockRequest {
            ttl: Some(prost_types::Duration {
                seconds: 31 * 24 * 3600,
                nanos: 0,
            }),
            ..reserve_request(&acme, "SKU-1", 1)
        })
        .await
        .expect_err("ttl too long");
    assert_eq!(fields(&status), ["ttl"]);
    let status = client
        .reserve_stock(reserve_request(&acme, "SKU-404", 1))
        .await
        .expect_err("unknown sku");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "ITEM_NOT_FOUND");
    assert_eq!(fields(&status), ["sku"]);
    let status = client
        .reserve_stock(reserve_request("not-a-uuid", "SKU-1", 1))
        .await
        .expect_err("malformed tenant");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["tenant_id"]);
    let status = client
        .reserve_stock(ReserveStockRequest {
            idempotency_key: String::new(),
            ..reserve_request(&acme, "SKU-1", 1)
        })
        .await
        .expect_err("no key");
    assert_eq!(fields(&status), ["idempotency_key"]);
    let status = client
        .commit_reservation(commit_request(&acme, "42"))
        .await
        .expect_err("malformed reservation id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["reservation_id"]);
    let unknown = uuid::Uuid::new_v4().to_string();
    let status = client
        .release_reservation(release_request(&acme, &unknown))
        .await
        .expect_err("unknown reservation");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(metadata(&status, "reservation_id"), Some(unknown));

    let adjust = |delta: i64| AdjustInventoryRequest {
        tenant_id: acme.clone(),
        sku: "SKU-1".into(),
        delta,
        expected_version: None,
        reason: String::new(),
        idempotency_key: key(),
    };
    let status = client
        .adjust_inventory(adjust(i64::MAX))
        .await
        .expect_err("overflowing delta");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "QUANTITY_OVERFLOW");
    assert_eq!(fields(&status), ["delta"]);
    let status = client
        .adjust_inventory(adjust(i64::MIN))
        .await
        .expect_err("below zero");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = client
        .adjust_inventory(adjust(0))
        .await
        .expect_err("zero delta");
    assert_eq!(fields(&status), ["delta"]);

    let nobody = uuid::Uuid::new_v4().to_string();
    let status = client
        .create_inventory_item(new_item(&nobody, "SKU-1", 1))
        .await
        .expect_err("unknown tenant");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "TENANT_NOT_FOUND");
    let status = client
        .add_holding(holding_request(&nobody, "user-1", "gem", 1))
        .await
        .expect_err("unknown tenant");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .add_holding(holding_request(&acme, " ", "a/b", 0))
        .await
        .expect_err("three bad fields");
    assert_eq!(fields(&status), ["owner_ref", "item_code", "quantity"]);
    let status = client
        .list_inventory_items(ListInventoryItemsRequest {
            tenant_id: acme.clone(),
            page_size: -1,
            page_token: String::new(),
        })
        .await
        .expect_err("negative page size");
    assert_eq!(fields(&status), ["page_size"]);

    assert_eq!(written(&service).await, before, "nothing was written");
    // The tenant's keys: its creation (a LedgerService call) is keyed outside it.
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM request_keys WHERE scope = $1")
        .bind(&acme)
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(keys, 1, "only the item's creation recorded its key");
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn the_audit_reports_a_broken_invariant() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    let held = reserve(&mut client, &acme, "SKU-1", 3).await;
    client
        .commit_reservation(commit_request(&acme, &held.id))
        .await
        .expect("committed");
    reserve(&mut client, &acme, "SKU-1", 2).await;
    client
        .add_holding(holding_request(&acme, "user-1", "gem", 5))
        .await
        .expect("given");
    assert_audit_clean(&service).await;

    // What no call would do: reserved drifts from the open reservations, and the version from
    // the event stream.
    sqlx::query("UPDATE inventory_items SET reserved = reserved + 1, version = version + 1")
        .execute(&service.pool)
        .await
        .expect("tampered");

    let violations = store::stock::audit(&service.pool).await.expect("audit");
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(
        violations.iter().any(|v| v.contains("\"SKU-1\"")
            && v.contains("reserved is 3")
            && v.contains("hold 2")),
        "{violations:#?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("inventory_item") && v.contains("row version 5")),
        "{violations:#?}"
    );
}

#[tokio::test]
async fn the_database_refuses_oversold_stock_and_negative_holdings() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 10).await;
    client
        .add_holding(holding_request(&acme, "user-1", "gem", 5))
        .await
        .expect("given");

    for breaking in [
        "UPDATE inventory_items SET reserved = on_hand + 1",
        "UPDATE inventory_items SET reserved = -1",
        "UPDATE holdings SET quantity = -1",
        "INSERT INTO inventory_items (tenant_id, sku, name, on_hand, version, updated_at)
         SELECT tenant_id, 'bad sku', 'x', 1, 1, now() FROM tenants",
    ] {
        assert!(
            sqlx::query(breaking).execute(&service.pool).await.is_err(),
            "{breaking}"
        );
    }
    assert_audit_clean(&service).await;
}

#[tokio::test]
async fn the_stock_migration_goes_down_and_up_cleanly() {
    let spec = phoenix_ledger::spec();
    let (_database, pool) = phoenix_testkit::migrated_database(&spec).await;
    let set = spec.migration_set().expect("migrations");
    let migrator = phoenix_runtime::migrate::Migrator::new(&set, &pool);
    let relations = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT relname::text FROM pg_class
             WHERE relnamespace = 'ledger'::regnamespace ORDER BY relname",
        )
        .fetch_all(&pool)
        .await
        .expect("relations")
    };
    let migrated = relations().await;
    assert!(migrated.iter().any(|r| r == "reservations_open_expiry"));

    // Down to 0002, the ledger without stock.
    let above_ledger = set.head().expect("head") - 2;
    migrator
        .down(usize::try_from(above_ledger).expect("count"), false)
        .await
        .expect("down");
    let without_stock = relations().await;
    for stock in ["inventory_items", "reservations", "holdings"] {
        assert!(
            !without_stock.iter().any(|r| r.starts_with(stock)),
            "{stock} left behind: {without_stock:?}"
        );
    }
    assert!(without_stock.iter().any(|r| r == "tenants"));

    migrator.up(None, false).await.expect("up again");
    assert_eq!(relations().await, migrated);
}

#[tokio::test]
async fn a_sweep_racing_releases_gives_each_reservation_back_once() {
    let (service, mut client) = start().await;
    let acme = tenant(&service, "acme").await;
    create(&mut client, &acme, "SKU-1", 20).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(reserve(&mut client, &acme, "SKU-1", 1).await.id);
    }

    let later = Utc::now() + chrono::Duration::hours(1);
    let mut racers = tokio::task::JoinSet::new();
    for id in &held {
        let mut client = client.clone();
        let request = release_request(&acme, id);
        racers.spawn(async move { u64::from(client.release_reservation(request).await.is_ok()) });
    }
    for _ in 0..3 {
        let sweeper = sweeper(&service);
        racers.spawn(async move { sweeper.expire_reservations(later, 5).await.expect("sweep") });
    }
    let mut ended = 0;
    while let Some(count) = racers.join_next().await {
        ended += count.expect("finished");
    }
    // What the racing sweeps left (a sweep skips rows a release holds).
    ended += sweeper(&service)
        .expire_reservations(later, 100)
        .await
        .expect("last sweep");

    assert_eq!(ended, 20, "each reservation ended exactly once");
    let after = item(&mut client, &acme, "SKU-1").await;
    assert_eq!(
        (after.on_hand, after.reserved, after.available),
        (20, 0, 20)
    );
    assert_eq!(after.version, 1 + 20 + 20);
    for id in &held {
        let state = reservation(&mut client, &acme, id).await.state();
        assert!(
            matches!(
                state,
                ReservationState::Released | ReservationState::Expired
            ),
            "{state:?}"
        );
    }
    assert_audit_clean(&service).await;
}
