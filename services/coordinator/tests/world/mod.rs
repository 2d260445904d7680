//! What the operations' tests share: every participant (directory, narrative, ledger,
//! missions) on its own database and the coordinator calling them over gRPC, with clients
//! and shortcuts for the stories the tests tell.
#![allow(dead_code)]

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use phoenix_proto::directory::v1 as directory;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_proto::missions::v1 as missions;
use phoenix_proto::missions::v1::catalog_service_client::CatalogServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_testkit::TestService;
use tonic::transport::Channel;

/// One event of the coordinator's `events` table: its encoded payload and its priority
/// (`phoenix.events.v1.Priority`: 1 LOW, 2 NORMAL, 3 HIGH, 4 CRITICAL).
#[derive(Debug)]
pub struct Recorded {
    pub payload: Vec<u8>,
    pub priority: i16,
}

impl Recorded {
    /// The payload as the catalogue message `M` (panics when it is not one, e.g. JSON).
    pub fn decode<M: prost::Message + Default>(&self) -> M {
        assert!(
            !phoenix_coordinator::bus::catalog::is_json(&self.payload),
            "a JSON payload, not a catalogue message"
        );
        M::decode(self.payload.as_slice()).expect("the catalogue message")
    }
}
use uuid::Uuid;

pub const SEASON: &str = "2026-S4";

pub struct World {
    pub directory_service: TestService,
    pub narrative_service: TestService,
    pub ledger_service: TestService,
    pub missions_service: TestService,
    pub coordinator_service: TestService,
    pub tenant: String,
    pub coordinator: CoordinatorServiceClient<Channel>,
    pub directory: DirectoryServiceClient<Channel>,
    pub narrative: NarrativeServiceClient<Channel>,
    pub ledger: LedgerServiceClient<Channel>,
    pub stock: StockServiceClient<Channel>,
    pub missions: MissionsServiceClient<Channel>,
    pub catalog: CatalogServiceClient<Channel>,
}

pub fn id() -> String {
    Uuid::now_v7().to_string()
}

impl World {
    pub async fn start() -> Self {
        let directory_service = phoenix_testkit::spawn(phoenix_directory::spec()).await;
        let narrative_service = phoenix_testkit::spawn(phoenix_narrative::spec()).await;
        let ledger_service = phoenix_testkit::spawn(phoenix_ledger::spec()).await;
        let missions_service = phoenix_testkit::spawn(phoenix_missions::spec()).await;
        let mut ledger = LedgerServiceClient::new(ledger_service.channel.clone());
        let tenant = ledger
            .create_tenant(ledger::CreateTenantRequest {
                slug: "coordinator-tests".into(),
                name: "Coordinator tests".into(),
                idempotency_key: "tenant".into(),
            })
            .await
            .expect("tenant")
            .into_inner()
            .tenant
            .expect("tenant")
            .id;
        let urls = [
            directory_service.url(),
            narrative_service.url(),
            ledger_service.url(),
            missions_service.url(),
        ];
        let coordinator_service =
            phoenix_testkit::spawn_with(phoenix_coordinator::spec(), move |config| {
                config.peers.directory_url = Some(urls[0].clone());
                config.peers.narrative_url = Some(urls[1].clone());
                config.peers.ledger_url = Some(urls[2].clone());
                config.peers.missions_url = Some(urls[3].clone());
            })
            .await;
        Self {
            coordinator: CoordinatorServiceClient::new(coordinator_service.channel.clone()),
            directory: DirectoryServiceClient::new(directory_service.channel.clone()),
            narrative: NarrativeServiceClient::new(narrative_service.channel.clone()),
            ledger,
            stock: StockServiceClient::new(ledger_service.channel.clone()),
            missions: MissionsServiceClient::new(missions_service.channel.clone()),
            catalog: CatalogServiceClient::new(missions_service.channel.clone()),
            directory_service,
            narrative_service,
            ledger_service,
            missions_service,
            coordinator_service,
            tenant,
        }
    }

    /// A new user of the directory.
    pub async fn user(&self) -> String {
        phoenix_testkit::directory_user(
            &self.directory_service.channel,
            &format!("{}@example.com", Uuid::new_v4()),
            "UTC",
        )
        .await
    }

    /// `owner`'s wallet in `asset`, if it has one.
    pub async fn wallet(&mut self, owner: &str, asset: &str) -> Option<ledger::Account> {
        self.find_account(owner, asset, "wallet").await
    }

    /// `owner`'s account in `asset` of `kind`, if it has one.
    pub async fn find_account(
        &mut self,
        owner: &str,
        asset: &str,
        kind: &str,
    ) -> Option<ledger::Account> {
        self.ledger
            .list_accounts(ledger::ListAccountsRequest {
                tenant_id: self.tenant.clone(),
                owner_ref: owner.into(),
            })
            .await
            .expect("accounts")
            .into_inner()
            .accounts
            .into_iter()
            .find(|a| a.asset_code == asset && a.kind == kind)
    }

    /// The posted balance of `owner`'s `asset` wallet (0 when it has none).
    pub async fn balance(&mut self, owner: &str, asset: &str) -> i64 {
        let wallet = self.wallet(owner, asset).await;
        wallet.and_then(|a| a.balance).map_or(0, |b| b.posted)
    }

    /// How many entries `owner`'s `asset` wallet has: how many transfers touched it.
    pub async fn entries(&mut self, owner: &str, asset: &str) -> usize {
        let wallet = self.wallet(owner, asset).await;
        wallet.map_or(0, |a| a.version as usize)
    }

    /// Item code → quantity `owner` holds.
    pub async fn holdings(&mut self, owner: &str) -> Vec<(String, i64)> {
        self.stock
            .list_holdings(ledger::ListHoldingsRequest {
                tenant_id: self.tenant.clone(),
                owner_ref: owner.into(),
            })
            .await
            .expect("holdings")
            .into_inner()
            .holdings
            .into_iter()
            .map(|h| (h.item_code, h.quantity))
            .collect()
    }

    /// Gives `owner` `quantity` of `item`.
    pub async fn give_item(&mut self, owner: &str, item: &str, quantity: i64) {
        self.stock
            .add_holding(ledger::AddHoldingRequest {
                tenant_id: self.tenant.clone(),
                owner_ref: owner.into(),
                item_code: item.into(),
                quantity,
                idempotency_key: id(),
            })
            .await
            .expect("add a holding");
    }

    /// Credits `owner`'s wallet of `asset` with `amount` from a funding account.
    pub async fn fund(&mut self, owner: &str, asset: &str, amount: i64) {
        let source = self.account("funding", asset, "issuer").await;
        let wallet = self.account(owner, asset, "wallet").await;
        self.ledger
            .create_transfer(ledger::CreateTransferRequest {
                tenant_id: self.tenant.clone(),
                transfer: Some(ledger::TransferSpec {
                    debit_account_id: source,
                    credit_account_id: wallet,
                    amount,
                    code: "funding".into(),
                    ..Default::default()
                }),
                idempotency_key: id(),
            })
            .await
            .expect("fund");
    }

    /// The account of `owner` in `asset` of `kind`, opened when missing.
    pub async fn account(&mut self, owner: &str, asset: &str, kind: &str) -> String {
        let found = self.find_account(owner, asset, kind).await;
        if let Some(account) = found {
            return account.id;
        }
        let limit = if kind == "wallet" {
            ledger::BalanceLimit::DebitsMustNotExceedCredits
        } else {
            ledger::BalanceLimit::None
        };
        self.ledger
            .create_account(ledger::CreateAccountRequest {
                tenant_id: self.tenant.clone(),
                asset_code: asset.into(),
                asset_scale: 0,
                owner_ref: owner.into(),
                kind: kind.into(),
                balance_limit: limit.into(),
                idempotency_key: id(),
                ..Default::default()
            })
            .await
            .expect("open an account")
            .into_inner()
            .account
            .expect("account")
            .id
    }

    /// Upserts a fragment.
    pub async fn fragment(&mut self, fragment: narrative::Fragment) {
        self.narrative
            .upsert_fragment(narrative::UpsertFragmentRequest {
                fragment: Some(fragment),
            })
            .await
            .expect("upsert the fragment");
    }

    /// Upserts a decision of `fragment` with `rewards`; answers its id.
    pub async fn decision(&mut self, fragment: &str, rewards: narrative::Rewards) -> String {
        let id = id();
        self.narrative
            .upsert_decision(narrative::UpsertDecisionRequest {
                decision: Some(narrative::Decision {
                    id: id.clone(),
                    fragment_id: fragment.into(),
                    label: "Go on".into(),
                    rewards: Some(rewards),
                    ..Default::default()
                }),
            })
            .await
            .expect("upsert the decision");
        id
    }

    pub async fn progress(&mut self, user: &str) -> narrative::GetUserProgressResponse {
        self.narrative
            .get_user_progress(narrative::GetUserProgressRequest {
                user_id: user.into(),
            })
            .await
            .expect("progress")
            .into_inner()
    }

    pub async fn take(
        &mut self,
        user: &str,
        fragment: &str,
        decision: &str,
        key: &str,
    ) -> Result<pb::TakeDecisionResponse, tonic::Status> {
        self.coordinator
            .take_decision(pb::TakeDecisionRequest {
                user_id: user.into(),
                fragment_id: fragment.into(),
                decision_id: decision.into(),
                idempotency_key: key.into(),
                tenant_id: self.tenant.clone(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The coordinator's events of `event_type`, in the order they were appended.
    pub async fn events(&self, event_type: &str) -> Vec<Recorded> {
        sqlx::query_as("SELECT payload, priority FROM events WHERE event_type = $1 ORDER BY seq")
            .bind(event_type)
            .fetch_all(&self.coordinator_service.pool)
            .await
            .expect("events")
            .into_iter()
            .map(|(payload, priority)| Recorded { payload, priority })
            .collect()
    }

    /// Sagas of `saga_type` in the coordinator's database.
    pub async fn sagas(&self, saga_type: &str) -> Vec<(String, String)> {
        sqlx::query_as("SELECT saga_id::text, state FROM sagas WHERE saga_type = $1")
            .bind(saga_type)
            .fetch_all(&self.coordinator_service.pool)
            .await
            .expect("sagas")
    }

    /// A main-slot mission granting `reward`, the only one offered; a board for `user` with a
    /// run of it that succeeded. Answers the run id.
    pub async fn succeeded_run(&mut self, user: &str, reward: missions::Reward) -> String {
        let catalog = self
            .catalog
            .get_catalog(missions::GetCatalogRequest {})
            .await
            .expect("catalog")
            .into_inner();
        for mut other in catalog.missions {
            if other.slot_key == i32::from(missions::SlotKey::Main) && other.active {
                other.active = false;
                self.catalog
                    .upsert_mission(missions::UpsertMissionRequest {
                        mission: Some(other),
                    })
                    .await
                    .expect("retire a default mission");
            }
        }
        self.catalog
            .upsert_mission(missions::UpsertMissionRequest {
                mission: Some(missions::Mission {
                    slot_key: missions::SlotKey::Main.into(),
                    name: "Coordinated mission".into(),
                    summary: "for tests".into(),
                    requirements: "none".into(),
                    objective: "finish".into(),
                    difficulty: missions::Difficulty::Medium.into(),
                    duration_days: 7,
                    progress_target: 1,
                    progress_unit: missions::ProgressUnit::Tasks.into(),
                    reward: Some(reward),
                    active: true,
                    ..Default::default()
                }),
            })
            .await
            .expect("upsert the mission");
        self.missions
            .create_board(missions::CreateBoardRequest {
                user_id: user.into(),
                season_id: SEASON.into(),
                time_zone: "UTC".into(),
            })
            .await
            .expect("board");
        let run = self
            .missions
            .activate_slot(missions::ActivateSlotRequest {
                user_id: user.into(),
                season_id: SEASON.into(),
                slot_key: missions::SlotKey::Main.into(),
            })
            .await
            .expect("activate")
            .into_inner()
            .slot
            .and_then(|s| s.run)
            .expect("run")
            .run_id;
        self.missions
            .record_progress(missions::RecordProgressRequest {
                user_id: user.into(),
                season_id: SEASON.into(),
                run_id: run.clone(),
                current: 1,
            })
            .await
            .expect("progress");
        run
    }

    /// Grants `user` a VIP membership in the directory.
    pub async fn make_vip(&mut self, user: &str) {
        self.directory
            .grant_vip(directory::GrantVipRequest {
                user_id: user.into(),
                duration: Some(prost_types::Duration {
                    seconds: 30 * 86_400,
                    nanos: 0,
                }),
                idempotency_key: id(),
                ..Default::default()
            })
            .await
            .expect("grant VIP");
    }
}
