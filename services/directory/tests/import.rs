//! `phoenix import directory`: the sample legacy export, imported twice.

use phoenix_directory::app::Directory;
use phoenix_directory::ops::import;
use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_testkit::spawn;
use tokio_util::sync::CancellationToken;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/legacy_users.ndjson");

#[tokio::test]
async fn the_sample_imports_once_and_quarantines_each_bad_line_with_its_reason() {
    let service = spawn(phoenix_directory::spec()).await;
    let directory = Directory::new(service.pool.clone(), CancellationToken::new());
    let report = std::env::temp_dir().join(format!("quarantine-{}.ndjson", uuid::Uuid::new_v4()));
    let first = import::run(&directory, SAMPLE.as_ref(), &report, |_, _| {})
        .await
        .expect("imported");
    assert_eq!(
        (first.lines, first.imported, first.unchanged, first.rejected),
        (9, 3, 1, 5),
        "{first:?}"
    );
    let reasons: Vec<_> = first
        .quarantine
        .iter()
        .map(|q| (q.line, q.field.as_str(), q.rule.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (5, "lifetime_value", "INVALID_AMOUNT"),
            (5, "churn_risk_score", "OUT_OF_RANGE"),
            (6, "telegram_id", "REQUIRED"),
            (7, "username", "USERNAME_TAKEN"),
            (8, "", "INVALID_JSON"),
            (9, "vip_trial_end_date", "REQUIRED"),
            (9, "last_engagement_date", "INVALID_TIMESTAMP"),
        ]
    );
    let written = std::fs::read_to_string(&report).expect("report");
    assert_eq!(written.lines().count(), reasons.len());
    assert!(written.contains(r#""line":5,"field":"lifetime_value","rule":"INVALID_AMOUNT""#));

    let mut client = DirectoryServiceClient::new(service.channel.clone());
    let lucia = client
        .lookup_user(pb::LookupUserRequest {
            key: Some(pb::lookup_user_request::Key::TelegramId(100_001)),
        })
        .await
        .expect("imported")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(lucia.display_name, "Lucía García");
    assert_eq!(lucia.lifetime_value_minor, 4990);
    assert_eq!(lucia.churn_risk_score, Some(12.25));
    assert!(lucia.vip_trial_used);
    assert_eq!(lucia.engagement_streak, 6);
    let kept: serde_json::Value =
        sqlx::query_scalar("SELECT legacy_fields FROM users WHERE telegram_id = 100001")
            .fetch_one(&service.pool)
            .await
            .expect("legacy fields");
    assert_eq!(
        kept,
        serde_json::json!({"besitos": 340, "language_code": "es"})
    );

    let snapshot =
        "SELECT count(*), max(updated_at)::text, (SELECT count(*) FROM events) FROM users";
    let before: (i64, Option<String>, i64) = sqlx::query_as(snapshot)
        .fetch_one(&service.pool)
        .await
        .expect("snapshot");
    let second = import::run(&directory, SAMPLE.as_ref(), &report, |_, _| {})
        .await
        .expect("imported again");
    assert_eq!(
        (second.imported, second.unchanged, second.rejected),
        (0, 4, 5)
    );
    let after: (i64, Option<String>, i64) = sqlx::query_as(snapshot)
        .fetch_one(&service.pool)
        .await
        .expect("snapshot");
    assert_eq!(before, after, "the second run changes nothing");
    assert_eq!(before.0, 3);
    let _ = std::fs::remove_file(&report);
}
