//! The event log: every change appended in its transaction, immutable in the database, and
//! readable as a catch-up-then-follow stream.

mod support;

use futures_util::StreamExt;
use phoenix_proto::goals::v1 as pb;
use phoenix_testkit::assert_refused;
use prost::Message;
use support::{Harness, field};
use tonic::Code;

/// The SQLSTATE of a statement the database refused.
async fn refused_sql(pool: &sqlx::PgPool, sql: &str) -> String {
    let error = sqlx::raw_sql(sql).execute(pool).await.expect_err(sql);
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_an_event() {
    let mut h = Harness::start().await;
    h.goal("g").await;
    assert_eq!(h.count("events").await, 1);
    let pool = &h.goals.pool;
    assert_eq!(
        refused_sql(pool, "UPDATE events SET event_type = 'x'").await,
        "23001"
    );
    assert_eq!(refused_sql(pool, "DELETE FROM events").await, "23001");
    assert_eq!(refused_sql(pool, "TRUNCATE events CASCADE").await, "23001");
    let kept: String = sqlx::query_scalar("SELECT event_type FROM events")
        .fetch_one(pool)
        .await
        .expect("event");
    assert_eq!(kept, "phoenix.goals.v1.GoalCreated");
    // What the export records lives beside the log.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'goals' AND table_name = 'event_exports' ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    assert_eq!(columns, ["position", "parquet_path", "exported_at"]);
}

#[tokio::test]
async fn subscribe_catches_up_then_follows_and_resumes_after_a_position() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    let mut stream = h
        .client
        .subscribe(pb::SubscribeRequest { after_position: 0 })
        .await
        .expect("subscribed")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event")
    };
    let types: Vec<String> = [next().await, next().await, next().await]
        .into_iter()
        .map(|m| m.event.expect("event").r#type)
        .collect();
    assert_eq!(
        types,
        [
            "phoenix.goals.v1.GoalCreated",
            "phoenix.goals.v1.TaskCreated",
            "phoenix.goals.v1.GoalUpdated"
        ]
    );
    // Following: a snapshot recorded now arrives, without its content.
    h.client
        .create_code_snapshot(pb::CreateCodeSnapshotRequest {
            task_id: task.id.clone(),
            file_path: "main.rs".into(),
            language: "rust".into(),
            content: "fn main() {}".into(),
            ..Default::default()
        })
        .await
        .expect("recorded");
    let followed = next().await;
    assert_eq!(followed.position, 4);
    let event = followed.event.expect("event");
    assert_eq!(event.r#type, "phoenix.goals.v1.CodeSnapshotCreated");
    let payload = pb::CodeSnapshotCreated::decode(event.payload.expect("payload").value.as_slice())
        .expect("payload")
        .snapshot
        .expect("snapshot");
    assert_eq!(payload.content, "");
    assert_eq!(payload.content_bytes, 12);

    let resumed = h
        .client
        .subscribe(pb::SubscribeRequest { after_position: 3 })
        .await
        .expect("resumed")
        .into_inner()
        .next()
        .await
        .expect("open")
        .expect("event");
    assert_eq!(resumed.position, 4);

    let status = match h
        .client
        .subscribe(pb::SubscribeRequest { after_position: 99 })
        .await
    {
        Ok(_) => panic!("position 99 is no event's"),
        Err(status) => status,
    };
    assert_refused(&status, Code::NotFound, "POSITION_NOT_FOUND");
    assert_eq!(field(&status), "after_position");
}
