//! `phoenix import directory`: the sample legacy export, imported twice.

use phoenix_directory::app::Directory;
use phoenix_directory::ops::import;
use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_testkit::spawn;
use tokio_util::sync::CancellationToken;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/legacy_users.ndjson");

/// (line, field, rule) of each quarantined reason.
fn reasons(summary: &import::ImportSummary) -> Vec<(usize, &str, &str)> {
    summary
        .quarantine
        .iter()
        .map(|q| (q.line, q.field.as_str(), q.rule.as_str()))
        .collect()
}

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
    let reasons = reasons(&first);
    assert_eq!(
        reasons,
        [
            (5, "lifetime_value", "INVALID_AMOUNT"),
            (5, "churn_risk_score", "OUT_OF_RANGE"),
            (6, "telegram_id", "REQUIRED"),
            (7, "username", "USERNAME_TAKEN"),
            (8, "", "INVALID_JSON"),
            (9, "vip_trial_end_date", "TRIAL_END_REQUIRED"),
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

#[tokio::test]
async fn a_line_that_is_not_utf8_is_quarantined_alone_and_every_rejection_has_a_reason() {
    let service = spawn(phoenix_directory::spec()).await;
    let directory = Directory::new(service.pool.clone(), CancellationToken::new());
    let dir = std::env::temp_dir();
    let input = dir.join(format!("legacy-{}.ndjson", uuid::Uuid::new_v4()));
    let report = dir.join(format!("quarantine-{}.ndjson", uuid::Uuid::new_v4()));
    let mut text = Vec::new();
    text.extend_from_slice(b"{\"telegram_id\": 200001, \"first_name\": \"Ana\"}\r\n");
    text.extend_from_slice(b"{\"telegram_id\": 200002, \"first_name\": \"\xff\xfe\"}\n");
    text.extend_from_slice(b"{\"telegram_id\": null, \"first_name\": \"Nulo\"}\n");
    text.extend_from_slice(b"{\"telegram_id\": -7, \"first_name\": \"Neg\"}\n");
    text.extend_from_slice(b"{\"telegram_id\": 200005, \"first_name\": \"T\", \"vip_trial_used\": true, \"vip_trial_end_date\": null}\n");
    text.extend_from_slice(
        b"{\"telegram_id\": 200006, \"first_name\": \"B\", \"vip_trial_used\": \"yes\"}\n",
    );
    text.extend_from_slice(b"{\"telegram_id\": 200007, \"first_name\": \"Luis\"}");
    std::fs::write(&input, text).expect("written");
    let summary = import::run(&directory, &input, &report, |_, _| {})
        .await
        .expect("imported");
    let reasons = reasons(&summary);
    assert_eq!(
        reasons,
        [
            (2, "", "INVALID_UTF8"),
            (3, "telegram_id", "REQUIRED"),
            (4, "telegram_id", "INVALID_TELEGRAM_ID"),
            (5, "vip_trial_end_date", "TRIAL_END_REQUIRED"),
            (6, "vip_trial_used", "NOT_A_BOOLEAN"),
        ]
    );
    assert_eq!(
        (summary.lines, summary.imported, summary.rejected),
        (7, 2, 5),
        "{summary:?}"
    );
    let imported: Vec<i64> =
        sqlx::query_scalar("SELECT telegram_id FROM users ORDER BY telegram_id")
            .fetch_all(&service.pool)
            .await
            .expect("users");
    assert_eq!(
        imported,
        [200_001, 200_007],
        "the lines after the bad one too"
    );
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&report);
}
