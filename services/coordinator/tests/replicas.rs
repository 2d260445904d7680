//! Two coordinator replicas on ONE database (issue 18, item 1), with the real participants
//! (directory, ledger, narrative): one replica in this process, the other a child process of
//! the `phoenix-coordinator` binary that the test kills with SIGKILL, as a node failure does.
//!
//! Proved here: purchases sent to both replicas at once each complete once (the saga log and
//! the ledger's books agree); the sagas of the killed replica are adopted and completed by the
//! other, each step once; every event of the directory's and the coordinator's own streams is
//! on the bus exactly once although the relays changed hands; the analytics writer recorded
//! each once, in partitions both replicas prepared at start; the scheduled reconciliation ran
//! once per period, never at the same time on both; and nothing logged a warning or an error
//! (unique violations, deadlocks, "already exists", failed background jobs).

/// Every warning and error logged in this process (the replica and the participants in it).
mod captured {
    use std::fmt::Write;
    use std::sync::{Mutex, Once};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Capture;

    struct Line<'a>(&'a mut String);

    impl Visit for Line<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    impl<S> Layer<S> for Capture
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
            let meta = event.metadata();
            if *meta.level() <= Level::WARN {
                // The spans it happened in (the RPC, the job), outermost first.
                let spans: Vec<&str> = context
                    .event_scope(event)
                    .map(|scope| scope.from_root().map(|span| span.name()).collect())
                    .unwrap_or_default();
                let mut line = format!("{} {} [{}]:", meta.level(), meta.target(), spans.join("/"));
                event.record(&mut Line(&mut line));
                LINES.lock().expect("lines").push(line);
            }
        }
    }

    /// Installs the capture as this test binary's subscriber, before anything else does.
    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
                .expect("the capture is the first subscriber of this test binary");
        });
    }

    pub fn lines() -> Vec<String> {
        LINES.lock().expect("lines").clone()
    }
}

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use phoenix_coordinator::purchase::fixture::{Offer, ShopFixture};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_runtime::RunningService;
use phoenix_testkit::{TestDatabase, TestService, spawn};
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

const PRICE: i64 = 30;
const QUANTITY: i64 = 2;
const FUNDS: i64 = 100;
const ON_HAND: i64 = 1_000;
/// The scheduled reconciliation's interval on both replicas.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// The coordinator's background jobs, every second on both replicas (`PHOENIX_JOB_INTERVALS`).
const JOB_INTERVALS: &str = "reconciliation=1s,bus-purge=1s,bus-metrics=1s,analytics-partitions=1s";
/// The coordinator's jobs that work on the shared database, one replica at a time.
const SINGLETONS: [&str; 3] = ["reconciliation", "bus-purge", "analytics-partitions"];

struct Participants {
    directory: TestService,
    ledger: TestService,
    narrative: TestService,
}

impl Participants {
    async fn start() -> Self {
        Self {
            directory: spawn(phoenix_directory::spec()).await,
            ledger: spawn(phoenix_ledger::spec()).await,
            narrative: spawn(phoenix_narrative::spec()).await,
        }
    }
}

/// The replica in a child process, killed by the test.
struct Child {
    process: tokio::process::Child,
    channel: Channel,
    log: std::path::PathBuf,
}

impl Child {
    async fn start(database_url: &str, peers: &Participants) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("phoenix-replica-{}.log", Uuid::new_v4()));
        let file = std::fs::File::create(&log).expect("the child's log file");
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_phoenix-coordinator"))
            .env("DATABASE_URL", database_url)
            .env("PHOENIX_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("PHOENIX_METRICS_ADDR", "127.0.0.1:0")
            .env("PHOENIX_DIRECTORY_URL", peers.directory.url())
            .env("PHOENIX_LEDGER_URL", peers.ledger.url())
            .env("PHOENIX_NARRATIVE_URL", peers.narrative.url())
            .env("PHOENIX_SAGA_LEASE", "1s")
            .env("PHOENIX_JOB_INTERVALS", JOB_INTERVALS)
            .env("PHOENIX_LOG", "warn")
            .env("PHOENIX_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the coordinator binary");
        let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("url")
            .connect_lazy();
        let child = Self {
            process,
            channel,
            log,
        };
        child.wait_serving().await;
        child
    }

    async fn wait_serving(&self) {
        let mut sagas = phoenix_proto::coordinator::v1::saga_service_client::SagaServiceClient::new(
            self.channel.clone(),
        );
        for _ in 0..300 {
            if sagas
                .list_sagas(pb::ListSagasRequest::default())
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the child coordinator did not serve: {}", self.logged());
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn kill(&mut self) {
        self.process.start_kill().expect("SIGKILL");
        self.process.wait().await.expect("the child ends");
    }
}

/// The replica in this process, on the child's database, with the same peers.
async fn in_process(database_url: &str, peers: &Participants) -> (RunningService, Channel) {
    let mut config = phoenix_testkit::test_config();
    config.peers.directory_url = Some(peers.directory.url());
    config.peers.ledger_url = Some(peers.ledger.url());
    config.peers.narrative_url = Some(peers.narrative.url());
    for interval in JOB_INTERVALS.split(',') {
        let interval = phoenix_runtime::jobs::job_interval(interval).expect("an interval");
        config.jobs.set(&interval.job, interval.interval);
    }
    let config = Arc::new(config);
    phoenix_testkit::serve_on(&phoenix_coordinator::spec(), database_url, config).await
}

/// A buyer with a funded wallet: (user id, wallet id).
async fn buyer(shop: &mut ShopFixture) -> (String, String) {
    let user = shop
        .user(&format!("{}@example.com", Uuid::new_v4()))
        .await
        .expect("user");
    let wallet = shop.fund(&user, FUNDS).await.expect("wallet");
    (user, wallet)
}

fn purchase(shop: &ShopFixture, user: &str) -> pb::PurchaseRequest {
    pb::PurchaseRequest {
        tenant_id: shop.tenant_id.clone(),
        user_id: user.to_owned(),
        shop_item_id: "gem".into(),
        quantity: QUANTITY,
        idempotency_key: Uuid::new_v4().to_string(),
    }
}

/// Per saga: (started, completed, adopted, steps succeeded, distinct steps succeeded, undone).
async fn log_counts(pool: &PgPool) -> HashMap<Uuid, (i64, i64, i64, i64, i64, i64)> {
    let rows: Vec<(Uuid, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT saga_id,
                count(*) FILTER (WHERE kind = 'started'),
                count(*) FILTER (WHERE kind = 'completed'),
                count(*) FILTER (WHERE kind = 'adopted'),
                count(*) FILTER (WHERE kind = 'step_succeeded'),
                count(DISTINCT step_index) FILTER (WHERE kind = 'step_succeeded'),
                count(*) FILTER (WHERE kind = 'undo_succeeded')
         FROM saga_log GROUP BY saga_id",
    )
    .fetch_all(pool)
    .await
    .expect("the saga log");
    rows.into_iter()
        .map(|r| (r.0, (r.1, r.2, r.3, r.4, r.5, r.6)))
        .collect()
}

/// The warnings every service of this test logs as it starts, about its configuration (no
/// authentication; the coordinator without a missions address): not about replicas.
fn at_start(line: &str) -> bool {
    line.contains("AUTHENTICATION IS OFF") || line.contains("peers not configured")
}

/// The owners of the relay leases held now.
async fn relay_owners(pool: &PgPool) -> HashSet<Uuid> {
    let owners: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT lease_owner FROM bus_sources WHERE lease_until > now()")
            .fetch_all(pool)
            .await
            .expect("relay leases");
    owners.into_iter().flatten().collect()
}

/// Waits until `done` (given the pool) holds, at most `wait`.
async fn until_async<F, Fut>(what: &str, wait: Duration, pool: &PgPool, mut done: F)
where
    F: FnMut(PgPool) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if done(pool.clone()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The ledger's books of the shop after `sagas` completed purchases by `buyers`, and no other.
async fn assert_books(shop: &mut ShopFixture, buyers: &[(String, String, bool)]) {
    let bought = i64::try_from(buyers.iter().filter(|b| b.2).count()).expect("count");
    let item = shop
        .stock
        .get_inventory_item(ledger::GetInventoryItemRequest {
            tenant_id: shop.tenant_id.clone(),
            sku: "SKU-gem".into(),
        })
        .await
        .expect("item")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (item.on_hand, item.reserved),
        (ON_HAND - QUANTITY * bought, 0),
        "each purchase took its stock once"
    );
    let revenue = shop.revenue_account_id.clone();
    assert_eq!(
        balance(shop, &revenue).await,
        (PRICE * QUANTITY * bought, 0),
        "each purchase paid once"
    );
    for (user, wallet, completed) in buyers {
        let holdings = shop.holdings(user).await.expect("holdings");
        if *completed {
            assert_eq!(holdings, [("SKU-gem".to_owned(), QUANTITY)], "{user}");
            assert_eq!(balance(shop, wallet).await, (FUNDS - PRICE * QUANTITY, 0));
        } else {
            assert!(holdings.is_empty(), "{user}: {holdings:?}");
            assert_eq!(balance(shop, wallet).await, (FUNDS, 0));
        }
    }
}

/// (posted, pending debits) of an account.
async fn balance(shop: &mut ShopFixture, account: &str) -> (i64, i64) {
    let balance = shop.balance(account).await.expect("balance");
    (balance.posted, balance.debits_pending)
}

#[tokio::test]
async fn two_replicas_on_one_database_do_each_unit_of_work_once_and_survive_a_kill() {
    captured::install();
    let peers = Participants::start().await;
    let database = TestDatabase::create().await;
    // The child starts first, so it holds every relay's lease when it is killed.
    let mut child = Child::start(&database.url, &peers).await;
    let pool = database.pool("coordinator").await;
    until_async(
        "the child's relays",
        Duration::from_secs(10),
        &pool,
        |pool| async move {
            scalar(
                &pool,
                "SELECT count(*) FROM bus_sources WHERE lease_until > now()",
            )
            .await
                == 3
        },
    )
    .await;
    let child_relays = relay_owners(&pool).await;
    let (running, channel) = in_process(&database.url, &peers).await;

    let mut shop = ShopFixture::open(
        peers.ledger.channel.clone(),
        peers.directory.channel.clone(),
        "shop",
    )
    .await
    .expect("shop");
    shop.offer(Offer {
        shop_item_id: "gem",
        sku: "SKU-gem",
        on_hand: ON_HAND,
        price: PRICE,
        fragment_ids: Vec::new(),
        experience_ids: Vec::new(),
    })
    .await
    .expect("offer");

    // 1. Purchases sent to both replicas at once: each completes once.
    let both = [
        CoordinatorServiceClient::new(channel.clone()),
        CoordinatorServiceClient::new(child.channel.clone()),
    ];
    let mut buyers = Vec::new();
    let mut calls = Vec::new();
    for n in 0..16 {
        let (user, wallet) = buyer(&mut shop).await;
        let request = purchase(&shop, &user);
        let mut client = both[n % 2].clone();
        calls.push(tokio::spawn(async move { client.purchase(request).await }));
        buyers.push((user, wallet, true));
    }
    for call in calls {
        let answer = call.await.expect("joins").expect("answers").into_inner();
        assert!(answer.success, "{answer:?}");
        assert_eq!(answer.state(), pb::PurchaseState::Completed);
        assert!(!answer.replayed);
    }
    let counts = log_counts(&pool).await;
    assert_eq!(counts.len(), 16);
    for (saga_id, count) in &counts {
        assert_eq!(*count, (1, 1, 0, 7, 7, 0), "saga {saga_id}: driven once");
    }
    assert_eq!(
        scalar(&pool, "SELECT count(DISTINCT owner_id) FROM sagas").await,
        2,
        "both replicas drove sagas"
    );
    assert_books(&mut shop, &buyers).await;

    // 2. The child is killed with purchases in flight: the other replica adopts them.
    let mut calls = Vec::new();
    let mut late = Vec::new();
    for _ in 0..12 {
        let (user, wallet) = buyer(&mut shop).await;
        late.push((user, wallet));
    }
    let started_before = scalar(&pool, "SELECT count(*) FROM sagas").await;
    for (user, _) in &late {
        let request = purchase(&shop, user);
        let mut client = both[1].clone();
        calls.push(tokio::spawn(async move { client.purchase(request).await }));
    }
    until_async(
        "the child's sagas under way",
        Duration::from_secs(10),
        &pool,
        |pool| async move {
            scalar(
                &pool,
                "SELECT count(*) FROM saga_log l JOIN sagas s USING (saga_id)
             WHERE l.kind = 'step_succeeded' AND s.state = 'RUNNING'",
            )
            .await
                >= 3
        },
    )
    .await;
    child.kill().await;
    let child_log = child.logged();
    for call in calls {
        // The child's callers get an error or, for the sagas it finished first, the outcome.
        let _ = call.await.expect("joins");
    }
    until_async(
        "every saga ended",
        Duration::from_secs(30),
        &pool,
        |pool| async move {
            scalar(
                &pool,
                "SELECT count(*) FROM sagas WHERE state <> 'COMPLETED'",
            )
            .await
                == 0
        },
    )
    .await;
    let counts = log_counts(&pool).await;
    let adopted: i64 = counts.values().map(|c| c.2).sum();
    assert!(adopted >= 1, "the survivor adopted the child's sagas");
    for (saga_id, count) in &counts {
        let (started, completed, adoptions, steps, distinct, undone) = *count;
        assert_eq!(
            (started, completed, steps, distinct, undone),
            (1, 1, 7, 7, 0),
            "saga {saga_id}: each step once"
        );
        assert!(adoptions <= 1, "saga {saga_id} adopted {adoptions} times");
    }
    let users: HashSet<String> = sqlx::query_scalar("SELECT user_id FROM sagas")
        .fetch_all(&pool)
        .await
        .expect("users")
        .into_iter()
        .collect();
    let late_sagas = i64::try_from(counts.len()).expect("count") - started_before;
    assert!(late_sagas > 0);
    buyers.extend(late.into_iter().map(|(user, wallet)| {
        let bought = users.contains(&user);
        (user, wallet, bought)
    }));
    assert_books(&mut shop, &buyers).await;

    // 3. Each event of the streams is on the bus once, though the relays changed hands.
    let directory_events = scalar(&peers.directory.pool, "SELECT count(*) FROM events").await;
    let own_events = scalar(&pool, "SELECT count(*) FROM events").await;
    assert_eq!(own_events, i64::try_from(counts.len()).expect("count"));
    until_async(
        "the relays caught up",
        Duration::from_secs(30),
        &pool,
        |pool| {
            let child_relays = child_relays.clone();
            async move {
                let relayed: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT s.source, s.relayed,
                        (SELECT count(*) FROM bus_events e WHERE e.source = s.source)
                 FROM bus_sources s ORDER BY s.source",
                )
                .fetch_all(&pool)
                .await
                .expect("sources");
                let relays = relay_owners(&pool).await;
                // Every source's relay, the survivor's now.
                relays.len() == 3
                    && relays.is_disjoint(&child_relays)
                    && relayed
                        == [
                            ("coordinator".to_owned(), own_events, own_events),
                            ("directory".to_owned(), directory_events, directory_events),
                            ("narrative".to_owned(), 0, 0),
                        ]
            }
        },
    )
    .await;

    // 4. Analytics recorded each event once, in the partitions prepared by both at start.
    let on_bus = scalar(&pool, "SELECT count(*) FROM bus_events").await;
    until_async(
        "analytics caught up",
        Duration::from_secs(20),
        &pool,
        |pool| async move {
            scalar(&pool, "SELECT count(*) FROM analytics_events").await == on_bus
                && scalar(
                    &pool,
                    "SELECT count(*) FROM bus_deliveries WHERE group_name = 'analytics'",
                )
                .await
                    == 0
        },
    )
    .await;
    assert_eq!(
        scalar(
            &pool,
            "SELECT coalesce(sum(events), 0)::bigint FROM analytics_daily_metrics"
        )
        .await,
        on_bus,
        "the rollup counted each event once"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM analytics_partitions").await,
        4
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'analytics_events'::regclass"
        )
        .await,
        4,
        "the current month and three ahead, each once"
    );

    // 5. The scheduled reconciliation ran once per period, never on both at once.
    until_async(
        "three reconciliation runs",
        Duration::from_secs(10),
        &pool,
        |pool| async move { scalar(&pool, "SELECT count(*) FROM reconciliation_runs").await >= 3 },
    )
    .await;
    type Run = (DateTime<Utc>, DateTime<Utc>, Option<String>, i32, i32);
    let runs: Vec<Run> = sqlx::query_as(
        "SELECT started_at, finished_at, error, inconsistencies, stuck
         FROM reconciliation_runs ORDER BY started_at",
    )
    .fetch_all(&pool)
    .await
    .expect("runs");
    for pair in runs.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two runs overlapped: {:?}",
            (pair[0].0, pair[0].1, pair[1].0)
        );
        let gap = (pair[1].0 - pair[0].0).to_std().unwrap_or_default();
        assert!(
            gap >= RECONCILE_EVERY * 8 / 10,
            "two runs in one period: {gap:?} apart"
        );
    }
    assert!(
        runs.iter()
            .all(|r| (r.2.as_deref(), r.3, r.4) == (None, 0, 0)),
        "{runs:?}"
    );

    // 6. No job failed, and no contention surfaced as a warning or an error, in either replica.
    phoenix_testkit::await_job_ticks(&SINGLETONS, 2, Duration::from_secs(20)).await;
    phoenix_testkit::await_job_ticks(&["bus-metrics"], 2, Duration::from_secs(20)).await;
    let problems: Vec<&str> = child_log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .filter(|l| !at_start(l))
        .collect();
    assert!(problems.is_empty(), "the child logged: {problems:#?}");
    let logged: Vec<String> = captured::lines()
        .into_iter()
        .filter(|l| !at_start(l) && !caused_by_the_kill(l))
        .collect();
    assert!(logged.is_empty(), "this process logged: {logged:#?}");
    running.shutdown().await.expect("the coordinator stops");
}

/// What the participants here log because the child replica was killed, not from contention:
/// its calls and streams cancelled (`rpc finished grpc.code=Cancelled`, also for a call it was
/// halfway through sending), and sqlx's notices
/// "there is already / no transaction in progress" on connections whose call was cancelled
/// mid-transaction (a cancelled COMMIT explains the second; where the first comes from is not
/// yet known), and the pool's warning that it closed a connection a call cancelled while its
/// BEGIN was on the wire had left inside a transaction block.
fn caused_by_the_kill(line: &str) -> bool {
    line.contains("grpc.code=Cancelled")
        || (line.contains("sqlx::postgres::notice") && line.contains("transaction in progress"))
        || line.contains("came back inside a transaction block nothing holds")
}

/// Two replicas preparing the analytics partitions at the same moment (both start together,
/// or the writers of both meet an old month at once): every call succeeds and each month is
/// made once.
#[tokio::test]
async fn replicas_racing_for_the_same_partitions_make_each_month_once() {
    use phoenix_coordinator::analytics::{self, Retention, store};
    captured::install();
    let (_database, pool) = phoenix_testkit::migrated_database(&phoenix_coordinator::spec()).await;
    let retention = Retention::default();
    let now = Utc::now();
    let old = analytics::month_of(now)
        .checked_sub_months(chrono::Months::new(5))
        .expect("a month");
    let mut made = Vec::new();
    let months = [old];
    for _ in 0..5 {
        let (one, two, three, four) = tokio::join!(
            analytics::maintain(&pool, retention, now),
            analytics::maintain(&pool, retention, now),
            store::create_partitions(&pool, &months),
            store::create_partitions(&pool, &months),
        );
        made.extend(one.expect("maintained").created);
        made.extend(two.expect("maintained").created);
        made.extend(three.expect("created"));
        made.extend(four.expect("created"));
    }
    let unique: HashSet<_> = made.iter().collect();
    assert_eq!(
        (made.len(), unique.len()),
        (5, 5),
        "each month made once: {made:?}"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'analytics_events'::regclass"
        )
        .await,
        5
    );
}
