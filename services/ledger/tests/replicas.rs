//! Two replicas of the ledger on one database, their sweepers every 50 ms: every expired
//! pending transfer and stock reservation is released once (one EXPIRE_PENDING transfer, one
//! `expired` event, balances and stock back), every stale import batch fails once, every
//! expired idempotency key goes, every event gets one stream position from the two replicas'
//! sequencers, and no sweep of either replica fails.

mod support;

use std::time::Duration;

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_runtime::metrics::KindLabels;
use phoenix_testkit::{
    assert_events_positioned_once, await_count, await_job_ticks, spawn_replicas,
};
use support::{Harness, key, spec};

const PENDINGS: usize = 12;
const RESERVATIONS: usize = 12;
const BATCHES: usize = 3;
const KEYS: i64 = 500;
const JOBS: [&str; 4] = [
    "expire-pendings",
    "expire-reservations",
    "fail-stale-import-batches",
    "remove-expired-keys",
];

fn expired(kind: &str) -> u64 {
    phoenix_ledger::metrics::get()
        .expired
        .get_or_create(&KindLabels { kind: kind.into() })
        .get()
}

#[tokio::test]
async fn two_replicas_release_each_expired_pending_and_reservation_once() {
    let mut replicas = spawn_replicas(phoenix_ledger::spec(), 2, |config| {
        config.jobs.set("*", Duration::from_millis(50));
        config.service_args = vec!["--import-stale-after=300ms".into()];
    })
    .await;
    let pool = replicas.pool.clone();
    let second = replicas.replicas.pop().expect("two replicas");
    let mut h = Harness::on(replicas.replicas.pop().expect("two replicas")).await;
    let (pendings_before, reservations_before, keys_before) = (
        expired("pending_transfer"),
        expired("reservation"),
        phoenix_ledger::metrics::get().keys_removed.get(),
    );

    // Work for every sweeper, half of it through each replica.
    let (_, wallet) = h.funded_wallet("user-1", 1_000).await;
    let shop = h.account("shop", "BESITOS", pb::BalanceLimit::None).await;
    let channels = [h.service.channel.clone(), second.channel.clone()];
    for n in 0..PENDINGS {
        phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient::new(
            channels[n % 2].clone(),
        )
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(pb::TransferSpec {
                pending: true,
                timeout: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 300_000_000,
                }),
                ..spec(&wallet, &shop, 10)
            }),
            idempotency_key: key(),
        })
        .await
        .expect("a pending transfer");
    }
    let mut stock = StockServiceClient::new(channels[0].clone());
    stock
        .create_inventory_item(pb::CreateInventoryItemRequest {
            tenant_id: h.tenant.clone(),
            sku: "SKU-1".into(),
            name: "Item".into(),
            on_hand: 100,
            idempotency_key: key(),
        })
        .await
        .expect("an item");
    for n in 0..RESERVATIONS {
        StockServiceClient::new(channels[n % 2].clone())
            .reserve_stock(pb::ReserveStockRequest {
                tenant_id: h.tenant.clone(),
                sku: "SKU-1".into(),
                quantity: 2,
                expected_version: None,
                ttl: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
                reference: format!("order-{n}"),
                idempotency_key: key(),
            })
            .await
            .expect("a reservation");
    }
    for _ in 0..BATCHES {
        h.import_batch().await;
    }
    sqlx::query(
        "INSERT INTO request_keys
             (scope, idempotency_key, method, fingerprint, outcome, created_at, expires_at)
         SELECT 'old', 'key-' || n, 'Test', '\\x00', '{}', now() - interval '2 days',
                now() - interval '1 day'
         FROM generate_series(1, $1) n",
    )
    .bind(KEYS)
    .execute(&pool)
    .await
    .expect("expired keys");

    // Until everything is due and swept, then a few more sweeps of both replicas.
    await_count(
        &pool,
        "SELECT (SELECT count(*) FROM open_pendings)
              + (SELECT count(*) FROM reservations WHERE state = 'OPEN')
              + (SELECT count(*) FROM import_batches WHERE status = 'RUNNING')",
        0,
        Duration::from_secs(15),
    )
    .await;
    await_job_ticks(&JOBS, 6, Duration::from_secs(15)).await;

    // Each pending released by exactly one EXPIRE_PENDING transfer; the wallet whole again.
    let releases: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM transfers WHERE kind = 'EXPIRE_PENDING' GROUP BY pending_id",
    )
    .fetch_all(&pool)
    .await
    .expect("releases");
    assert_eq!(releases, vec![1; PENDINGS], "one release per pending");
    let balance = h.balance(&wallet).await;
    assert_eq!((balance.available, balance.debits_pending), (1_000, 0));
    // Each reservation expired once and each stale batch failed once: one event each (the
    // item's stream: created, 12 reservations, 12 expiries).
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events
         WHERE event_type IN ('phoenix.ledger.v1.InventoryChanged',
                              'phoenix.ledger.v1.ImportBatchFinished')
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(
        events,
        vec![
            (
                "phoenix.ledger.v1.ImportBatchFinished".to_owned(),
                BATCHES as i64
            ),
            (
                "phoenix.ledger.v1.InventoryChanged".to_owned(),
                1 + 2 * RESERVATIONS as i64
            ),
        ]
    );
    let item = stock
        .get_inventory_item(pb::GetInventoryItemRequest {
            tenant_id: h.tenant.clone(),
            sku: "SKU-1".into(),
        })
        .await
        .expect("the item")
        .into_inner()
        .item
        .expect("item");
    assert_eq!((item.on_hand, item.reserved, item.available), (100, 0, 100));
    let keys_left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM request_keys WHERE scope = 'old'")
            .fetch_one(&pool)
            .await
            .expect("keys");
    assert_eq!(keys_left, 0);
    assert_eq!(
        (
            expired("pending_transfer") - pendings_before,
            expired("reservation") - reservations_before,
            phoenix_ledger::metrics::get().keys_removed.get() - keys_before,
        ),
        (PENDINGS as u64, RESERVATIONS as u64, KEYS as u64),
        "the sweepers counted each unit once"
    );
    // The sequencers of both replicas took turns: every event has one stream position.
    assert_events_positioned_once(&pool, Duration::from_secs(10)).await;
    assert!(
        phoenix_ledger::store::stock::audit(&pool)
            .await
            .expect("audit")
            .is_empty()
    );
    second.shutdown().await;
    h.service.shutdown().await;
}
