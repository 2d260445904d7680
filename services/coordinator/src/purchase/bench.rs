//! `phoenix bench sagas`: N clients, each buying from its own funded user and stocked shop item
//! through `Purchase` (the saga: its log, lease and events in the coordinator's database), then
//! the floor: the same participant calls made directly from the bench, in the same order with
//! the same lookups (user, shop item, wallet) and a fresh key each, without the coordinator or
//! its saga log. `overhead` is raw / sagas. Prints one line.
//!
//! Every purchase completes (the users hold far more than they spend, the items far more than
//! they sell), so `phoenix audit coordinator` has nothing to find afterwards.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use phoenix_directory_client::{ClientSettings, DirectoryClient};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_runtime::bench::{LoadArgs, Phase, channels, drive};
use phoenix_runtime::client::{ClientBuilder, PeerChannel};
use tonic::transport::Channel;
use uuid::Uuid;

use super::fixture::{Offer, ShopFixture};
use super::participants::{self as calls, Call, Participants};
use super::{Planner, PurchaseOrder};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Where the services the benchmark drives listen.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub coordinator: String,
    pub ledger: String,
    pub narrative: String,
    pub directory: String,
}

/// What the run measured.
#[derive(Debug, Clone, Copy)]
pub struct Results {
    pub clients: usize,
    pub sagas: Phase,
    pub raw: Phase,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        let sagas = self.sagas.per_second();
        let raw = self.raw.per_second();
        let overhead = if sagas > 0.0 { raw / sagas } else { 0.0 };
        format!(
            "sagas-bench clients={} sagas_per_s={:.0} raw_per_s={:.0} overhead={:.2} p50_ms={:.2} p99_ms={:.2}",
            self.clients, sagas, raw, overhead, self.sagas.p50_ms, self.sagas.p99_ms
        )
    }
}

/// One client's own buyer and item.
#[derive(Debug, Clone)]
struct Buyer {
    user_id: String,
    shop_item_id: String,
}

/// Sets the shop up, then runs each phase after its own warmup: the sagas, then the floor.
pub async fn run(endpoints: &Endpoints, args: &BenchArgs) -> anyhow::Result<Results> {
    let load = args.load;
    let clients = load.clients.max(1);
    let (tenant_id, buyers) = set_up(endpoints, clients).await?;
    let tenant_id = Arc::new(tenant_id);
    let buyers = Arc::new(buyers);

    let coordinator = channels(&endpoints.coordinator, clients).await?;
    let purchase = {
        let coordinator = Arc::new(coordinator);
        let (tenant_id, buyers) = (tenant_id.clone(), buyers.clone());
        move |index: usize| {
            let mut client = CoordinatorServiceClient::new(coordinator[index].clone());
            let buyer = buyers[index].clone();
            let tenant_id = tenant_id.to_string();
            async move {
                let answer = client
                    .purchase(pb::PurchaseRequest {
                        tenant_id,
                        user_id: buyer.user_id,
                        shop_item_id: buyer.shop_item_id,
                        quantity: 1,
                        idempotency_key: Uuid::new_v4().to_string(),
                    })
                    .await?
                    .into_inner();
                anyhow::ensure!(answer.success, "purchase did not complete: {answer:?}");
                Ok(1)
            }
        }
    };
    drive(clients, load.warmup, purchase.clone()).await?;
    let sagas = drive(clients, load.duration, purchase).await?;
    sagas.report("Purchase sagas", "sagas");

    let planners = Arc::new(planners(endpoints, clients)?);
    let direct = move |index: usize| {
        let planner = planners[index].clone();
        let buyer = buyers[index].clone();
        let tenant_id = tenant_id.clone();
        async move {
            raw_purchase(&planner, &tenant_id, &buyer).await?;
            Ok(1)
        }
    };
    // Its own warmup: the floor's connections are new.
    drive(clients, load.warmup, direct.clone()).await?;
    let raw = drive(clients, load.duration, direct).await?;
    raw.report("the same calls, no saga", "purchases");
    Ok(Results {
        clients,
        sagas,
        raw,
    })
}

/// A tenant's shop with, per client, a user funded far beyond what the run spends and an item
/// stocked far beyond what it sells, unlocking a fragment of its own.
async fn set_up(endpoints: &Endpoints, clients: usize) -> anyhow::Result<(String, Vec<Buyer>)> {
    let ledger = Channel::from_shared(endpoints.ledger.clone())?
        .connect()
        .await?;
    let directory = Channel::from_shared(endpoints.directory.clone())?
        .connect()
        .await?;
    let mut story = NarrativeServiceClient::new(
        Channel::from_shared(endpoints.narrative.clone())?
            .connect()
            .await?,
    );
    let run = Uuid::new_v4().simple().to_string();
    let mut shop = ShopFixture::open(ledger, directory, &format!("bench-{}", &run[..12])).await?;
    let mut buyers = Vec::with_capacity(clients);
    for index in 0..clients {
        let fragment_id = Uuid::new_v4().to_string();
        story
            .upsert_fragment(narrative::UpsertFragmentRequest {
                fragment: Some(narrative::Fragment {
                    id: fragment_id.clone(),
                    title: format!("Bench fragment {index}"),
                    content: "Unlocked by a purchase.".to_owned(),
                    ..Default::default()
                }),
            })
            .await?;
        let user_id = shop
            .user(&format!("bench-{run}-{index}@example.com"))
            .await?;
        shop.fund(&user_id, 1_000_000_000_000).await?;
        let shop_item_id = format!("bench-{index}");
        shop.offer(Offer {
            shop_item_id: &shop_item_id,
            sku: &format!("BENCH-{index}"),
            on_hand: 1_000_000_000,
            price: 10,
            fragment_ids: vec![fragment_id],
            experience_ids: Vec::new(),
        })
        .await?;
        buyers.push(Buyer {
            user_id,
            shop_item_id,
        });
    }
    Ok((shop.tenant_id, buyers))
}

/// One planner per client, each on its own connections, as the coordinator's are its own.
fn planners(endpoints: &Endpoints, clients: usize) -> anyhow::Result<Vec<Planner>> {
    let peer = |url: &str| -> anyhow::Result<PeerChannel> {
        ClientBuilder::new(url)
            .deadline(Duration::from_secs(5))
            .connect_lazy()
    };
    // One directory client for all, like the coordinator's: its cache is part of the floor.
    let directory = DirectoryClient::new(peer(&endpoints.directory)?, ClientSettings::default());
    (0..clients)
        .map(|_| {
            Ok(Planner {
                participants: Participants::new(
                    peer(&endpoints.ledger)?,
                    peer(&endpoints.narrative)?,
                ),
                directory: directory.clone(),
            })
        })
        .collect()
}

/// A purchase without the saga: the same lookups, then each participant call in the saga's
/// order, each with its own fresh key.
async fn raw_purchase(planner: &Planner, tenant_id: &str, buyer: &Buyer) -> anyhow::Result<()> {
    let order = PurchaseOrder {
        tenant_id: Uuid::parse_str(tenant_id)?,
        user_id: Uuid::parse_str(&buyer.user_id)?,
        shop_item_id: buyer.shop_item_id.clone(),
        quantity: 1,
        idempotency_key: Uuid::new_v4().to_string(),
    };
    let plan = planner.plan(&order).await?;
    let p = &planner.participants;
    let reference = format!("raw:{}", order.idempotency_key);
    let call = |step: &str| Call {
        key: format!("{}:{step}", order.idempotency_key),
        timeout: Some(Duration::from_secs(5)),
    };
    let reservation = calls::reserve_stock(p, &plan, &reference, &call("reserve")).await?;
    let transfer = calls::pending_transfer(p, &plan, &reference, &call("pay")).await?;
    calls::add_holding(p, &plan, &call("hold")).await?;
    calls::unlock_fragments(p, &plan, &call("fragments")).await?;
    for experience_id in &plan.experience_ids {
        let key = format!("experience:{experience_id}");
        calls::unlock_experience(p, &plan, experience_id, &call(&key)).await?;
    }
    calls::post_transfer(p, &plan, &transfer, &call("post")).await?;
    calls::commit_reservation(p, &plan, &reservation, &call("commit")).await?;
    Ok(())
}
