//! The reconciliation (`phoenix audit coordinator` and the scheduled run) across the real
//! services: clean after purchases that completed and compensated, and reporting what a
//! tampered participant shows (a holding removed behind a completed purchase's back, a
//! released reservation opened again behind a compensated one's).

use std::sync::Arc;
use std::time::Duration;

use phoenix_coordinator::purchase::fixture::{Offer, ShopFixture};
use phoenix_coordinator::reconcile::{self, Participants};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_runtime::{RuntimeConfig, ServiceContext};
use phoenix_testkit::{TestService, spawn, spawn_with, test_config};
use tonic::transport::Channel;
use uuid::Uuid;

const PRICE: i64 = 30;

struct World {
    _directory: TestService,
    ledger: TestService,
    _narrative: TestService,
    coordinator: TestService,
    client: CoordinatorServiceClient<Channel>,
    shop: ShopFixture,
    config: Arc<RuntimeConfig>,
}

async fn start() -> World {
    let directory = spawn(phoenix_directory::spec()).await;
    let ledger = spawn(phoenix_ledger::spec()).await;
    let narrative = spawn(phoenix_narrative::spec()).await;
    let urls = (directory.url(), ledger.url(), narrative.url());
    let mut config = test_config();
    config.peers.directory_url = Some(urls.0.clone());
    config.peers.ledger_url = Some(urls.1.clone());
    config.peers.narrative_url = Some(urls.2.clone());
    let coordinator = spawn_with(phoenix_coordinator::spec(), move |config| {
        config.peers.directory_url = Some(urls.0);
        config.peers.ledger_url = Some(urls.1);
        config.peers.narrative_url = Some(urls.2);
    })
    .await;
    let mut shop = ShopFixture::open(ledger.channel.clone(), directory.channel.clone(), "shop")
        .await
        .expect("shop");
    shop.offer(Offer {
        shop_item_id: "gem",
        sku: "SKU-gem",
        on_hand: 10,
        price: PRICE,
        fragment_ids: vec![],
        experience_ids: vec![],
    })
    .await
    .expect("offer");
    World {
        client: CoordinatorServiceClient::new(coordinator.channel.clone()),
        _directory: directory,
        ledger,
        _narrative: narrative,
        coordinator,
        shop,
        config: Arc::new(config),
    }
}

impl World {
    /// A funded buyer buys `quantity` gems.
    async fn purchase(&mut self, funds: i64, quantity: i64) -> (String, pb::PurchaseResponse) {
        let user = self
            .shop
            .user(&format!("{}@example.com", Uuid::new_v4()))
            .await
            .expect("user");
        self.shop.fund(&user, funds).await.expect("wallet");
        let answer = self
            .client
            .purchase(pb::PurchaseRequest {
                tenant_id: self.shop.tenant_id.clone(),
                user_id: user.clone(),
                shop_item_id: "gem".into(),
                quantity,
                idempotency_key: Uuid::new_v4().to_string(),
            })
            .await
            .expect("the purchase answers")
            .into_inner();
        (user, answer)
    }

    async fn audit(&self) -> phoenix_runtime::AuditReport {
        reconcile::audit(self.coordinator.pool.clone(), self.config.clone())
            .await
            .expect("the audit runs")
    }

    fn participants(&self) -> Participants {
        Participants::connect(&ServiceContext {
            pool: self.coordinator.pool.clone(),
            config: self.config.clone(),
            shutdown: tokio_util::sync::CancellationToken::new(),
        })
        .expect("participants")
    }
}

#[tokio::test]
async fn completed_and_compensated_purchases_reconcile_clean() {
    let mut world = start().await;
    let (_, bought) = world.purchase(100, 2).await;
    let (_, refused) = world.purchase(PRICE - 1, 1).await;
    assert_eq!(bought.state(), pb::PurchaseState::Completed, "{bought:?}");
    assert_eq!(
        refused.state(),
        pb::PurchaseState::Compensated,
        "{refused:?}"
    );

    let report = world.audit().await;

    assert_eq!(report.violations, 0, "{:#?}", report.lines);
    assert!(
        report.lines[0].contains("checked 2 ended saga(s): COMPENSATED=1 COMPLETED=1"),
        "{:#?}",
        report.lines
    );
}

#[tokio::test]
async fn a_holding_removed_behind_a_completed_purchase_is_reported() {
    let mut world = start().await;
    let (user, bought) = world.purchase(100, 2).await;
    assert_eq!(bought.state(), pb::PurchaseState::Completed, "{bought:?}");
    world
        .shop
        .stock
        .remove_holding(ledger::RemoveHoldingRequest {
            tenant_id: world.shop.tenant_id.clone(),
            owner_ref: user.clone(),
            item_code: "SKU-gem".into(),
            quantity: 1,
            idempotency_key: Uuid::new_v4().to_string(),
        })
        .await
        .expect("the holding is taken away by hand");

    let report = world.audit().await;

    assert_eq!(report.violations, 1, "{:#?}", report.lines);
    let finding = report
        .lines
        .iter()
        .find(|line| line.starts_with("INCONSISTENT HOLDING_MISSING"))
        .unwrap_or_else(|| panic!("no HOLDING_MISSING in {:#?}", report.lines));
    assert!(
        finding.contains(&bought.saga_id)
            && finding.contains(&format!("user {user} holds 1 of SKU-gem")),
        "{finding}"
    );
}

#[tokio::test]
async fn a_reservation_left_open_by_a_compensated_purchase_is_reported() {
    let mut world = start().await;
    let (_, refused) = world.purchase(PRICE - 1, 1).await;
    assert_eq!(
        refused.state(),
        pb::PurchaseState::Compensated,
        "{refused:?}"
    );
    // The compensation released it; a bug (or a hand) opens it again.
    let reopened = sqlx::query(
        "UPDATE reservations SET state = 'OPEN', resolved_at = NULL WHERE reference = $1",
    )
    .bind(format!("saga:{}", refused.saga_id))
    .execute(&world.ledger.pool)
    .await
    .expect("tamper");
    assert_eq!(reopened.rows_affected(), 1);

    let report = world.audit().await;

    assert_eq!(report.violations, 1, "{:#?}", report.lines);
    assert!(
        report
            .lines
            .iter()
            .any(|line| line.starts_with("INCONSISTENT RESERVATION_LEFT")
                && line.contains(&refused.saga_id)),
        "{:#?}",
        report.lines
    );
}

#[tokio::test]
async fn a_scheduled_run_records_its_findings_and_sets_the_metric() {
    let mut world = start().await;
    let (user, bought) = world.purchase(100, 1).await;
    assert_eq!(bought.state(), pb::PurchaseState::Completed, "{bought:?}");
    let participants = world.participants();
    reconcile::scheduled_run(
        &world.coordinator.pool,
        &participants,
        Duration::from_secs(3600),
    )
    .await
    .expect("a clean run");
    world
        .shop
        .stock
        .remove_holding(ledger::RemoveHoldingRequest {
            tenant_id: world.shop.tenant_id.clone(),
            owner_ref: user,
            item_code: "SKU-gem".into(),
            quantity: 1,
            idempotency_key: Uuid::new_v4().to_string(),
        })
        .await
        .expect("taken away");

    reconcile::scheduled_run(
        &world.coordinator.pool,
        &participants,
        Duration::from_secs(3600),
    )
    .await
    .expect("an inconsistent run still records");

    let runs: Vec<(i64, i32, Option<String>)> = sqlx::query_as(
        "SELECT sagas_checked, inconsistencies, error FROM reconciliation_runs ORDER BY started_at",
    )
    .fetch_all(&world.coordinator.pool)
    .await
    .expect("runs");
    assert_eq!(runs, [(1, 0, None), (1, 1, None)]);
    let findings: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT saga_id, check_name FROM reconciliation_findings")
            .fetch_all(&world.coordinator.pool)
            .await
            .expect("findings");
    let saga_id: Uuid = bought.saga_id.parse().expect("uuid");
    assert_eq!(findings, [(Some(saga_id), "HOLDING_MISSING".to_owned())]);
    let metrics = phoenix_runtime::metrics::global().render();
    assert!(
        metrics.contains("phoenix_reconciliation_runs_total{result=\"inconsistent\"}"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("phoenix_reconciliation_inconsistencies")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_run_without_its_participants_records_why_it_could_not_finish() {
    let mut world = start().await;
    let (_, bought) = world.purchase(100, 1).await;
    assert_eq!(bought.state(), pb::PurchaseState::Completed, "{bought:?}");
    let mut config = (*world.config).clone();
    // Nothing listens there.
    config.peers.ledger_url = Some("http://127.0.0.1:9".into());
    let participants = Participants::connect(&ServiceContext {
        pool: world.coordinator.pool.clone(),
        config: Arc::new(config),
        shutdown: tokio_util::sync::CancellationToken::new(),
    })
    .expect("participants");

    let error = reconcile::scheduled_run(
        &world.coordinator.pool,
        &participants,
        Duration::from_secs(3600),
    )
    .await
    .expect_err("the ledger cannot be asked");

    assert!(error.to_string().contains("GetTransfer"), "{error:#}");
    let recorded: Option<String> = sqlx::query_scalar("SELECT error FROM reconciliation_runs")
        .fetch_one(&world.coordinator.pool)
        .await
        .expect("the failed run is recorded");
    assert!(recorded.is_some_and(|e| e.contains("GetTransfer")));
}

/// What each replica's schedule runs: a period another replica reconciled cleanly is skipped;
/// one whose run failed is not.
#[tokio::test]
async fn a_scheduled_tick_skips_a_period_another_replica_reconciled() {
    let mut world = start().await;
    let (_, bought) = world.purchase(100, 1).await;
    assert_eq!(bought.state(), pb::PurchaseState::Completed, "{bought:?}");
    let pool = world.coordinator.pool.clone();
    let period = Duration::from_secs(3600);
    let mut config = (*world.config).clone();
    config.peers.ledger_url = Some("http://127.0.0.1:9".into());
    let unreachable = Participants::connect(&ServiceContext {
        pool: pool.clone(),
        config: Arc::new(config),
        shutdown: tokio_util::sync::CancellationToken::new(),
    })
    .expect("participants");

    let failed = reconcile::scheduled_tick(&pool, &unreachable, period).await;
    assert!(failed.is_err(), "{failed:?}");
    let participants = world.participants();
    let ran = reconcile::scheduled_tick(&pool, &participants, period)
        .await
        .expect("a clean run");
    assert!(ran, "a failed run leaves the period to the next tick");
    let again = reconcile::scheduled_tick(&pool, &participants, period)
        .await
        .expect("a skipped tick");
    assert!(!again, "the period was reconciled already");

    let runs: Vec<(i64, bool)> = sqlx::query_as(
        "SELECT sagas_checked, error IS NULL FROM reconciliation_runs ORDER BY started_at",
    )
    .fetch_all(&pool)
    .await
    .expect("runs");
    assert_eq!(runs, [(0, false), (1, true)]);
}
