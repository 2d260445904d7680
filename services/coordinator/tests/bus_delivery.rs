//! The bus's delivery guarantees through EventBusService, on a real coordinator and database:
//! redelivery after a missed ack, dead letters and their replay, priorities under backlog with
//! each aggregate's order kept, a group's position across a restart, and refused input.

mod bus_support;

use std::collections::HashMap;
use std::time::Duration;

use bus_support::*;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::events::v1::Priority;
use phoenix_testkit::{assert_refused, field_reasons};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(5);

on_both_backends!(
    a_delivery_not_acknowledged_in_time_is_delivered_again,
    failed_deliveries_become_dead_letters_and_can_be_replayed,
    a_behind_consumer_gets_higher_priorities_first_and_each_aggregates_events_in_order,
    an_aggregates_next_event_waits_while_its_previous_one_is_unacknowledged,
    a_groups_position_survives_a_restart,
    malformed_groups_patterns_and_events_are_refused_with_each_field,
    patterns_match_catalogue_names_of_contexts_messages,
);

async fn a_delivery_not_acknowledged_in_time_is_delivered_again(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let mut stream = subscribe(&mut bus, "redelivery", &["coordinator.*"], 10, 300, 0).await;
    let sent = event("coordinator.decision_taken", "s1", 1, Priority::Normal, "");
    let id = sent.id.clone();
    assert_eq!(publish(&mut bus, vec![sent.clone()]).await.accepted, 1);

    let first = next(&mut stream, WAIT).await.expect("delivered");
    assert_eq!(first.event.as_ref().unwrap().id, id);
    assert_eq!(
        (
            first.attempt,
            first.catalog_type.as_str(),
            first.source.as_str()
        ),
        (1, "coordinator.decision_taken", "publish")
    );
    // Not acknowledged: after the 300 ms ack timeout it comes again, under a new delivery id.
    let again = next(&mut stream, WAIT).await.expect("delivered again");
    assert_eq!(again.event.as_ref().unwrap().id, id);
    assert_eq!(again.attempt, 2);
    assert_ne!(again.delivery_id, first.delivery_id);

    let answer = ack(
        &mut bus,
        "redelivery",
        vec![again.delivery_id.clone(), first.delivery_id.clone()],
    )
    .await;
    assert_eq!((answer.acknowledged, answer.unknown), (1, 1));
    assert!(
        quiet(&mut stream, 800).await,
        "acknowledged: not delivered again"
    );
    // The same event published again is a duplicate, not a new delivery.
    let answer = publish(&mut bus, vec![sent]).await;
    assert_eq!((answer.accepted, answer.duplicates), (0, 1));
    assert!(quiet(&mut stream, 500).await);
}

async fn failed_deliveries_become_dead_letters_and_can_be_replayed(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let mut stream = subscribe(&mut bus, "dead", &["*"], 10, 30_000, 3).await;
    let poison = event(
        "commerce.purchase_completed",
        "p1",
        1,
        Priority::Unspecified,
        "",
    );
    let healthy = event(
        "commerce.purchase_completed",
        "p2",
        1,
        Priority::Unspecified,
        "",
    );
    let poison_id = poison.id.clone();
    publish(&mut bus, vec![poison, healthy]).await;

    let mut poison_attempts = 0;
    let mut healthy_seen = false;
    while poison_attempts < 3 || !healthy_seen {
        let delivery = next(&mut stream, WAIT).await.expect("a delivery");
        // Unspecified priority: the catalogue's CRITICAL for commerce.purchase_completed.
        assert_eq!(
            delivery.event.as_ref().unwrap().priority,
            Priority::Critical as i32
        );
        if delivery.event.as_ref().unwrap().id == poison_id {
            poison_attempts += 1;
            assert_eq!(delivery.attempt, poison_attempts);
            let answer = fail(
                &mut bus,
                "dead",
                delivery.delivery_id,
                &format!("boom {poison_attempts}"),
            )
            .await;
            assert_eq!(answer.failed, 1);
        } else {
            healthy_seen = true;
            ack(&mut bus, "dead", vec![delivery.delivery_id]).await;
        }
    }
    assert!(
        quiet(&mut stream, 800).await,
        "a dead letter is not delivered"
    );

    let dead = dead_letters(&mut bus, "dead").await;
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!(letter.event.as_ref().unwrap().id, poison_id);
    assert_eq!((letter.attempts, letter.last_error.as_str()), (3, "boom 3"));
    assert_eq!(letter.catalog_type, "commerce.purchase_completed");

    let replayed = bus
        .replay_dead_letters(pb::ReplayDeadLettersRequest {
            consumer_group: "dead".into(),
            event_ids: vec![poison_id.clone()],
            all: false,
        })
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(replayed.replayed, 1);
    let delivery = next(&mut stream, WAIT)
        .await
        .expect("delivered after the replay");
    assert_eq!(
        (
            delivery.event.as_ref().unwrap().id.as_str(),
            delivery.attempt
        ),
        (poison_id.as_str(), 1)
    );
    ack(&mut bus, "dead", vec![delivery.delivery_id]).await;
    let dead = dead_letters(&mut bus, "dead").await;
    assert!(dead.is_empty());
}

async fn a_behind_consumer_gets_higher_priorities_first_and_each_aggregates_events_in_order(
    backend: Backend,
) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    // The group exists (and its position is 0) before the backlog builds up.
    drop(subscribe(&mut bus, "behind", &["coordinator.*"], 1, 30_000, 0).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut backlog = Vec::new();
    for version in 1..=6 {
        for aggregate in ["a", "b"] {
            backlog.push(event(
                "coordinator.content_reacted",
                aggregate,
                version,
                Priority::Low,
                "",
            ));
        }
        if version <= 3 {
            backlog.push(event(
                "coordinator.decision_taken",
                "a",
                100 + version,
                Priority::High,
                "",
            ));
            backlog.push(event(
                "coordinator.decision_taken",
                "c",
                100 + version,
                Priority::High,
                "",
            ));
        }
    }
    assert_eq!(publish(&mut bus, backlog).await.accepted, 18);

    // One at a time, acknowledging each, as a slow consumer would.
    let mut stream = subscribe(&mut bus, "behind", &["coordinator.*"], 1, 30_000, 0).await;
    let mut order = Vec::new();
    for _ in 0..18 {
        let delivery = next(&mut stream, WAIT).await.expect("a delivery");
        order.push((delivery.event.as_ref().unwrap().priority, label(&delivery)));
        ack(&mut bus, "behind", vec![delivery.delivery_id]).await;
    }
    let priorities: Vec<i32> = order.iter().map(|o| o.0).collect();
    assert!(
        priorities[..6].iter().all(|p| *p == Priority::High as i32)
            && priorities[6..].iter().all(|p| *p == Priority::Low as i32),
        "HIGH before LOW: {order:?}"
    );
    let mut last: HashMap<(i32, String), i64> = HashMap::new();
    for (priority, label) in &order {
        let (aggregate, version) = label.split_once('-').unwrap();
        let version: i64 = version.parse().unwrap();
        let previous = last
            .insert((*priority, aggregate.to_owned()), version)
            .unwrap_or(0);
        assert!(version > previous, "{aggregate} out of order: {order:?}");
    }
    assert_eq!(last.len(), 4, "a and c at HIGH, a and b at LOW: {order:?}");
}

async fn an_aggregates_next_event_waits_while_its_previous_one_is_unacknowledged(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let mut stream = subscribe(&mut bus, "ordered", &["coordinator.*"], 10, 30_000, 0).await;
    let first = event("coordinator.decision_taken", "a", 1, Priority::Normal, "");
    publish(&mut bus, vec![first]).await;
    let one = next(&mut stream, WAIT).await.expect("a-1");
    assert_eq!(label(&one), "a-1");
    publish(
        &mut bus,
        vec![
            event("coordinator.decision_taken", "a", 2, Priority::Normal, ""),
            event("coordinator.decision_taken", "b", 1, Priority::Normal, ""),
        ],
    )
    .await;
    let other = next(&mut stream, WAIT).await.expect("b-1");
    assert_eq!(label(&other), "b-1", "another aggregate goes on");
    assert!(quiet(&mut stream, 600).await, "a-2 waits for a-1's ack");
    ack(&mut bus, "ordered", vec![one.delivery_id]).await;
    assert_eq!(label(&next(&mut stream, WAIT).await.expect("a-2")), "a-2");
}

async fn a_groups_position_survives_a_restart(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut client = bus(&coordinator.channel);
    let events: Vec<_> = (1..=3)
        .map(|v| event("coordinator.decision_taken", "r", v, Priority::Normal, ""))
        .collect();
    publish(&mut client, events).await;
    let mut stream = subscribe(
        &mut client,
        "restart",
        &["coordinator.decision_taken"],
        1,
        30_000,
        0,
    )
    .await;
    for expected in ["r-1", "r-2"] {
        let delivery = next(&mut stream, WAIT).await.expect("delivered");
        assert_eq!(label(&delivery), expected);
        ack(&mut client, "restart", vec![delivery.delivery_id]).await;
    }
    drop(stream);
    let coordinator = coordinator.restart().await;
    let mut client = bus(&coordinator.channel);
    let mut stream = subscribe(
        &mut client,
        "restart",
        &["coordinator.decision_taken"],
        10,
        30_000,
        0,
    )
    .await;
    let delivery = next(&mut stream, WAIT).await.expect("the rest");
    assert_eq!(label(&delivery), "r-3");
    ack(&mut client, "restart", vec![delivery.delivery_id]).await;
    assert!(
        quiet(&mut stream, 600).await,
        "nothing acknowledged comes back"
    );
}

async fn malformed_groups_patterns_and_events_are_refused_with_each_field(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let status = bus
        .subscribe(pb::SubscribeRequest {
            consumer_group: "Bad Group".into(),
            patterns: vec![
                "com*merce".into(),
                String::new(),
                "x..y".into(),
                "ok.*".into(),
                "ok.*".into(),
            ],
            max_in_flight: -1,
            ack_timeout: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1,
            }),
            max_deliveries: 101,
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_CONSUMER_GROUP");
    let reasons: Vec<(String, String)> = field_reasons(&status);
    let expected = [
        ("consumer_group", "INVALID_CONSUMER_GROUP"),
        ("patterns[0]", "INVALID_PATTERN"),
        ("patterns[1]", "INVALID_PATTERN"),
        ("patterns[2]", "INVALID_PATTERN"),
        ("patterns[4]", "DUPLICATE_PATTERN"),
        ("max_in_flight", "INVALID_PAGE_SIZE"),
        ("ack_timeout", "INVALID_DURATION"),
        ("max_deliveries", "OUT_OF_RANGE"),
    ];
    assert_eq!(
        reasons,
        expected.map(|(f, r)| (f.to_owned(), r.to_owned())).to_vec()
    );
    assert!(
        status
            .message()
            .contains("'*' is only allowed as the last character"),
        "{status:?}"
    );

    let status = bus
        .subscribe(pb::SubscribeRequest {
            consumer_group: String::new(),
            patterns: Vec::new(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    assert_eq!(field_reasons(&status).len(), 2);

    drop(subscribe(&mut bus, "fixed", &["a.*"], 1, 1_000, 0).await);
    let status = bus
        .subscribe(pb::SubscribeRequest {
            consumer_group: "fixed".into(),
            patterns: vec!["b.*".into()],
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "CONSUMER_GROUP_PATTERNS_DIFFER",
    );

    let status = bus
        .list_dead_letters(pb::ListDeadLettersRequest {
            consumer_group: "nobody".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::NotFound, "CONSUMER_GROUP_NOT_FOUND");
    let status = bus
        .replay_dead_letters(pb::ReplayDeadLettersRequest {
            consumer_group: "fixed".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");

    let mut bad = event("coordinator.decision_taken", "x", 1, Priority::Normal, "");
    bad.id = "not-a-uuid".into();
    bad.r#type = "bad type".into();
    bad.payload = None;
    bad.priority = 9;
    let status = bus
        .publish(pb::PublishRequest { events: vec![bad] })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    let fields: Vec<String> = field_reasons(&status).into_iter().map(|f| f.0).collect();
    assert_eq!(
        fields,
        [
            "events[0].id",
            "events[0].type",
            "events[0].priority",
            "events[0].payload"
        ]
    );

    let status = bus
        .ack(pb::AckRequest {
            consumer_group: "fixed".into(),
            delivery_ids: vec!["nope".into()],
            failures: Vec::new(),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    assert_eq!(field_reasons(&status)[0].0, "delivery_ids[0]");
}

#[tokio::test]
async fn old_events_every_group_is_done_with_are_purged() {
    let coordinator = coordinator(None).await;
    let mut bus = bus(&coordinator.channel);
    let mut stream = subscribe(&mut bus, "purge", &["coordinator.*"], 10, 30_000, 0).await;
    let done = event("coordinator.decision_taken", "x", 1, Priority::Normal, "");
    let pending = event("coordinator.decision_taken", "y", 1, Priority::Normal, "");
    publish(&mut bus, vec![done.clone(), pending.clone()]).await;
    for _ in 0..2 {
        let delivery = next(&mut stream, WAIT).await.expect("delivered");
        if delivery.event.as_ref().unwrap().id == done.id {
            ack(&mut bus, "purge", vec![delivery.delivery_id]).await;
        }
    }
    // The analytics writer's group has recorded (and acknowledged) both.
    for _ in 0..100 {
        let outstanding: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bus_deliveries WHERE group_name = 'analytics'",
        )
        .fetch_one(&coordinator.pool)
        .await
        .unwrap();
        let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics_events")
            .fetch_one(&coordinator.pool)
            .await
            .unwrap();
        if outstanding == 0 && recorded == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let retention = Duration::from_secs(7 * 24 * 3600);
    let purge = || phoenix_coordinator::bus::store::purge(&coordinator.pool, retention, 100);
    assert_eq!(purge().await.unwrap(), 0, "recent events are kept");
    sqlx::query("UPDATE bus_events SET received_at = now() - interval '8 days'")
        .execute(&coordinator.pool)
        .await
        .unwrap();
    assert_eq!(purge().await.unwrap(), 1, "the acknowledged one goes");
    let left: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM bus_events")
        .fetch_all(&coordinator.pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![uuid::Uuid::parse_str(&pending.id).unwrap()],
        "the unacknowledged one stays"
    );
}

async fn patterns_match_catalogue_names_of_contexts_messages(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let mut admin = subscribe(&mut bus, "admin-events", &["admin.*"], 10, 30_000, 0).await;
    let mut native = subscribe(
        &mut bus,
        "directory-events",
        &["phoenix.directory.*"],
        10,
        30_000,
        0,
    )
    .await;
    let mut vip = event("x", "u1", 1, Priority::Unspecified, "");
    vip.r#type = "phoenix.directory.v1.VipStatusChanged".into();
    vip.payload = Some(prost_types::Any {
        type_url: "type.googleapis.com/phoenix.directory.v1.VipStatusChanged".into(),
        value: Vec::new(),
    });
    let other = event("coordinator.decision_taken", "u1", 2, Priority::Normal, "");
    publish(&mut bus, vec![vip.clone(), other]).await;
    for stream in [&mut admin, &mut native] {
        let delivery = next(stream, WAIT).await.expect("the VIP change");
        let event = delivery.event.as_ref().unwrap();
        assert_eq!(
            (event.id.as_str(), delivery.catalog_type.as_str()),
            (vip.id.as_str(), "admin.vip_status_changed")
        );
        // Its catalogue default: CRITICAL.
        assert_eq!(event.priority, Priority::Critical as i32);
        assert!(quiet(stream, 400).await, "the decision matches neither");
    }
}
