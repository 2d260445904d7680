//! Relays through real services: a context's events reach a subscriber over the bus, a relay
//! resumes from its stored position after a restart, and two coordinators on one database
//! relay each event once and deliver it once per group.

mod bus_support;

use std::collections::HashSet;
use std::time::Duration;

use bus_support::*;
use phoenix_testkit::directory_user;

const WAIT: Duration = Duration::from_secs(10);

on_both_backends!(
    a_contexts_events_reach_a_subscriber_and_the_relay_resumes_from_its_position,
    two_coordinators_on_one_database_deliver_each_event_once_per_group,
);

/// The group `users`, following the directory's UserCreated.
async fn follow_users(
    client: &mut Bus,
) -> tonic::Streaming<phoenix_proto::coordinator::v1::SubscribeResponse> {
    subscribe(
        client,
        "users",
        &["phoenix.directory.v1.UserCreated"],
        100,
        30_000,
        0,
    )
    .await
}

async fn relayed(pool: &sqlx::PgPool, source: &str) -> (i64, i64) {
    sqlx::query_as("SELECT position, relayed FROM bus_sources WHERE source = $1")
        .bind(source)
        .fetch_optional(pool)
        .await
        .expect("read the source")
        .unwrap_or((0, 0))
}

async fn wait_relayed(pool: &sqlx::PgPool, source: &str, position: i64) {
    for _ in 0..200 {
        if relayed(pool, source).await.0 >= position {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{source} was not relayed up to {position}: {:?}",
        relayed(pool, source).await
    );
}

async fn a_contexts_events_reach_a_subscriber_and_the_relay_resumes_from_its_position(
    backend: Backend,
) {
    let backend = BusBackend::start(backend).await;
    let directory = phoenix_testkit::spawn(phoenix_directory::spec()).await;
    let coordinator = coordinator_on(&backend, Some(&directory)).await;
    let mut client = bus(&coordinator.channel);
    let mut stream = follow_users(&mut client).await;

    let mut users = HashSet::new();
    for n in 0..3 {
        users.insert(
            directory_user(
                &directory.channel,
                &format!("u{n}@example.com"),
                "Europe/Madrid",
            )
            .await,
        );
    }
    let mut seen = HashSet::new();
    while seen.len() < 3 {
        let delivery = next(&mut stream, WAIT).await.expect("a directory event");
        let event = delivery.event.as_ref().unwrap();
        assert_eq!(
            (event.r#type.as_str(), delivery.source.as_str()),
            ("phoenix.directory.v1.UserCreated", "directory")
        );
        assert!(delivery.source_position > 0);
        assert!(users.contains(&event.aggregate_id), "{event:?}");
        seen.insert(event.aggregate_id.clone());
        ack(&mut client, "users", vec![delivery.delivery_id]).await;
    }
    let head: i64 = sqlx::query_scalar("SELECT next_position - 1 FROM event_sequencer")
        .fetch_one(&directory.pool)
        .await
        .unwrap();
    wait_relayed(&coordinator.pool, "directory", head).await;
    let before = relayed(&coordinator.pool, "directory").await;
    drop(stream);

    // After a restart the relay goes on from its position: nothing is read twice.
    let coordinator = coordinator.restart().await;
    let user = directory_user(&directory.channel, "late@example.com", "Europe/Madrid").await;
    let mut client = bus(&coordinator.channel);
    let mut stream = follow_users(&mut client).await;
    let delivery = next(&mut stream, WAIT).await.expect("the new user's event");
    assert_eq!(delivery.event.as_ref().unwrap().aggregate_id, user);
    let after = relayed(&coordinator.pool, "directory").await;
    assert!(after.0 > before.0);
    assert_eq!(
        after.1 - before.1,
        after.0 - before.0,
        "only the new events were relayed: {before:?} {after:?}"
    );
    assert!(quiet(&mut stream, 600).await);
}

async fn two_coordinators_on_one_database_deliver_each_event_once_per_group(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let directory = phoenix_testkit::spawn(phoenix_directory::spec()).await;
    let first = coordinator_on(&backend, Some(&directory)).await;
    let (second, second_channel) = second_instance_on(&first, Some(&directory), &backend).await;
    let mut one = bus(&first.channel);
    let mut two = bus(&second_channel);
    let patterns = ["phoenix.directory.v1.UserCreated", "coordinator.*"];
    let mut streams = vec![
        (
            subscribe(&mut one, "shared", &patterns, 5, 30_000, 0).await,
            one.clone(),
        ),
        (
            subscribe(&mut two, "shared", &patterns, 5, 30_000, 0).await,
            two.clone(),
        ),
    ];
    let mut other = subscribe(&mut one, "other", &patterns, 100, 30_000, 0).await;

    let mut expected = HashSet::new();
    for n in 0..15 {
        directory_user(&directory.channel, &format!("twice{n}@example.com"), "UTC").await;
        let published = event(
            "coordinator.decision_taken",
            &format!("t{n}"),
            1,
            phoenix_proto::events::v1::Priority::Normal,
            "",
        );
        expected.insert(published.id.clone());
        // Half to each coordinator.
        let target = if n % 2 == 0 { &mut one } else { &mut two };
        publish(target, vec![published]).await;
    }
    let mut got: Vec<String> = Vec::new();
    let mut per_member = [0, 0];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 30 && tokio::time::Instant::now() < deadline {
        for (i, (stream, client)) in streams.iter_mut().enumerate() {
            if let Some(delivery) = next(stream, Duration::from_millis(100)).await {
                got.push(delivery.event.as_ref().unwrap().id.clone());
                per_member[i] += 1;
                ack(client, "shared", vec![delivery.delivery_id]).await;
            }
        }
    }
    for (stream, _) in &mut streams {
        assert!(
            next(stream, Duration::from_millis(500)).await.is_none(),
            "nothing delivered twice"
        );
    }
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        (got.len(), unique.len()),
        (30, 30),
        "each event once in the group: {per_member:?}"
    );
    assert!(expected.iter().all(|id| unique.contains(id)));
    // The directory's events were relayed once, by whichever coordinator holds the lease.
    let directory_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&directory.pool)
        .await
        .unwrap();
    let relayed_rows = match &backend.nats {
        None => sqlx::query_scalar("SELECT count(*) FROM bus_events WHERE source = 'directory'")
            .fetch_one(&first.pool)
            .await
            .unwrap(),
        // The stream holds the directory's events and the 15 published ones, each once.
        Some(nats) => stream_messages(&nats.url).await - 15,
    };
    assert_eq!(relayed_rows, directory_events);
    // The other group gets every one of them too.
    let mut others = HashSet::new();
    while let Some(delivery) = next(&mut other, Duration::from_secs(2)).await {
        others.insert(delivery.event.as_ref().unwrap().id.clone());
        ack(&mut one, "other", vec![delivery.delivery_id]).await;
    }
    assert_eq!(others.len(), 30);
    second
        .shutdown()
        .await
        .expect("the second coordinator stops");
}

/// The layout of every context's stream (phoenix_runtime::stream), for a schema that lacks it.
const STREAM_TABLES: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL,
    event_id uuid NOT NULL UNIQUE, aggregate_type text NOT NULL, aggregate_id text NOT NULL,
    aggregate_version bigint NOT NULL CHECK (aggregate_version > 0), event_type text NOT NULL,
    payload bytea NOT NULL, occurred_at timestamptz NOT NULL, priority smallint NOT NULL DEFAULT 2,
    traceparent text NOT NULL DEFAULT '', tracestate text NOT NULL DEFAULT '',
    correlation_id text NOT NULL DEFAULT '', txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_version UNIQUE (tenant_id, aggregate_type, aggregate_id, aggregate_version));
CREATE INDEX IF NOT EXISTS events_txid ON events (txid);
CREATE TABLE IF NOT EXISTS event_positions (position bigint PRIMARY KEY, seq bigint NOT NULL UNIQUE, tenant_id uuid NOT NULL);
CREATE TABLE IF NOT EXISTS event_sequencer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), next_position bigint NOT NULL,
    from_txid xid8 NOT NULL, open_txids xid8[] NOT NULL DEFAULT '{}');
INSERT INTO event_sequencer VALUES (true, 1, '1', '{}') ON CONFLICT DO NOTHING;
";

#[tokio::test]
async fn the_coordinators_own_events_reach_the_bus() {
    let (database, pool) = phoenix_testkit::migrated_database(&phoenix_coordinator::spec()).await;
    sqlx::raw_sql(STREAM_TABLES)
        .execute(&pool)
        .await
        .expect("the stream tables");
    let (running, channel) = instance_on(&database.url, None).await;
    let mut client = bus(&channel);
    let mut stream = subscribe(&mut client, "own", &["commerce.*"], 10, 30_000, 0).await;

    let payload = phoenix_proto::events::v1::CommercePurchaseCompleted {
        user_id: uuid::Uuid::new_v4().to_string(),
        purchase_id: "saga-1".into(),
        quantity: 2,
        ..Default::default()
    };
    let mut tx = pool.begin().await.unwrap();
    let mut event = phoenix_runtime::stream::NewEvent::new(
        "saga",
        "saga-1",
        1,
        "commerce.purchase_completed",
        &payload,
        chrono::Utc::now(),
    );
    event.priority = phoenix_runtime::stream::Priority::Critical;
    // Left at NORMAL, the stream's default: the bus gives it the catalogue's HIGH.
    let failed = phoenix_runtime::stream::NewEvent::new(
        "saga",
        "saga-2",
        1,
        "commerce.purchase_failed",
        &payload,
        chrono::Utc::now(),
    );
    phoenix_runtime::stream::append(&mut tx, uuid::Uuid::nil(), &[event, failed])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let delivery = next(&mut stream, WAIT).await.expect("the saga's event");
    let event = delivery.event.as_ref().unwrap();
    assert_eq!(
        (delivery.source.as_str(), event.r#type.as_str()),
        ("coordinator", "commerce.purchase_completed")
    );
    assert_eq!(delivery.source_position, 1);
    assert_eq!(
        event.priority,
        phoenix_proto::events::v1::Priority::Critical as i32
    );
    assert_eq!(
        event.payload.as_ref().unwrap().type_url,
        "type.googleapis.com/phoenix.events.v1.CommercePurchaseCompleted",
        "the Any names the catalogue's message"
    );
    let failed = next(&mut stream, WAIT).await.expect("the failed purchase");
    let event = failed.event.as_ref().unwrap();
    assert_eq!(event.r#type, "commerce.purchase_failed");
    assert_eq!(
        event.priority,
        phoenix_proto::events::v1::Priority::High as i32
    );
    running.shutdown().await.expect("stops");
}
