//! What only the NATS JetStream backend has: the stream and consumers it lays out (priorities
//! as subjects, one durable consumer per group, priority and partition), and de-duplication on
//! event id past the stream's duplicate window.

mod bus_support;

use std::time::Duration;

use bus_support::*;
use phoenix_proto::events::v1::Priority;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_event_replayed_past_the_duplicate_window_is_delivered_once_per_group() {
    let mut backend = BusBackend::start(Backend::Nats).await;
    backend
        .extra
        .push("--bus-nats-duplicate-window=1s".to_owned());
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let mut stream = subscribe(&mut bus, "once", &["coordinator.*"], 10, 30_000, 0).await;
    let sent = event("coordinator.decision_taken", "w", 1, Priority::Normal, "");

    assert_eq!(publish(&mut bus, vec![sent.clone()]).await.accepted, 1);
    // Within the window the stream itself drops the copy.
    let answer = publish(&mut bus, vec![sent.clone()]).await;
    assert_eq!((answer.accepted, answer.duplicates), (0, 1));
    let delivery = next(&mut stream, WAIT).await.expect("delivered");
    assert_eq!(delivery.event.as_ref().unwrap().id, sent.id);
    assert_eq!(
        ack(&mut bus, "once", vec![delivery.delivery_id])
            .await
            .acknowledged,
        1
    );

    // Past the window the stream takes it again (as after a relay replaying old positions)...
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let answer = publish(&mut bus, vec![sent.clone()]).await;
    assert_eq!((answer.accepted, answer.duplicates), (1, 0));
    let nats = backend.nats.as_ref().unwrap();
    assert_eq!(
        stream_messages(&nats.url).await,
        2,
        "two copies in the stream"
    );
    // ...and the group's processed ids drop it: not delivered again.
    assert!(
        quiet(&mut stream, 1_000).await,
        "processed before: not delivered"
    );
    // A group that had not processed it gets it once.
    let mut late = subscribe(&mut bus, "late", &["coordinator.*"], 10, 30_000, 0).await;
    let first = next(&mut late, WAIT)
        .await
        .expect("the late group's delivery");
    assert_eq!(first.event.as_ref().unwrap().id, sent.id);
    ack(&mut bus, "late", vec![first.delivery_id]).await;
    assert!(quiet(&mut late, 1_000).await, "the second copy is dropped");
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bus_nats_processed WHERE event_id = $1::uuid")
            .bind(&sent.id)
            .fetch_one(&coordinator.pool)
            .await
            .unwrap();
    // once, late and the analytics writer.
    assert_eq!(processed, 3);
}

#[tokio::test]
async fn priorities_are_subjects_of_one_stream_read_by_a_durable_consumer_per_partition() {
    let backend = BusBackend::start(Backend::Nats).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    drop(subscribe(&mut bus, "layout.v1", &["coordinator.*"], 10, 2_000, 0).await);
    publish(
        &mut bus,
        vec![event(
            "coordinator.decision_taken",
            "a",
            1,
            Priority::Critical,
            "",
        )],
    )
    .await;

    let nats = backend.nats.as_ref().unwrap();
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("PHOENIX_BUS").await.expect("the stream");
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.config.subjects, vec!["PHOENIX_BUS.>".to_owned()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    // CRITICAL is priority 4; "a" hashes to partition 2 of 8.
    let message = stream
        .get_last_raw_message_by_subject("PHOENIX_BUS.p4.2.all")
        .await
        .expect("the event on its priority's subject");
    assert!(message.headers.get("Nats-Msg-Id").is_some());

    let consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("layout~v1-p4-2")
        .await
        .expect("the group's consumer of CRITICAL, partition 2");
    let config = &consumer.cached_info().config;
    assert_eq!(
        (
            config.filter_subject.as_str(),
            config.max_ack_pending,
            config.ack_wait
        ),
        ("PHOENIX_BUS.p4.2.>", 1, Duration::from_secs(2))
    );
    let mut names = stream.consumer_names();
    let mut count = 0;
    while let Some(name) = futures_util::StreamExt::next(&mut names).await {
        if name.unwrap().starts_with("layout~v1-") {
            count += 1;
        }
    }
    assert_eq!(count, 4 * 8, "4 priorities x 8 partitions");
}
