//! The load of a chaos run: clients buying from the shop through the coordinator, each retrying
//! its purchase with the same key until the coordinator answers where the saga ended, across
//! every kill and restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phoenix_coordinator::purchase::fixture::{Offer, ShopFixture};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

/// What one client's users may buy: the shop, its items, and the client's own users (so no
/// two purchases of one user run at once, and each user's balance is a sum of their own sagas).
#[derive(Debug, Clone)]
pub struct Shop {
    pub tenant_id: String,
    pub revenue_account_id: String,
    /// (shop item id, sku), each with `stock` units.
    pub items: Vec<(String, String)>,
    /// (user id, wallet id), each funded with `funds`.
    pub users: Vec<(String, String)>,
    /// (fragment id, decision id) of the story TakeDecision is called on; each decision grants
    /// [`DECISION_BESITOS`] and one [`DECISION_ITEM`]. Empty: no TakeDecision load.
    pub decisions: Vec<(String, String)>,
    pub stock: i64,
    pub funds: i64,
}

/// Opens the shop over the participants (without faults: the setup is not under test).
pub async fn open_shop(
    ledger: Channel,
    directory: Channel,
    items: usize,
    users: usize,
    stock: i64,
    funds: i64,
    price: i64,
) -> anyhow::Result<Shop> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut fixture = ShopFixture::open(ledger, directory, &format!("chaos-{}", &run[..8])).await?;
    let mut shop = Shop {
        tenant_id: fixture.tenant_id.clone(),
        revenue_account_id: fixture.revenue_account_id.clone(),
        items: Vec::new(),
        users: Vec::new(),
        stock,
        funds,
        decisions: Vec::new(),
    };
    for index in 0..items {
        let id = format!("chaos-item-{index}");
        let sku = format!("CHAOS-{index}");
        fixture
            .offer(Offer {
                shop_item_id: &id,
                sku: &sku,
                on_hand: stock,
                price,
                fragment_ids: Vec::new(),
                experience_ids: Vec::new(),
            })
            .await?;
        shop.items.push((id, sku));
    }
    for index in 0..users {
        let user = fixture
            .user(&format!("chaos-{index}-{run}@example.com"))
            .await?;
        let wallet = fixture.fund(&user, funds).await?;
        shop.users.push((user, wallet));
    }
    Ok(shop)
}

/// Besitos each decision of the chaos story grants.
pub const DECISION_BESITOS: i64 = 5;
/// The item each decision of the chaos story grants, one unit.
pub const DECISION_ITEM: &str = "CHAOS-TOKEN";

/// Writes `count` fragments without requirements, each with one decision, in the narrative.
pub async fn write_story(narrative: Channel, shop: &mut Shop, count: usize) -> anyhow::Result<()> {
    use phoenix_proto::narrative::v1 as story;
    let mut client = story::narrative_service_client::NarrativeServiceClient::new(narrative);
    for index in 0..count {
        let fragment = uuid::Uuid::new_v4().to_string();
        client
            .upsert_fragment(story::UpsertFragmentRequest {
                fragment: Some(story::Fragment {
                    id: fragment.clone(),
                    title: format!("Chaos {index}"),
                    content: "A door, and a choice.".into(),
                    ..Default::default()
                }),
            })
            .await?;
        let decision = uuid::Uuid::new_v4().to_string();
        client
            .upsert_decision(story::UpsertDecisionRequest {
                decision: Some(story::Decision {
                    id: decision.clone(),
                    fragment_id: fragment.clone(),
                    label: "Open it".into(),
                    rewards: Some(story::Rewards {
                        besitos: DECISION_BESITOS,
                        items: vec![story::ItemAmount {
                            item_id: DECISION_ITEM.into(),
                            quantity: 1,
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            })
            .await?;
        shop.decisions.push((fragment, decision));
    }
    Ok(())
}

/// Where each purchase the clients sent ended, as the coordinator answered it.
#[derive(Debug, Default)]
pub struct Answers {
    /// Saga id → the state the last answer named.
    pub sagas: BTreeMap<String, pb::PurchaseState>,
    /// TakeDecision's saga id → whether the answer said it succeeded.
    pub decisions: BTreeMap<String, bool>,
    /// TakeDecisions answered with unmet requirements (no saga).
    pub unmet: u64,
    /// Purchases refused before any saga (an error that is not transient), with the reason.
    pub refused: Vec<String>,
    /// Keys that never got a final answer before the clients gave up.
    pub unanswered: Vec<String>,
    /// Transient errors the clients retried through (the coordinator down, a fault).
    pub retries: u64,
}

/// Runs `clients` clients until `stop`, then lets each finish the purchase it has in hand
/// (retrying until `give_up`).
pub async fn run(
    url: String,
    shop: Arc<Shop>,
    clients: usize,
    stop: CancellationToken,
    give_up: CancellationToken,
) -> anyhow::Result<Answers> {
    let answers = Arc::new(Mutex::new(Answers::default()));
    let channel = Channel::from_shared(url)?
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy();
    let mut tasks = Vec::new();
    for index in 0..clients {
        let users: Vec<(String, String)> = shop
            .users
            .iter()
            .skip(index)
            .step_by(clients)
            .cloned()
            .collect();
        if users.is_empty() {
            continue;
        }
        let client = Client {
            coordinator: CoordinatorServiceClient::new(channel.clone()),
            shop: shop.clone(),
            users,
            answers: answers.clone(),
            give_up: give_up.clone(),
        };
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let decide = !client.shop.decisions.is_empty() && rand::rng().random_bool(0.5);
                if decide {
                    client.one_decision().await;
                } else {
                    client.one_purchase().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(answers)
}

struct Client {
    coordinator: CoordinatorServiceClient<Channel>,
    shop: Arc<Shop>,
    users: Vec<(String, String)>,
    answers: Arc<Mutex<Answers>>,
    give_up: CancellationToken,
}

impl Client {
    fn answers(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One purchase, sent again with its key until its saga has ended.
    async fn one_purchase(&self) {
        let (user, item, quantity) = {
            let mut random = rand::rng();
            let user = &self.users[random.random_range(0..self.users.len())].0;
            let item = &self.shop.items[random.random_range(0..self.shop.items.len())].0;
            (user.clone(), item.clone(), random.random_range(1..=3))
        };
        let request = pb::PurchaseRequest {
            tenant_id: self.shop.tenant_id.clone(),
            user_id: user,
            shop_item_id: item,
            quantity,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        };
        let coordinator = self.coordinator.clone();
        let answer = self
            .until_answered(&request.idempotency_key, || {
                let mut coordinator = coordinator.clone();
                let mut call = tonic::Request::new(request.clone());
                call.set_timeout(Duration::from_secs(20));
                async move {
                    let answer = coordinator.purchase(call).await?.into_inner();
                    if answer.state() == pb::PurchaseState::InProgress {
                        return Err(tonic::Status::unavailable("the saga is still running"));
                    }
                    Ok(answer)
                }
            })
            .await;
        match answer {
            None => {}
            Some(Ok(answer)) => {
                let state = answer.state();
                self.answers().sagas.insert(answer.saga_id, state);
            }
            Some(Err(status)) => self.refused("Purchase", &status),
        }
    }

    /// One TakeDecision, sent again with its key until its saga has ended.
    async fn one_decision(&self) {
        let (user, (fragment, decision)) = {
            let mut random = rand::rng();
            let user = &self.users[random.random_range(0..self.users.len())].0;
            let story = &self.shop.decisions[random.random_range(0..self.shop.decisions.len())];
            (user.clone(), story.clone())
        };
        let request = pb::TakeDecisionRequest {
            user_id: user,
            fragment_id: fragment,
            decision_id: decision,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            // TakeDecision pays its besitos in the shop's tenant.
            tenant_id: self.shop.tenant_id.clone(),
        };
        let coordinator = self.coordinator.clone();
        // SAGA_IN_PROGRESS is UNAVAILABLE: asked again like any transient answer.
        let answer = self
            .until_answered(&request.idempotency_key, || {
                let mut coordinator = coordinator.clone();
                let mut call = tonic::Request::new(request.clone());
                call.set_timeout(Duration::from_secs(20));
                async move { Ok(coordinator.take_decision(call).await?.into_inner()) }
            })
            .await;
        match answer {
            None => {}
            Some(Ok(answer)) if answer.saga_id.is_empty() => self.answers().unmet += 1,
            Some(Ok(answer)) => {
                self.answers()
                    .decisions
                    .insert(answer.saga_id, answer.success);
            }
            Some(Err(status)) => self.refused("TakeDecision", &status),
        }
    }

    /// Sends `call` (the same request, the same key) again until it answers something other
    /// than a transient error; `None` when the clients give up first.
    async fn until_answered<T, F, Fut>(
        &self,
        key: &str,
        call: F,
    ) -> Option<Result<T, tonic::Status>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        loop {
            if self.give_up.is_cancelled() {
                self.answers().unanswered.push(key.to_owned());
                return None;
            }
            match call().await {
                Err(status) if transient(status.code()) => {
                    self.answers().retries += 1;
                    self.pause().await;
                }
                answer => return Some(answer),
            }
        }
    }

    fn refused(&self, operation: &str, status: &tonic::Status) {
        let reason = phoenix_runtime::RemoteError::from_status(status).reason;
        self.answers().refused.push(format!(
            "{operation} {:?} {reason}: {}",
            status.code(),
            status.message()
        ));
    }

    async fn pause(&self) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = self.give_up.cancelled() => {}
        }
    }
}

/// An answer that says nothing about the purchase: the coordinator is down or restarting, a
/// participant faulted, or the call ran out of time. The same key again is the answer.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::Aborted
    )
}
