//! The event stream through gRPC: seed 001's narrative events in the `phoenix.events.v1`
//! envelope, written with the change, read as catch-up-then-follow from a position.

mod common;

use std::time::Duration;

use common::{Client, apply, id, story};
use futures_util::StreamExt;
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{assert_refused, spawn};
use prost::Message;
use tonic::Code;

#[tokio::test]
async fn visits_decisions_unlocks_and_levels_are_streamed_in_order_from_a_position() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    client
        .record_visit(pb::RecordVisitRequest {
            user_id: user.clone(),
            fragment_id: s.a.clone(),
            time_spent: Some(prost_types::Duration {
                seconds: 4,
                nanos: 0,
            }),
            idempotency_key: "v".into(),
        })
        .await
        .expect("visit");
    let decided = client
        .apply_decision(apply(&user, &s.a, &s.d, "d"))
        .await
        .expect("decision")
        .into_inner();

    let mut stream = client
        .subscribe(pb::SubscribeRequest { after_position: 0 })
        .await
        .expect("subscribed")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("an event")
    };
    let visited = next().await;
    let taken = next().await;
    let level = next().await;
    // Followed: an unlock made after the subscription started.
    client
        .unlock_fragments(pb::UnlockFragmentsRequest {
            user_id: user.clone(),
            fragment_ids: decided.rewards.expect("rewards").unlock_fragment_ids,
            idempotency_key: "u".into(),
        })
        .await
        .expect("unlocked");
    let unlocked = next().await;
    let events: Vec<_> = [&visited, &taken, &level, &unlocked]
        .iter()
        .map(|e| e.event.clone().expect("envelope"))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "phoenix.narrative.v1.FragmentVisited",
            "phoenix.narrative.v1.DecisionTaken",
            "phoenix.narrative.v1.LevelCompleted",
            "phoenix.narrative.v1.ContentUnlocked",
        ]
    );
    let positions: Vec<i64> = [&visited, &taken, &level, &unlocked]
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, [1, 2, 3, 4]);
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.aggregate_type, "narrative_user");
        assert_eq!(event.aggregate_id, user);
        assert_eq!(
            event.aggregate_version,
            i64::try_from(n + 1).expect("small")
        );
    }
    let payload = events[1].payload.as_ref().expect("payload");
    assert_eq!(
        payload.type_url,
        "type.googleapis.com/phoenix.narrative.v1.DecisionTaken"
    );
    let body = pb::DecisionTaken::decode(payload.value.as_slice()).expect("decodes");
    assert_eq!(body.decision.expect("decision").decision_id, s.d);
    assert_eq!(body.rewards.expect("rewards").besitos, 15);
    let level_body = pb::LevelCompleted::decode(
        events[2]
            .payload
            .as_ref()
            .expect("payload")
            .value
            .as_slice(),
    )
    .expect("decodes");
    assert_eq!(level_body.level, 1);

    let mut resumed = client
        .subscribe(pb::SubscribeRequest { after_position: 3 })
        .await
        .expect("resumed")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("event");
    assert_eq!(
        first.position, 4,
        "resumes after the position, nothing twice"
    );
    let status = client
        .subscribe(pb::SubscribeRequest { after_position: 99 })
        .await
        .expect_err("no such position");
    assert_refused(&status, Code::NotFound, "POSITION_NOT_FOUND");
    let status = client
        .subscribe(pb::SubscribeRequest { after_position: -1 })
        .await
        .expect_err("negative");
    assert_refused(&status, Code::InvalidArgument, "INVALID_POSITION");
}

#[tokio::test]
async fn a_refused_change_writes_no_event() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    client
        .apply_decision(apply(&user, &s.a, &s.d, "d1"))
        .await
        .expect("decision");
    let other = id();
    common::upsert_decision(&mut client, common::decision(&other, &s.a, "", 1)).await;
    client
        .apply_decision(apply(&user, &s.a, &other, "d2"))
        .await
        .expect_err("second decision");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT aggregate_version FROM events ORDER BY seq")
            .fetch_all(&service.pool)
            .await
            .expect("events");
    assert_eq!(
        versions,
        [1, 2],
        "DecisionTaken and LevelCompleted of the first only"
    );
    let state: i64 = sqlx::query_scalar("SELECT version FROM user_states WHERE user_id = $1::uuid")
        .bind(&user)
        .fetch_one(&service.pool)
        .await
        .expect("state");
    assert_eq!(state, 2);
}
