//! Purchase through gRPC across the real services (directory, ledger, narrative, coordinator,
//! each on its own database): a completed purchase with its holding, posted transfer,
//! committed reservation, unlocks and event; refusals inside the saga (no funds, no stock, a
//! narrative id that does not exist) compensated with their reason and nothing left behind;
//! replays and reused keys; and bad input refused before any saga.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phoenix_coordinator::purchase::fixture::{Offer, ShopFixture};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use phoenix_proto::coordinator::v1::saga_service_client::SagaServiceClient;
use phoenix_proto::events::v1 as events;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_testkit::{
    TEST_SECRET, TestService, assert_refused, bearer, field_reasons, signed, spawn, spawn_with,
};
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

const PRICE: i64 = 30;

/// A TCP proxy that can be taken down: while down it refuses new connections and cuts the
/// ones it carries, as a participant that is down does.
struct Proxy {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
    /// Connections refused while down: a test knows its outage was actually met.
    refused: Arc<std::sync::atomic::AtomicU32>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Self {
            addr: listener.local_addr().expect("address"),
            down: Arc::new(AtomicBool::new(false)),
            cut: Arc::new(Mutex::new(CancellationToken::new())),
            refused: Arc::default(),
        };
        let (down, cut, refused) = (proxy.down.clone(), proxy.cut.clone(), proxy.refused.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if down.load(Ordering::SeqCst) {
                    refused.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let cut = cut.lock().expect("lock").clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            let mut cut = self.cut.lock().expect("lock");
            cut.cancel();
            *cut = CancellationToken::new();
        }
    }
}

struct World {
    /// Between the coordinator and the narrative.
    proxy: Proxy,
    // Kept so the services run for the whole test.
    _directory: TestService,
    _ledger: TestService,
    _narrative: TestService,
    coordinator: TestService,
    client: CoordinatorServiceClient<Channel>,
    narrative: NarrativeServiceClient<Channel>,
    shop: ShopFixture,
    fragment_id: String,
    experience_id: String,
}

async fn start() -> World {
    start_with(false).await
}

/// The world; with `auth`, the coordinator checks bearer tokens signed with `TEST_SECRET`.
async fn start_with(auth: bool) -> World {
    let directory = spawn(phoenix_directory::spec()).await;
    let ledger = spawn(phoenix_ledger::spec()).await;
    let narrative = spawn(phoenix_narrative::spec()).await;
    let proxy = Proxy::start(narrative.addr).await;
    let urls = (directory.url(), ledger.url(), proxy.url());
    let coordinator = spawn_with(phoenix_coordinator::spec(), move |config| {
        config.peers.directory_url = Some(urls.0);
        config.peers.ledger_url = Some(urls.1);
        config.peers.narrative_url = Some(urls.2);
        if auth {
            config.auth.hs256_secret = Some(TEST_SECRET.into());
        }
    })
    .await;
    let mut story = NarrativeServiceClient::new(narrative.channel.clone());
    let fragment_id = Uuid::new_v4().to_string();
    story
        .upsert_fragment(narrative::UpsertFragmentRequest {
            fragment: Some(narrative::Fragment {
                id: fragment_id.clone(),
                title: "The locked door".into(),
                content: "Behind it, the garden.".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("fragment");
    let experience_id = Uuid::new_v4().to_string();
    story
        .upsert_experience(narrative::UpsertExperienceRequest {
            experience: Some(narrative::Experience {
                id: experience_id.clone(),
                title: "The garden".into(),
                components: vec![narrative::ExperienceComponent {
                    sequence: 1,
                    target: Some(narrative::experience_component::Target::FragmentId(
                        fragment_id.clone(),
                    )),
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("experience");
    let shop = ShopFixture::open(ledger.channel.clone(), directory.channel.clone(), "shop")
        .await
        .expect("shop");
    World {
        proxy,
        client: CoordinatorServiceClient::new(coordinator.channel.clone()),
        narrative: story,
        _directory: directory,
        _ledger: ledger,
        _narrative: narrative,
        coordinator,
        shop,
        fragment_id,
        experience_id,
    }
}

impl World {
    /// A user of the directory with a wallet holding `funds`: (user id, wallet id).
    async fn buyer(&mut self, funds: i64) -> (String, String) {
        let user = self
            .shop
            .user(&format!("{}@example.com", Uuid::new_v4()))
            .await
            .expect("user");
        let wallet = self.shop.fund(&user, funds).await.expect("wallet");
        (user, wallet)
    }

    /// A shop item `id` selling `on_hand` units of `SKU-<id>` that unlocks the world's fragment
    /// and experience (plus `extra_experiences`).
    async fn offer(&mut self, id: &str, on_hand: i64, extra_experiences: &[String]) {
        let mut experience_ids = vec![self.experience_id.clone()];
        experience_ids.extend_from_slice(extra_experiences);
        self.shop
            .offer(Offer {
                shop_item_id: id,
                sku: &format!("SKU-{id}"),
                on_hand,
                price: PRICE,
                fragment_ids: vec![self.fragment_id.clone()],
                experience_ids,
            })
            .await
            .expect("offer");
    }

    fn request(&self, user: &str, item: &str, quantity: i64) -> pb::PurchaseRequest {
        pb::PurchaseRequest {
            tenant_id: self.shop.tenant_id.clone(),
            user_id: user.to_owned(),
            shop_item_id: item.to_owned(),
            quantity,
            idempotency_key: Uuid::new_v4().to_string(),
        }
    }

    async fn buy(&mut self, request: pb::PurchaseRequest) -> pb::PurchaseResponse {
        self.client
            .purchase(request)
            .await
            .expect("the purchase answers")
            .into_inner()
    }

    async fn balance(&mut self, account: &str) -> ledger::Balance {
        self.shop.balance(account).await.expect("balance")
    }

    async fn item(&mut self, sku: &str) -> ledger::InventoryItem {
        self.shop
            .stock
            .get_inventory_item(ledger::GetInventoryItemRequest {
                tenant_id: self.shop.tenant_id.clone(),
                sku: sku.to_owned(),
            })
            .await
            .expect("item")
            .into_inner()
            .item
            .expect("item")
    }

    async fn holdings(&mut self, user: &str) -> Vec<(String, i64)> {
        self.shop.holdings(user).await.expect("holdings")
    }

    async fn progress(&mut self, user: &str) -> narrative::GetUserProgressResponse {
        self.narrative
            .get_user_progress(narrative::GetUserProgressRequest {
                user_id: user.to_owned(),
            })
            .await
            .expect("progress")
            .into_inner()
    }

    /// The events the coordinator recorded for a saga: type, encoded payload, priority.
    async fn events(&self, saga_id: &str) -> Vec<(String, Vec<u8>, i16)> {
        sqlx::query_as(
            "SELECT event_type, payload, priority FROM events WHERE aggregate_id = $1 \
             ORDER BY seq",
        )
        .bind(saga_id)
        .fetch_all(&self.coordinator.pool)
        .await
        .expect("events")
    }
}

#[tokio::test]
async fn a_purchase_pays_holds_unlocks_and_takes_the_stock() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let (user, wallet) = world.buyer(100).await;
    let answer = world.buy(world.request(&user, "gem", 2)).await;
    assert!(answer.success, "{answer:?}");
    assert_eq!(answer.state(), pb::PurchaseState::Completed);
    assert!(answer.failure.is_none());
    let receipt = answer.receipt.clone().expect("receipt");
    assert_eq!(
        (
            receipt.amount,
            receipt.asset_code.as_str(),
            receipt.item_code.as_str()
        ),
        (2 * PRICE, "BESITOS", "SKU-gem")
    );
    assert_eq!(receipt.holding_quantity, 2);
    assert_eq!(receipt.unlocked_fragment_ids, [world.fragment_id.clone()]);
    assert_eq!(
        receipt.unlocked_experience_ids,
        [world.experience_id.clone()]
    );

    // Paid: posted, nothing pending, the revenue credited.
    let paid = world.balance(&wallet).await;
    assert_eq!((paid.posted, paid.debits_pending), (100 - 2 * PRICE, 0));
    let revenue = world.shop.revenue_account_id.clone();
    assert_eq!(world.balance(&revenue).await.posted, 2 * PRICE);
    let transfer = world
        .shop
        .ledger
        .get_transfer(ledger::GetTransferRequest {
            tenant_id: world.shop.tenant_id.clone(),
            transfer_id: receipt.transfer_id.clone(),
        })
        .await
        .expect("transfer")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(transfer.pending_state(), ledger::PendingState::Posted);

    // The stock left for good; the reservation is committed.
    let item = world.item("SKU-gem").await;
    assert_eq!((item.on_hand, item.reserved), (3, 0));
    let reservation = world
        .shop
        .stock
        .get_reservation(ledger::GetReservationRequest {
            tenant_id: world.shop.tenant_id.clone(),
            reservation_id: receipt.reservation_id.clone(),
        })
        .await
        .expect("reservation")
        .into_inner()
        .reservation
        .expect("reservation");
    assert_eq!(reservation.state(), ledger::ReservationState::Committed);

    assert_eq!(world.holdings(&user).await, [("SKU-gem".to_owned(), 2)]);
    let progress = world.progress(&user).await;
    assert_eq!(progress.unlocked_fragment_ids, [world.fragment_id.clone()]);
    assert_eq!(
        progress
            .experiences
            .iter()
            .map(|e| e.experience_id.clone())
            .collect::<Vec<_>>(),
        [world.experience_id.clone()]
    );

    // Every participant call carried its step's derived key.
    let keys = |pool: sqlx::PgPool| async move {
        let mut keys: Vec<String> = sqlx::query_scalar(
            "SELECT idempotency_key FROM request_keys WHERE idempotency_key LIKE 'saga:%'",
        )
        .fetch_all(&pool)
        .await
        .expect("keys");
        keys.sort();
        keys
    };
    let saga = &answer.saga_id;
    let mut expected: Vec<String> = [
        "add_holding",
        "commit_reservation",
        "pending_transfer",
        "post_transfer",
        "reserve_stock",
    ]
    .iter()
    .map(|step| format!("saga:{saga}:{step}"))
    .collect();
    expected.sort();
    assert_eq!(keys(world._ledger.pool.clone()).await, expected);
    assert_eq!(
        keys(world._narrative.pool.clone()).await,
        [
            format!("saga:{saga}:unlock_experiences:{}", world.experience_id),
            format!("saga:{saga}:unlock_fragments"),
        ]
    );

    let events = world.events(&answer.saga_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "commerce.purchase_completed");
    assert_eq!(events[0].2, 4, "the catalogue's CRITICAL");
    let completed =
        events::CommercePurchaseCompleted::decode(events[0].1.as_slice()).expect("its message");
    assert_eq!(
        completed,
        events::CommercePurchaseCompleted {
            user_id: user.clone(),
            purchase_id: answer.saga_id.clone(),
            shop_item_id: "gem".into(),
            quantity: 2,
            asset: receipt.asset_code.clone(),
            total_price: 2 * PRICE,
            transfer_id: receipt.transfer_id.clone(),
        }
    );
}

#[tokio::test]
async fn insufficient_funds_compensate_with_the_reason_and_leave_nothing_held() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let (user, wallet) = world.buyer(PRICE - 1).await;
    let answer = world.buy(world.request(&user, "gem", 1)).await;
    assert!(!answer.success);
    assert_eq!(answer.state(), pb::PurchaseState::Compensated);
    let failure = answer.failure.clone().expect("failure");
    assert_eq!(
        (failure.step.as_str(), failure.reason.as_str()),
        ("pending_transfer", "INSUFFICIENT_FUNDS")
    );
    assert!(answer.receipt.is_none());

    // The reservation was released, no money moved or stays reserved, nothing was given.
    let item = world.item("SKU-gem").await;
    assert_eq!((item.on_hand, item.reserved), (5, 0));
    let balance = world.balance(&wallet).await;
    assert_eq!((balance.posted, balance.debits_pending), (PRICE - 1, 0));
    assert!(world.holdings(&user).await.is_empty());
    assert!(world.progress(&user).await.unlocked_fragment_ids.is_empty());
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE state = 'OPEN'")
        .fetch_one(&world._ledger.pool)
        .await
        .expect("count");
    assert_eq!(open, 0, "no reservation left open");

    let events = world.events(&answer.saga_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "commerce.purchase_failed");
    assert_eq!(events[0].2, 3, "the catalogue's HIGH");
    let failed =
        events::CommercePurchaseFailed::decode(events[0].1.as_slice()).expect("its message");
    assert_eq!(
        failed,
        events::CommercePurchaseFailed {
            user_id: user.clone(),
            purchase_id: answer.saga_id.clone(),
            shop_item_id: "gem".into(),
            quantity: 1,
            reason: "INSUFFICIENT_FUNDS".into(),
        }
    );
}

#[tokio::test]
async fn out_of_stock_is_a_compensated_purchase_not_an_error() {
    let mut world = start().await;
    world.offer("gem", 1, &[]).await;
    let (user, wallet) = world.buyer(1000).await;
    let answer = world.buy(world.request(&user, "gem", 2)).await;
    assert_eq!(answer.state(), pb::PurchaseState::Compensated);
    let failure = answer.failure.expect("failure");
    assert_eq!(
        (failure.step.as_str(), failure.reason.as_str()),
        ("reserve_stock", "INSUFFICIENT_STOCK")
    );
    assert_eq!(world.balance(&wallet).await.posted, 1000);
    let item = world.item("SKU-gem").await;
    assert_eq!((item.on_hand, item.reserved), (1, 0));
}

#[tokio::test]
async fn a_refused_unlock_undoes_every_step_before_it() {
    let mut world = start().await;
    // The second experience does not exist: the narrative refuses it after the payment was
    // reserved, the holding added and the first unlocks made.
    let missing = Uuid::new_v4().to_string();
    world.offer("gem", 5, std::slice::from_ref(&missing)).await;
    let (user, wallet) = world.buyer(100).await;
    let answer = world.buy(world.request(&user, "gem", 1)).await;
    assert_eq!(answer.state(), pb::PurchaseState::Compensated, "{answer:?}");
    let failure = answer.failure.expect("failure");
    assert_eq!(
        (failure.step.as_str(), failure.reason.as_str()),
        ("unlock_experiences", "EXPERIENCE_NOT_FOUND")
    );
    let progress = world.progress(&user).await;
    assert!(
        progress.unlocked_fragment_ids.is_empty(),
        "fragment re-locked"
    );
    assert!(
        progress.experiences.is_empty(),
        "experience re-locked: {:?}",
        progress.experiences
    );
    assert_eq!(world.holdings(&user).await, []);
    let balance = world.balance(&wallet).await;
    assert_eq!((balance.posted, balance.debits_pending), (100, 0));
    let item = world.item("SKU-gem").await;
    assert_eq!((item.on_hand, item.reserved), (5, 0));
}

#[tokio::test]
async fn the_same_key_answers_the_same_purchase_and_another_request_with_it_is_refused() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let (user, wallet) = world.buyer(100).await;
    let request = world.request(&user, "gem", 1);
    let first = world.buy(request.clone()).await;
    assert!(first.success && !first.replayed);
    let again = world.buy(request.clone()).await;
    assert!(again.replayed);
    assert_eq!(
        (again.saga_id.as_str(), again.receipt.as_ref()),
        (first.saga_id.as_str(), first.receipt.as_ref())
    );
    assert_eq!(world.holdings(&user).await, [("SKU-gem".to_owned(), 1)]);
    assert_eq!(world.balance(&wallet).await.posted, 100 - PRICE);

    let other = pb::PurchaseRequest {
        quantity: 2,
        ..request
    };
    let status = world.client.purchase(other).await.expect_err("reused");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(world.holdings(&user).await, [("SKU-gem".to_owned(), 1)]);
}

#[tokio::test]
async fn bad_input_is_refused_before_any_saga_with_every_field() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let status = world
        .client
        .purchase(pb::PurchaseRequest {
            tenant_id: "x".into(),
            user_id: String::new(),
            shop_item_id: "no spaces".into(),
            quantity: 0,
            idempotency_key: String::new(),
        })
        .await
        .expect_err("bad");
    assert_eq!(status.code(), Code::InvalidArgument);
    let found = field_reasons(&status);
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(f, r)| (f.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("tenant_id", "INVALID_ID"),
            ("user_id", "REQUIRED"),
            ("shop_item_id", "INVALID_CODE"),
            ("quantity", "INVALID_QUANTITY"),
            ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED"),
        ]
    );
    let (user, _) = world.buyer(100).await;
    let negative = world.request(&user, "gem", -3);
    let status = world.client.purchase(negative).await.expect_err("negative");
    assert_eq!(
        field_reasons(&status),
        [("quantity".to_owned(), "INVALID_QUANTITY".to_owned())]
    );

    let stranger = world.request(&Uuid::new_v4().to_string(), "gem", 1);
    let status = world.client.purchase(stranger).await.expect_err("no user");
    assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");

    let nothing = world.request(&user, "ghost", 1);
    let status = world.client.purchase(nothing).await.expect_err("no item");
    assert_refused(&status, Code::NotFound, "SHOP_ITEM_NOT_FOUND");

    let elsewhere = pb::PurchaseRequest {
        tenant_id: Uuid::new_v4().to_string(),
        ..world.request(&user, "gem", 1)
    };
    let status = world
        .client
        .purchase(elsewhere)
        .await
        .expect_err("no tenant");
    assert_refused(&status, Code::NotFound, "TENANT_NOT_FOUND");

    let poor = world
        .shop
        .user(&format!("{}@example.com", Uuid::new_v4()))
        .await
        .expect("user");
    let status = world
        .client
        .purchase(world.request(&poor, "gem", 1))
        .await
        .expect_err("no wallet");
    assert_refused(&status, Code::FailedPrecondition, "WALLET_NOT_FOUND");

    let sagas: i64 = sqlx::query_scalar("SELECT count(*) FROM sagas")
        .fetch_one(&world.coordinator.pool)
        .await
        .expect("count");
    assert_eq!(sagas, 0, "no saga was started for a refused request");
}

#[tokio::test]
async fn an_item_taken_off_sale_is_refused() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let item = world
        .shop
        .shop
        .get_shop_item(ledger::GetShopItemRequest {
            tenant_id: world.shop.tenant_id.clone(),
            shop_item_id: "gem".into(),
        })
        .await
        .expect("item")
        .into_inner()
        .item
        .expect("item");
    world
        .shop
        .shop
        .upsert_shop_item(ledger::UpsertShopItemRequest {
            tenant_id: item.tenant_id,
            shop_item_id: item.shop_item_id,
            name: item.name,
            price: item.price,
            sku: item.sku,
            revenue_account_id: item.revenue_account_id,
            unlocks: item.unlocks,
            available: false,
            idempotency_key: Uuid::new_v4().to_string(),
        })
        .await
        .expect("off sale");
    let (user, _) = world.buyer(100).await;
    let status = world
        .client
        .purchase(world.request(&user, "gem", 1))
        .await
        .expect_err("not for sale");
    assert_refused(&status, Code::FailedPrecondition, "SHOP_ITEM_UNAVAILABLE");
}

#[tokio::test]
async fn a_short_narrative_outage_is_waited_out_and_the_purchase_completes() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let (user, wallet) = world.buyer(100).await;
    // The narrative is first called at unlock_fragments, after the payment is reserved.
    world.proxy.set_down(true);
    let (down, refused) = (world.proxy.down.clone(), world.proxy.refused.clone());
    // Back up 150 ms after the saga first met the outage (not after a fixed time from here: on
    // a loaded machine the saga may reach the narrative later than that).
    tokio::spawn(async move {
        while refused.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        down.store(false, Ordering::SeqCst);
    });
    let answer = world.buy(world.request(&user, "gem", 1)).await;
    assert!(answer.success, "{answer:?}");
    let saga = SagaServiceClient::new(world.coordinator.channel.clone())
        .get_saga(phoenix_proto::coordinator::v1::GetSagaRequest {
            saga_id: answer.saga_id.clone(),
        })
        .await
        .expect("saga")
        .into_inner()
        .saga
        .expect("saga");
    let unlock = saga
        .steps
        .iter()
        .find(|step| step.name == "unlock_fragments")
        .expect("the step");
    assert!(unlock.attempts > 1, "the outage was retried: {unlock:?}");
    assert_eq!(world.holdings(&user).await, [("SKU-gem".to_owned(), 1)]);
    assert_eq!(world.balance(&wallet).await.posted, 100 - PRICE);
    assert_eq!(
        world.progress(&user).await.unlocked_fragment_ids,
        [world.fragment_id.clone()]
    );
}

#[tokio::test]
async fn a_long_narrative_outage_parks_the_purchase_stuck_and_retry_undoes_it_whole() {
    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let (user, wallet) = world.buyer(100).await;
    world.proxy.set_down(true);
    let answer = world.buy(world.request(&user, "gem", 1)).await;
    // unlock_fragments never answered: its outcome is unknown, so it is compensated too, and
    // that compensation cannot reach the narrative either.
    assert_eq!(answer.state(), pb::PurchaseState::Stuck, "{answer:?}");
    assert!(!answer.success);
    assert_eq!(
        answer.failure.as_ref().map(|f| f.step.as_str()),
        Some("unlock_fragments")
    );

    world.proxy.set_down(false);
    let retried = SagaServiceClient::new(world.coordinator.channel.clone())
        .retry_saga(phoenix_proto::coordinator::v1::RetrySagaRequest {
            saga_id: answer.saga_id.clone(),
        })
        .await
        .expect("retried")
        .into_inner()
        .saga
        .expect("saga");
    assert_eq!(
        retried.state(),
        phoenix_proto::coordinator::v1::SagaState::Compensated,
        "{retried:?}"
    );
    // Undone whole: the unlock the retry's replay made is locked again, the holding removed,
    // the payment voided, the reservation released.
    assert!(world.progress(&user).await.unlocked_fragment_ids.is_empty());
    assert!(
        world
            .holdings(&user)
            .await
            .iter()
            .all(|(_, units)| *units == 0)
    );
    let balance = world.balance(&wallet).await;
    assert_eq!((balance.posted, balance.debits_pending), (100, 0));
    let item = world.item("SKU-gem").await;
    assert_eq!((item.on_hand, item.reserved), (5, 0));
    let events = world.events(&answer.saga_id).await;
    assert_eq!(
        events
            .iter()
            .map(|(kind, _, _)| kind.as_str())
            .collect::<Vec<_>>(),
        ["commerce.purchase_failed"]
    );
}

#[tokio::test]
async fn a_coordinator_that_crashes_mid_purchase_is_taken_over_and_nothing_happens_twice() {
    use phoenix_coordinator::purchase::participants::Participants;
    use phoenix_coordinator::purchase::{Planner, PurchaseOrder, saga};
    use phoenix_coordinator::saga::{EngineConfig, SagaEngine, SagaRequest};
    use phoenix_runtime::client::ClientBuilder;

    let mut world = start().await;
    world.offer("gem", 5, &[]).await;
    let (user, wallet) = world.buyer(100).await;
    // A second coordinator process, as a crashed replica would be: its own engine on the same
    // database, with short leases, running the same purchase definition.
    let peer = |url: String| ClientBuilder::new(url).connect_lazy().expect("channel");
    let participants = Participants::new(peer(world._ledger.url()), peer(world.proxy.url()));
    let engine = SagaEngine::new(
        world.coordinator.pool.clone(),
        None,
        EngineConfig {
            lease: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    );
    engine
        .register(saga::definition(&participants))
        .expect("registered");
    let planner = Planner {
        participants,
        directory: phoenix_directory_client::DirectoryClient::new(
            peer(world._directory.url()),
            Default::default(),
        ),
    };
    let request = world.request(&user, "gem", 1);
    let order = PurchaseOrder {
        tenant_id: request.tenant_id.parse().expect("uuid"),
        user_id: user.parse().expect("uuid"),
        shop_item_id: "gem".into(),
        quantity: 1,
        idempotency_key: request.idempotency_key.clone(),
    };
    let plan = planner.plan(&order).await.expect("plan");
    let saga_request = SagaRequest::new(saga::SAGA_TYPE, &order.idempotency_key, &plan)
        .expect("request")
        .user(user.clone())
        .fingerprint_of(&request);

    // It gets as far as the unlocks (the narrative is down), then dies.
    world.proxy.set_down(true);
    let crashed = engine.clone();
    let running = tokio::spawn(async move { crashed.run(saga_request).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    engine.abandon_all();
    running.abort();
    world.proxy.set_down(false);

    // The service's coordinator adopts it once the lease expires and finishes it, with the
    // same keys: the caller's retry answers the finished purchase.
    let mut sagas = SagaServiceClient::new(world.coordinator.channel.clone());
    let mut state = pb::PurchaseState::Unspecified;
    for _ in 0..100 {
        let answer = world.buy(request.clone()).await;
        state = answer.state();
        if state != pb::PurchaseState::InProgress {
            assert!(answer.replayed, "{answer:?}");
            let saga = sagas
                .get_saga(phoenix_proto::coordinator::v1::GetSagaRequest {
                    saga_id: answer.saga_id.clone(),
                })
                .await
                .expect("saga")
                .into_inner()
                .saga
                .expect("saga");
            assert!(saga.lease_generation > 1, "taken over: {saga:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, pb::PurchaseState::Completed);
    assert_eq!(world.holdings(&user).await, [("SKU-gem".to_owned(), 1)]);
    let balance = world.balance(&wallet).await;
    assert_eq!((balance.posted, balance.debits_pending), (100 - PRICE, 0));
    let item = world.item("SKU-gem").await;
    assert_eq!((item.on_hand, item.reserved), (4, 0));
}

#[tokio::test]
async fn with_authentication_on_a_user_buys_only_for_themselves() {
    let mut world = start_with(true).await;
    world.offer("gem", 5, &[]).await;
    let (ada, _) = world.buyer(100).await;
    let (bob, _) = world.buyer(100).await;
    let as_ada = bearer(TEST_SECRET, serde_json::json!({"sub": ada}));
    let status = world
        .client
        .purchase(signed(world.request(&bob, "gem", 1), &as_ada))
        .await
        .expect_err("not hers");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    assert!(world.holdings(&bob).await.is_empty());

    let answer = world
        .client
        .purchase(signed(world.request(&ada, "gem", 1), &as_ada))
        .await
        .expect("her own")
        .into_inner();
    assert!(answer.success, "{answer:?}");
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": ["coordinator-admin"]}),
    );
    let answer = world
        .client
        .purchase(signed(world.request(&bob, "gem", 1), &admin))
        .await
        .expect("an admin buys for anyone")
        .into_inner();
    assert!(answer.success, "{answer:?}");
}
