//! The event store: streams, subscriptions, snapshots and rehydration, through gRPC.

mod support;

use std::time::Duration;

use phoenix_proto::ledger::v1 as pb;
use prost::Message;
use support::{Harness, key, spec};
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
    let mut subscription = h
        .events
        .subscribe(pb::SubscribeRequest {
            tenant_id: h.tenant.clone(),
            after_position: 0,
        })
        .await
        .expect("subscribed")
        .into_inner();
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
    let mut resumed = h
        .events
        .subscribe(pb::SubscribeRequest {
            tenant_id: h.tenant.clone(),
            after_position: caught_up[4].position,
        })
        .await
        .expect("resumed")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), resumed.message())
        .await
        .expect("in time")
        .expect("open")
        .expect("event")
        .event
        .expect("event");
    assert_eq!(first.position, live.position);

    let unknown = h
        .events
        .subscribe(pb::SubscribeRequest {
            tenant_id: h.tenant.clone(),
            after_position: 987_654,
        })
        .await
        .expect_err("not a position of this tenant");
    assert_eq!(unknown.code(), Code::NotFound);
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
