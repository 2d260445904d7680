//! The shared event stream against a real PostgreSQL: positions in commit order, gap-free,
//! per-aggregate versions in order, nothing lost or repeated on resume, under concurrent
//! writers and a late committer.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use phoenix_runtime::stream::{self, EventStream, NewEvent, StoredEvent};
use phoenix_testkit::TestDatabase;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The tables of the stream's documented layout, plus one aggregate table to lock.
const SCHEMA: &str = "
CREATE SCHEMA streamtest;
SET search_path TO streamtest;
CREATE TABLE counters (id text PRIMARY KEY, version bigint NOT NULL);
CREATE TABLE events (
    seq               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    event_id          uuid        NOT NULL UNIQUE,
    aggregate_type    text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL CHECK (aggregate_version > 0),
    event_type        text        NOT NULL,
    payload           bytea       NOT NULL,
    occurred_at       timestamptz NOT NULL,
    priority          smallint    NOT NULL DEFAULT 2,
    traceparent       text        NOT NULL DEFAULT '',
    tracestate        text        NOT NULL DEFAULT '',
    correlation_id    text        NOT NULL DEFAULT '',
    txid              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_version
        UNIQUE (tenant_id, aggregate_type, aggregate_id, aggregate_version)
);
CREATE INDEX events_txid ON events (txid);
CREATE TABLE event_positions (
    position  bigint PRIMARY KEY,
    seq       bigint NOT NULL UNIQUE,
    tenant_id uuid   NOT NULL
);
CREATE INDEX event_positions_tenant ON event_positions (tenant_id, position);
CREATE TABLE event_sequencer (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_position bigint  NOT NULL,
    from_txid     xid8    NOT NULL,
    open_txids    xid8[]  NOT NULL DEFAULT '{}'
);
INSERT INTO event_sequencer VALUES (true, 1, '1', '{}');
";

async fn database() -> PgPool {
    let database = TestDatabase::create().await;
    let admin = database.pool("public").await;
    sqlx::raw_sql(SCHEMA).execute(&admin).await.expect("schema");
    database.pool("streamtest").await
}

/// One change of a counter: its row locked, its version bumped, its event appended, in one
/// transaction, as a service writes an aggregate.
async fn bump(pool: &PgPool, tenant: Uuid, counter: &str, hold: Duration) {
    let mut transaction = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO counters VALUES ($1, 0) ON CONFLICT DO NOTHING")
        .bind(counter)
        .execute(&mut *transaction)
        .await
        .expect("counter");
    let version: i64 = sqlx::query_scalar(
        "UPDATE counters SET version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(counter)
    .fetch_one(&mut *transaction)
    .await
    .expect("lock and bump");
    let event = NewEvent::new(
        "counter",
        counter,
        version,
        "test.Bumped",
        &version.to_string(),
        chrono::Utc::now(),
    );
    stream::append(&mut transaction, tenant, &[event])
        .await
        .expect("append");
    tokio::time::sleep(hold).await;
    transaction.commit().await.expect("commit");
}

/// Reads `count` events from the subscription, failing after 30 s.
async fn take(
    subscription: impl futures_util::Stream<Item = Result<StoredEvent, phoenix_runtime::Error>>,
    count: usize,
) -> Vec<StoredEvent> {
    tokio::time::timeout(
        Duration::from_secs(30),
        subscription
            .take(count)
            .map(|event| event.expect("an event"))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("every event arrives")
}

#[tokio::test]
async fn concurrent_writers_are_delivered_in_position_order_with_versions_in_order() {
    let pool = database().await;
    let shutdown = CancellationToken::new();
    let events = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let tenant = Uuid::new_v4();
    let subscription = events.subscribe(Some(tenant), 0);

    const WRITERS: usize = 8;
    const CHANGES: usize = 40;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let pool = pool.clone();
        let events = events.clone();
        writers.push(tokio::spawn(async move {
            for change in 0..CHANGES {
                // Five counters shared by all writers, so their row locks interleave, and some
                // transactions stay open a little so commits come out of insert order.
                let counter = format!("c{}", (writer + change) % 5);
                let hold = Duration::from_millis(((writer * 7 + change * 3) % 4) as u64);
                bump(&pool, tenant, &counter, hold).await;
                events.appended();
            }
        }));
    }
    let delivered = take(subscription, WRITERS * CHANGES).await;
    for writer in writers {
        writer.await.expect("writer");
    }

    let positions: Vec<i64> = delivered.iter().map(|e| e.position).collect();
    let expected: Vec<i64> = (1..=i64::try_from(WRITERS * CHANGES).expect("fits")).collect();
    assert_eq!(
        positions, expected,
        "positions are 1, 2, 3, … in delivery order"
    );
    let mut last_version: HashMap<&str, i64> = HashMap::new();
    for event in &delivered {
        let last = last_version.entry(event.aggregate_id.as_str()).or_insert(0);
        assert_eq!(
            event.version,
            *last + 1,
            "counter {} jumped from version {last} to {}",
            event.aggregate_id,
            event.version
        );
        *last = event.version;
    }
    let total: i64 = last_version.values().sum();
    assert_eq!(total, i64::try_from(WRITERS * CHANGES).expect("fits"));
    shutdown.cancel();
}

#[tokio::test]
async fn a_late_commit_is_delivered_after_what_was_delivered_before_it() {
    let pool = database().await;
    let shutdown = CancellationToken::new();
    let events = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let tenant = Uuid::new_v4();

    // The first writer inserts first and commits last.
    let slow = {
        let pool = pool.clone();
        tokio::spawn(async move { bump(&pool, tenant, "slow", Duration::from_millis(800)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bump(&pool, tenant, "fast", Duration::ZERO).await;
    events.appended();
    let first = take(events.subscribe(Some(tenant), 0), 1).await;
    assert_eq!(first[0].aggregate_id, "fast");
    assert_eq!(first[0].position, 1);

    slow.await.expect("slow writer");
    events.appended();
    let next = take(events.subscribe(Some(tenant), first[0].position), 1).await;
    assert_eq!(next[0].aggregate_id, "slow");
    assert_eq!(
        next[0].position, 2,
        "the late commit is not slipped in before position 1"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_resumed_subscription_gets_the_rest_once_and_other_tenants_are_not_mixed_in() {
    let pool = database().await;
    let shutdown = CancellationToken::new();
    let events = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    for round in 0..6 {
        bump(&pool, mine, "a", Duration::ZERO).await;
        if round % 2 == 0 {
            bump(&pool, theirs, "b", Duration::ZERO).await;
        }
    }
    while events.sequence_now().await.expect("pass") > 0 {}
    let all = take(events.subscribe(Some(mine), 0), 6).await;
    let resumed = take(events.subscribe(Some(mine), all[2].position), 3).await;
    assert_eq!(resumed, all[3..].to_vec());
    assert!(all.iter().all(|e| e.tenant_id == mine));
    assert_eq!(events.head().await.expect("head"), 9);
    assert!(
        stream::is_resumable(&pool, Some(mine), all[0].position)
            .await
            .expect("check")
    );
    let theirs_position = take(events.subscribe(Some(theirs), 0), 1).await[0].position;
    assert!(
        !stream::is_resumable(&pool, Some(mine), theirs_position)
            .await
            .expect("check"),
        "another tenant's position is not one to resume after"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn versions_written_out_of_order_in_one_transaction_are_delivered_in_order() {
    let pool = database().await;
    let shutdown = CancellationToken::new();
    let events = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let tenant = Uuid::new_v4();
    let event = |id: &str, version: i64| {
        NewEvent::new(
            "counter",
            id,
            version,
            "test.Bumped",
            &version.to_string(),
            chrono::Utc::now(),
        )
    };
    let mut transaction = pool.begin().await.expect("begin");
    stream::append(
        &mut transaction,
        tenant,
        &[event("a", 2), event("b", 1), event("a", 1), event("a", 3)],
    )
    .await
    .expect("append");
    transaction.commit().await.expect("commit");
    while events.sequence_now().await.expect("pass") > 0 {}
    let delivered: Vec<(String, i64, i64)> = take(events.subscribe(Some(tenant), 0), 4)
        .await
        .into_iter()
        .map(|e| (e.aggregate_id, e.version, e.position))
        .collect();
    assert_eq!(
        delivered,
        [
            ("a".to_owned(), 1, 1),
            ("b".to_owned(), 1, 2),
            ("a".to_owned(), 2, 3),
            ("a".to_owned(), 3, 4)
        ],
        "each aggregate's versions in order, in the slots its events were inserted in"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn two_sequencers_on_one_database_still_give_each_event_one_consecutive_position() {
    let pool = database().await;
    let shutdown = CancellationToken::new();
    // Two replicas of a service: each runs its own sequencer, and each has a subscriber.
    let first = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let second = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let tenant = Uuid::new_v4();
    let watching_first = first.subscribe(Some(tenant), 0);
    let watching_second = second.subscribe(Some(tenant), 0);
    let mut writers = Vec::new();
    for writer in 0..6 {
        let pool = pool.clone();
        let ring = if writer % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        writers.push(tokio::spawn(async move {
            for change in 0..30 {
                bump(
                    &pool,
                    tenant,
                    &format!("c{}", (writer + change) % 4),
                    Duration::ZERO,
                )
                .await;
                ring.appended();
            }
        }));
    }
    let (seen_first, seen_second) =
        tokio::join!(take(watching_first, 180), take(watching_second, 180));
    for writer in writers {
        writer.await.expect("writer");
    }
    let positions: Vec<i64> = seen_first.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=180).collect::<Vec<i64>>());
    assert_eq!(
        seen_first, seen_second,
        "both replicas deliver the same stream"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_backlog_larger_than_a_pass_is_positioned_in_order_across_passes() {
    let pool = database().await;
    let tenant = Uuid::new_v4();
    // 12,500 events of one aggregate in one statement, more than one pass takes.
    sqlx::query(
        "INSERT INTO events (tenant_id, event_id, aggregate_type, aggregate_id, aggregate_version,
                             event_type, payload, occurred_at)
         SELECT $1, gen_random_uuid(), 'counter', 'big', v, 'test.Bumped', '', now()
         FROM generate_series(1, 12500) AS v",
    )
    .bind(tenant)
    .execute(&pool)
    .await
    .expect("backlog");
    let shutdown = CancellationToken::new();
    let events = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let delivered = take(events.subscribe(Some(tenant), 0), 12_500).await;
    assert!(
        delivered
            .iter()
            .enumerate()
            .all(|(i, e)| e.position == i as i64 + 1 && e.version == i as i64 + 1),
        "positions and versions both run 1..12500"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn rolled_back_writers_leave_no_gap_and_a_long_transaction_holds_nothing_back() {
    let pool = database().await;
    let tenant = Uuid::new_v4();
    // A transaction that stays open all along, with an id, as a long report or refresh would:
    // it keeps the cluster's xmin back, which must not stop or slow the others' positions.
    let mut long = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO counters VALUES ('long', 0)")
        .execute(&mut *long)
        .await
        .expect("an id for the long transaction");

    bump(&pool, tenant, "a", Duration::ZERO).await;
    let mut rolled_back = pool.begin().await.expect("begin");
    let event = NewEvent::new(
        "counter",
        "a",
        2,
        "test.Bumped",
        &2_i64.to_string(),
        chrono::Utc::now(),
    );
    stream::append(&mut rolled_back, tenant, &[event])
        .await
        .expect("append");
    rolled_back.rollback().await.expect("rollback");
    bump(&pool, tenant, "a", Duration::ZERO).await;

    let shutdown = CancellationToken::new();
    let events = EventStream::start("streamtest", pool.clone(), shutdown.clone());
    let delivered = take(events.subscribe(Some(tenant), 0), 2).await;
    let seen: Vec<(i64, i64)> = delivered.iter().map(|e| (e.position, e.version)).collect();
    assert_eq!(
        seen,
        [(1, 1), (2, 2)],
        "the rolled-back seq left no gap in positions"
    );

    // The long transaction now writes an event of its own and commits: it comes next.
    let event = NewEvent::new(
        "counter",
        "long",
        1,
        "test.Bumped",
        &1_i64.to_string(),
        chrono::Utc::now(),
    );
    stream::append(&mut long, tenant, &[event])
        .await
        .expect("append");
    long.commit().await.expect("commit");
    events.appended();
    let next = take(events.subscribe(Some(tenant), 2), 1).await;
    assert_eq!(
        (next[0].aggregate_id.as_str(), next[0].position),
        ("long", 3)
    );
    shutdown.cancel();
}

#[tokio::test]
async fn read_stream_gives_positions_even_before_the_sequencer_ran() {
    let pool = database().await;
    let tenant = Uuid::new_v4();
    bump(&pool, tenant, "a", Duration::ZERO).await;
    bump(&pool, tenant, "a", Duration::ZERO).await;
    let read = stream::read_stream(&pool, tenant, "counter", "a", 1, 10)
        .await
        .expect("read");
    let positions: Vec<i64> = read.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        [1, 2],
        "never 0, which Subscribe would read as the start"
    );
}
