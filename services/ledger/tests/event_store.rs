//! The event store: streams, subscriptions, snapshots and rehydration, through gRPC.

mod support;

use std::time::Duration;

use phoenix_proto::ledger::v1 as pb;
use prost::Message;
use support::{Harness, key, reason, spec};
use tonic::Code;

#[tokio::test]
async fn every_change_appends_to_the_account_stream_in_order() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    h.transfer(&wallet, &issuer, 30).await.expect("spent");

    let stream = h
        .events
        .read_stream(pb::ReadStreamRequest {
            tenant_id: h.tenant.clone(),
            aggregate_type: "account".into(),
            aggregate_id: wallet.clone(),
            from_version: 0,
            max_count: 0,
        })
        .await
        .expect("read")
        .into_inner();
    let kinds: Vec<_> = stream
        .events
        .iter()
        .map(|e| {
            let event = e.event.as_ref().expect("event");
            (event.aggregate_version, event.r#type.clone())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "phoenix.ledger.v1.AccountOpened".to_owned()),
            (2, "phoenix.ledger.v1.AccountBalanceChanged".to_owned()),
            (3, "phoenix.ledger.v1.AccountBalanceChanged".to_owned()),
        ]
    );
    assert_eq!(stream.stream_version, 3);
    let last = stream.events[2].event.as_ref().expect("event");
    let payload =
        pb::AccountBalanceChanged::decode(last.payload.as_ref().expect("payload").value.as_slice())
            .expect("decodes");
    let effects: Vec<_> = payload
        .transfers
        .iter()
        .map(|t| (t.debits_posted_delta, t.credits_posted_delta))
        .collect();
    assert_eq!(
        effects,
        [(30, 0)],
        "one transfer, debiting the wallet by 30"
    );
    assert_eq!(last.tenant_id, h.tenant);
    assert!(
        !last.correlation_id.is_empty(),
        "the request id travels with the event"
    );
}

#[tokio::test]
async fn a_stream_version_cannot_be_written_twice() {
    let h = Harness::start().await;
    let tenant: uuid::Uuid = h.tenant.parse().expect("uuid");
    let error = sqlx::query(
        "INSERT INTO events (tenant_id, event_id, aggregate_type, aggregate_id, aggregate_version,
                             event_type, payload, occurred_at)
         VALUES ($1, gen_random_uuid(), 'tenant', $2, 1, 'x', '', now())",
    )
    .bind(tenant)
    .bind(h.tenant.clone())
    .execute(&h.service.pool)
    .await
    .expect_err("version 1 of the tenant stream exists");
    assert!(
        error.to_string().contains("events_stream_version"),
        "{error}"
    );
}

/// The tenant's events after `after`, as Subscribe delivers them.
async fn subscribe(
    h: &mut Harness,
    after: i64,
) -> Result<tonic::Streaming<pb::SubscribeResponse>, tonic::Status> {
    let request = pb::SubscribeRequest {
        tenant_id: h.tenant.clone(),
        after_position: after,
    };
    Ok(h.events.subscribe(request).await?.into_inner())
}

async fn next(subscription: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::StoredEvent {
    tokio::time::timeout(Duration::from_secs(5), subscription.message())
        .await
        .expect("an event within 5 s")
        .expect("stream open")
        .expect("event")
        .event
        .expect("event")
}

#[tokio::test]
async fn a_subscription_catches_up_then_follows_live() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    let mut subscription = subscribe(&mut h, 0).await.expect("subscribed");
    // Tenant created, two accounts opened, the funding transfer on both accounts.
    let mut caught_up = Vec::new();
    for _ in 0..5 {
        caught_up.push(next(&mut subscription).await);
    }
    assert!(caught_up.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(
        caught_up[0].event.as_ref().expect("e").r#type,
        "phoenix.ledger.v1.TenantCreated"
    );

    h.transfer(&wallet, &issuer, 10).await.expect("live");
    let live = next(&mut subscription).await;
    assert!(live.position > caught_up[4].position);
    assert_eq!(
        live.event.as_ref().expect("e").r#type,
        "phoenix.ledger.v1.AccountBalanceChanged"
    );

    // Resuming after a position skips what was already delivered.
    let mut resumed = subscribe(&mut h, caught_up[4].position)
        .await
        .expect("resumed");
    let first = tokio::time::timeout(Duration::from_secs(5), resumed.message())
        .await
        .expect("in time")
        .expect("open")
        .expect("event")
        .event
        .expect("event");
    assert_eq!(first.position, live.position);

    let unknown = subscribe(&mut h, 987_654)
        .await
        .expect_err("not a position of this tenant");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "POSITION_NOT_FOUND");
}

#[tokio::test]
async fn rehydrating_from_snapshots_and_events_gives_the_current_balance() {
    let mut h = Harness::on(
        phoenix_testkit::spawn_with(phoenix_ledger::spec(), |config| {
            config.service_args = vec!["--snapshot-every=10".into()];
        })
        .await,
    )
    .await;
    let (issuer, wallet) = h.funded_wallet("user-1", 0).await;
    // A batch is one event per account, whatever its size; then single transfers carry the
    // stream past several snapshots (every 10 events).
    for _ in 0..2 {
        h.ledger
            .create_transfers(pb::CreateTransfersRequest {
                tenant_id: h.tenant.clone(),
                transfers: vec![spec(&issuer, &wallet, 3); 100],
                mode: pb::BatchMode::Linked.into(),
                idempotency_key: key(),
            })
            .await
            .expect("batch");
    }
    let after_batches = stream_version(&mut h, &wallet).await;
    for _ in 0..45 {
        h.transfer(&wallet, &issuer, 1).await.expect("one more");
    }
    let version = stream_version(&mut h, &wallet).await;
    assert_eq!(version, after_batches + 45, "one event per call");

    let rebuilt = h
        .events
        .rehydrate_account(pb::RehydrateAccountRequest {
            tenant_id: h.tenant.clone(),
            account_id: wallet.clone(),
        })
        .await
        .expect("rehydrated")
        .into_inner();
    assert_eq!(rebuilt.balance, Some(h.balance(&wallet).await));
    assert_eq!(rebuilt.version, version);
    let snapshot = version / 10 * 10;
    assert_eq!(rebuilt.snapshot_version, snapshot);
    assert_eq!(rebuilt.events_replayed, version - snapshot);

    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM snapshots WHERE aggregate_type = 'account' AND aggregate_id = $1",
    )
    .bind(&wallet)
    .fetch_one(&h.service.pool)
    .await
    .expect("count");
    assert_eq!(kept, 3, "only the last three snapshots are kept");
}

/// The version of an account's event stream.
async fn stream_version(h: &mut Harness, account_id: &str) -> i64 {
    h.events
        .read_stream(pb::ReadStreamRequest {
            tenant_id: h.tenant.clone(),
            aggregate_type: "account".into(),
            aggregate_id: account_id.to_owned(),
            from_version: 0,
            max_count: 0,
        })
        .await
        .expect("read")
        .into_inner()
        .stream_version
}

#[tokio::test]
async fn concurrent_writers_are_delivered_once_in_position_order() {
    const WRITERS: usize = 8;
    const TRANSFERS_PER_WRITER: usize = 40;
    const ACCOUNTS: usize = 10;
    let mut h = Harness::start().await;
    let mut accounts = Vec::new();
    for owner in 0..ACCOUNTS {
        accounts.push(
            h.account(&format!("user-{owner}"), "BESITOS", pb::BalanceLimit::None)
                .await,
        );
    }
    let mut subscription = subscribe(&mut h, 0).await.expect("subscribed");

    let writers = (0..WRITERS).map(|writer| {
        let mut ledger = h.ledger.clone();
        let tenant = h.tenant.clone();
        let accounts = accounts.clone();
        tokio::spawn(async move {
            for n in 0..TRANSFERS_PER_WRITER {
                // Writers share accounts, so their transactions wait on each other's locks
                // and commit in an order other than the one they started in.
                let debit = (writer + n) % ACCOUNTS;
                let credit = (writer * 3 + n * 7 + 1) % ACCOUNTS;
                let credit = if credit == debit {
                    (credit + 1) % ACCOUNTS
                } else {
                    credit
                };
                ledger
                    .create_transfer(pb::CreateTransferRequest {
                        tenant_id: tenant.clone(),
                        transfer: Some(spec(&accounts[debit], &accounts[credit], 1)),
                        idempotency_key: key(),
                    })
                    .await
                    .expect("transfer");
            }
        })
    });
    let writers = futures_util::future::join_all(writers);

    // The tenant, its accounts, and one event per account of each transfer.
    let expected = 1 + ACCOUNTS + 2 * WRITERS * TRANSFERS_PER_WRITER;
    let reading = async {
        let mut delivered = Vec::with_capacity(expected);
        while delivered.len() < expected {
            delivered.push(next(&mut subscription).await);
        }
        delivered
    };
    let (finished, delivered) = tokio::join!(writers, reading);
    for writer in finished {
        writer.expect("writer finished");
    }
    let extra = tokio::time::timeout(Duration::from_millis(600), subscription.message()).await;
    assert!(
        extra.is_err(),
        "nothing more than the events written: {extra:?}"
    );

    let positions: Vec<i64> = delivered.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions strictly increase: {positions:?}"
    );
    assert_eq!(
        positions,
        (1..=i64::try_from(expected).expect("fits")).collect::<Vec<_>>(),
        "positions are consecutive for the service"
    );
    let mut ids: Vec<String> = delivered
        .iter()
        .map(|e| e.event.as_ref().expect("event").id.clone())
        .collect();
    let mut stored: Vec<String> = sqlx::query_scalar("SELECT event_id::text FROM events")
        .fetch_all(&h.service.pool)
        .await
        .expect("stored events");
    ids.sort();
    stored.sort();
    assert_eq!(ids, stored, "every stored event is delivered, once");

    let mut versions: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for stored in &delivered {
        let event = stored.event.as_ref().expect("event");
        versions
            .entry(format!("{}/{}", event.aggregate_type, event.aggregate_id))
            .or_default()
            .push(event.aggregate_version);
    }
    for (stream, seen) in &versions {
        let expected: Vec<i64> = (1..=i64::try_from(seen.len()).expect("fits")).collect();
        assert_eq!(seen, &expected, "{stream} is delivered version by version");
    }
    let balance_changes: usize = accounts
        .iter()
        .map(|account| versions[&format!("account/{account}")].len() - 1)
        .sum();
    assert_eq!(balance_changes, 2 * WRITERS * TRANSFERS_PER_WRITER);
}

#[tokio::test]
async fn events_written_before_the_sequencer_keep_their_positions() {
    use futures_util::StreamExt;
    use phoenix_runtime::migrate::Migrator;

    let database = phoenix_testkit::TestDatabase::create().await;
    let pool = database.pool("ledger").await;
    let set = phoenix_ledger::spec().migration_set().expect("migrations");
    let migrator = Migrator::new(&set, &pool);
    migrator.up(Some(5), false).await.expect("up to 0005");

    // Three events delivered by the old store, with a gap where a transaction rolled back.
    let tenant = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO tenants VALUES ($1, 'acme', 'Acme', now())")
        .bind(tenant)
        .execute(&pool)
        .await
        .expect("tenant");
    let event = |version: i64| {
        sqlx::query(
            "INSERT INTO events (tenant_id, event_id, aggregate_type, aggregate_id,
                                 aggregate_version, event_type, payload, occurred_at)
             VALUES ($1, gen_random_uuid(), 'tenant', $1::text, $2, 'x', '', now())",
        )
        .bind(tenant)
        .bind(version)
    };
    event(1).execute(&pool).await.expect("event 1");
    event(2).execute(&pool).await.expect("event 2");
    let mut rolled_back = pool.begin().await.expect("begin");
    event(3).execute(&mut *rolled_back).await.expect("event 3");
    rolled_back.rollback().await.expect("rollback");
    event(3).execute(&pool).await.expect("event 3 again");

    migrator.up(None, false).await.expect("up to head");
    let positions: Vec<(i64, i64)> =
        sqlx::query_as("SELECT position, seq FROM event_positions ORDER BY position")
            .fetch_all(&pool)
            .await
            .expect("positions");
    assert_eq!(
        positions,
        [(1, 1), (2, 2), (4, 4)],
        "a position is its old one"
    );

    let shutdown = tokio_util::sync::CancellationToken::new();
    let ledger = phoenix_ledger::app::Ledger::new(
        pool.clone(),
        phoenix_ledger::config::LedgerSettings::parse(&[]).expect("settings"),
        shutdown.clone(),
    );
    let following = ledger.follow_events(tenant, 0).await.expect("subscribed");
    futures_util::pin_mut!(following);
    let mut delivered = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), following.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        delivered.push((event.position, event.version));
    }
    assert_eq!(delivered, [(1, 1), (2, 2), (4, 3)]);

    // The next event is positioned after them.
    let request = pb::CreateAccountRequest::default();
    let key = phoenix_runtime::idempotency::RequestKey::new(
        tenant.to_string(),
        "k1",
        "LedgerService/CreateAccount",
        &request,
    );
    let mut violations = phoenix_runtime::Violations::new();
    let new = phoenix_ledger::domain::ledger::NewAccount::parse(
        "BESITOS",
        0,
        "user-1",
        "wallet",
        Some(phoenix_ledger::domain::ledger::BalanceLimit::None),
        Default::default(),
        &mut violations,
    );
    violations.finish().expect("valid");
    ledger
        .open_account(&key, tenant, new)
        .await
        .expect("opened");
    let next = tokio::time::timeout(Duration::from_secs(5), following.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("event");
    assert_eq!(
        (next.position, next.event_type.as_str()),
        (5, "phoenix.ledger.v1.AccountOpened")
    );
    shutdown.cancel();

    // Down and up again: the positions come back as they were.
    migrator.down(1, false).await.expect("down 0006");
    migrator.up(None, false).await.expect("up again");
    let again: Vec<i64> = sqlx::query_scalar("SELECT position FROM event_positions ORDER BY 1")
        .fetch_all(&pool)
        .await
        .expect("positions");
    assert_eq!(again, [1, 2, 4, 5]);
    let next_position: i64 = sqlx::query_scalar("SELECT next_position FROM event_sequencer")
        .fetch_one(&pool)
        .await
        .expect("sequencer");
    assert_eq!(next_position, 6);
}
