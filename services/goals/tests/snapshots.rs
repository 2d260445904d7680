//! Code snapshots through gRPC: recorded for a task, listed newest first, the latest of each
//! file, and a clear error for content over the limit.

mod support;

use phoenix_proto::goals::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons};
use support::{Harness, field};
use tonic::Code;
use uuid::Uuid;

fn snapshot(task: &pb::Task, path: &str, content: &str) -> pb::CreateCodeSnapshotRequest {
    pb::CreateCodeSnapshotRequest {
        task_id: task.id.clone(),
        file_path: path.into(),
        language: "Rust".into(),
        content: content.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn snapshots_are_listed_newest_first_and_latest_per_file() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    let issue = prost_types::Struct {
        fields: [(
            "line".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(3.0)),
            },
        )]
        .into(),
    };
    let mut first = snapshot(&task, "src/main.rs", "fn main() {}");
    first.validation_passed = Some(false);
    first.validation_score = Some(41.5);
    first.validation_feedback = "missing tests".into();
    first.issues_found = vec![issue.clone()];
    let first = h
        .client
        .create_code_snapshot(first)
        .await
        .expect("recorded")
        .into_inner()
        .snapshot
        .expect("snapshot");
    assert_eq!(first.language, "rust");
    assert_eq!(first.user_id, h.user);
    assert_eq!(first.validation_score, Some(41.5));
    assert_eq!(first.issues_found, [issue]);
    assert_eq!(first.content_bytes, 12);
    let lib = h
        .client
        .create_code_snapshot(snapshot(&task, "src/lib.rs", "pub fn f() {}"))
        .await
        .expect("recorded")
        .into_inner()
        .snapshot
        .expect("snapshot");
    let second = h
        .client
        .create_code_snapshot(snapshot(&task, "src/main.rs", "fn main() { f() }"))
        .await
        .expect("recorded")
        .into_inner()
        .snapshot
        .expect("snapshot");

    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .client
            .list_code_snapshots(pb::ListCodeSnapshotsRequest {
                task_id: task.id.clone(),
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        ids.extend(page.snapshots.into_iter().map(|s| s.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(ids, [second.id.clone(), lib.id.clone(), first.id.clone()]);

    let of_main = h
        .client
        .list_code_snapshots(pb::ListCodeSnapshotsRequest {
            task_id: task.id.clone(),
            file_path: "src/main.rs".into(),
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(of_main.snapshots.len(), 2);

    let latest = h
        .client
        .list_latest_code_snapshots(pb::ListLatestCodeSnapshotsRequest {
            task_id: task.id.clone(),
        })
        .await
        .expect("latest")
        .into_inner()
        .snapshots;
    assert_eq!(latest, [lib, second]);
}

#[tokio::test]
async fn oversized_content_and_bad_fields_are_refused_and_nothing_is_written() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    let status = h
        .client
        .create_code_snapshot(snapshot(&task, "src/big.rs", &"x".repeat(256 * 1024 + 1)))
        .await
        .expect_err("too large");
    assert_refused(&status, Code::InvalidArgument, "CONTENT_TOO_LARGE");
    assert_eq!(field(&status), "content");

    let mut bad = snapshot(&task, "/etc/passwd", "x");
    bad.language = "c plus".into();
    bad.validation_score = Some(-1.0);
    let status = h
        .client
        .create_code_snapshot(bad)
        .await
        .expect_err("invalid");
    assert_eq!(
        field_reasons(&status),
        [
            ("file_path".to_owned(), "INVALID_PATH".to_owned()),
            ("language".to_owned(), "INVALID_LANGUAGE".to_owned()),
            ("validation_score".to_owned(), "OUT_OF_RANGE".to_owned()),
        ]
    );
    let status = h
        .client
        .create_code_snapshot(pb::CreateCodeSnapshotRequest {
            task_id: Uuid::new_v4().to_string(),
            ..snapshot(&task, "a.rs", "x")
        })
        .await
        .expect_err("unknown task");
    assert_refused(&status, Code::NotFound, "TASK_NOT_FOUND");
    assert_eq!(h.count("code_snapshots").await, 0);
    let snapshot_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'code_snapshot'")
            .fetch_one(&h.goals.pool)
            .await
            .expect("count");
    assert_eq!(snapshot_events, 0);
}

#[tokio::test]
async fn the_file_filter_of_a_listing_is_checked_and_trimmed_as_paths_are() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    h.client
        .create_code_snapshot(snapshot(&task, " src/main.rs ", "fn main() {}"))
        .await
        .expect("snapshot");
    let list = |file_path: String| pb::ListCodeSnapshotsRequest {
        task_id: task.id.clone(),
        file_path,
        ..Default::default()
    };
    // A NUL reached PostgreSQL and came back as a bare VALUE_NOT_STORABLE without a field.
    let status = h
        .client
        .list_code_snapshots(list("src/\0main.rs".into()))
        .await
        .expect_err("NUL");
    assert_refused(&status, Code::InvalidArgument, "CONTROL_CHARACTER");
    assert_eq!(field(&status), "file_path");
    let status = h
        .client
        .list_code_snapshots(list("a".repeat(1001)))
        .await
        .expect_err("too long");
    assert_refused(&status, Code::InvalidArgument, "TOO_LONG");
    assert_eq!(field(&status), "file_path");
    // The stored path was trimmed; the filter is too, so it finds it.
    let found = h
        .client
        .list_code_snapshots(list(" src/main.rs\n".into()))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(found.snapshots.len(), 1);
    assert_eq!(found.snapshots[0].file_path, "src/main.rs");
}
