//! The Firebase import on messy sources (`testdata/firebase/messy/`): NUL characters and bytes,
//! numbers that are the same value written differently, integers beyond 64 bits, empty files,
//! over-size lines and batches a client never finished.

mod support;

use std::path::PathBuf;

use phoenix_ledger::import_client::{self, ImportArgs, ImportSummary};
use phoenix_proto::ledger::v1 as pb;
use phoenix_testkit::TestService;
use uuid::Uuid;

fn messy(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/firebase/messy")
        .join(name)
}

/// A ledger service with one tenant (`support::Harness`).
async fn ledger() -> (TestService, Uuid) {
    let h = support::Harness::start().await;
    let tenant = h.tenant.parse().expect("a tenant id");
    (h.service, tenant)
}

async fn import(
    service: &TestService,
    tenant: Uuid,
    batch_size: u16,
    files: Vec<PathBuf>,
) -> anyhow::Result<ImportSummary> {
    import_client::run(
        service.channel.clone(),
        ImportArgs {
            tenant,
            source_name: "messy".into(),
            batch_size,
            files,
        },
    )
    .await
}

async fn batch_statuses(service: &TestService, tenant: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM import_batches WHERE tenant_id = $1 ORDER BY started_at")
        .bind(tenant)
        .fetch_all(&service.pool)
        .await
        .expect("statuses")
}

fn rejected(summary: &ImportSummary) -> Vec<(i64, String)> {
    summary
        .report
        .rejected
        .iter()
        .map(|r| (r.line_number, r.reason.clone()))
        .collect()
}

/// Imports `file` of the messy samples, which holds two good records and one bad one: the
/// batch completes, matching, with the good ones imported and the bad one quarantined.
async fn two_good_one_quarantined(file: &str) -> ImportSummary {
    let (service, acme) = ledger().await;
    let summary = import(&service, acme, 500, vec![messy(file)])
        .await
        .expect("the import runs");
    assert_eq!(
        summary.status,
        pb::ImportBatchStatus::Completed,
        "{summary:#?}"
    );
    assert!(summary.matches);
    assert_eq!((summary.inserted, summary.quarantined), (2, 1));
    summary
}

#[tokio::test]
async fn a_nul_in_a_document_id_quarantines_that_document_only() {
    let summary = two_good_one_quarantined("nul_id.json").await;
    let reasons = rejected(&summary);
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].1, "INVALID_ID");
    assert!(
        summary.report.rejected[0]
            .message
            .contains("control character"),
        "{}",
        summary.report.rejected[0].message
    );
}

#[tokio::test]
async fn a_raw_nul_byte_in_a_line_quarantines_that_line_only() {
    let summary = two_good_one_quarantined("raw_nul.ndjson").await;
    assert_eq!(rejected(&summary), [(2, "MALFORMED_JSON".to_owned())]);
}

#[tokio::test]
async fn a_lone_surrogate_quarantines_that_line_only() {
    let summary = two_good_one_quarantined("lone_surrogate.ndjson").await;
    assert_eq!(rejected(&summary), [(2, "MALFORMED_JSON".to_owned())]);
    let message = &summary.report.rejected[0].message;
    assert!(message.contains("surrogate"), "{message}");
}

#[tokio::test]
async fn the_same_number_written_twice_is_a_duplicate_whatever_the_batch_size() {
    for batch_size in [1, 3, 1000] {
        let (service, acme) = ledger().await;
        let summary = import(&service, acme, batch_size, vec![messy("numbers.ndjson")])
            .await
            .expect("the import runs");
        assert_eq!(
            (summary.inserted, summary.duplicates, summary.quarantined),
            (6, 1, 0),
            "batch size {batch_size}: {:?}",
            rejected(&summary)
        );
        assert_eq!(summary.status, pb::ImportBatchStatus::Completed);
    }
}

#[tokio::test]
async fn integers_beyond_64_bits_are_stored_exactly() {
    let (service, acme) = ledger().await;
    import(&service, acme, 500, vec![messy("numbers.ndjson")])
        .await
        .expect("the import runs");
    let (big, small, payload): (String, String, String) = sqlx::query_as(
        "SELECT document->'payload'->>'big', document->'payload'->>'small', payload::text
         FROM raw_signals WHERE tenant_id = $1 AND firebase_id = 'sig_big'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("the document");
    assert_eq!(big, "12345678901234567890123");
    assert_eq!(small, "-98765432109876543210.5");
    assert!(payload.contains("12345678901234567890123"), "{payload}");
}

#[tokio::test]
async fn an_empty_file_is_an_error_and_starts_no_batch() {
    let (service, acme) = ledger().await;
    for name in ["empty.ndjson", "blank.ndjson"] {
        let error = import(&service, acme, 500, vec![messy(name)])
            .await
            .expect_err("an empty file");
        assert!(
            error.to_string().contains("holds no record"),
            "{name}: {error:#}"
        );
    }
    assert!(batch_statuses(&service, acme).await.is_empty());
}

#[tokio::test]
async fn an_over_size_line_is_quarantined_and_the_batch_ends() {
    let (service, acme) = ledger().await;
    let dir = std::env::temp_dir().join(format!("phoenix-firebase-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("oversize.ndjson");
    let huge = serde_json::json!({
        "collection": "raw_signals",
        "id": "sig_huge",
        "data": {"source": "x".repeat(5 * 1024 * 1024), "type": "t", "occurredAt": "2024-12-01T10:00:00Z"}
    });
    let good = serde_json::json!({
        "collection": "raw_signals",
        "id": "sig_fine",
        "data": {"source": "web", "type": "t", "occurredAt": "2024-12-01T10:00:00Z"}
    });
    std::fs::write(&path, format!("{good}\n{huge}\n")).unwrap();
    let summary = import(&service, acme, 500, vec![path]).await;
    let _ = std::fs::remove_dir_all(&dir);
    let summary = summary.expect("the import runs");
    assert_eq!(
        (summary.inserted, summary.quarantined),
        (1, 1),
        "{summary:#?}"
    );
    assert_eq!(rejected(&summary), [(2, "RECORD_TOO_LARGE".to_owned())]);
    assert!(summary.report.rejected[0].message.contains("bytes"));
    assert_eq!(summary.status, pb::ImportBatchStatus::Completed);
    assert_eq!(batch_statuses(&service, acme).await, ["COMPLETED"]);
}

#[tokio::test]
async fn a_batch_whose_client_stopped_fails_as_stale_and_a_rerun_completes() {
    use phoenix_ledger::app::Ledger;
    use phoenix_ledger::config::LedgerSettings;
    use phoenix_proto::ledger::v1::firebase_import_service_client::FirebaseImportServiceClient;

    let (service, acme) = ledger().await;
    let mut client = FirebaseImportServiceClient::new(service.channel.clone());
    // A client that started a batch, sent one call and was killed.
    let batch = client
        .start_import_batch(pb::StartImportBatchRequest {
            tenant_id: acme.to_string(),
            source_name: "killed".into(),
            idempotency_key: "start".into(),
        })
        .await
        .expect("started")
        .into_inner()
        .batch
        .expect("a batch");
    let line = serde_json::json!({
        "collection": "raw_signals", "id": "sig_a",
        "data": {"source": "web", "type": "page_view", "occurredAt": "2024-12-01T10:00:00Z"}
    });
    let call = |key: &str| pb::ImportRecordsRequest {
        tenant_id: acme.to_string(),
        batch_id: batch.id.clone(),
        records: vec![pb::ImportRecord {
            source_file: "events.ndjson".into(),
            line_number: 1,
            content: Some(pb::import_record::Content::NdjsonLine(
                line.to_string().into_bytes(),
            )),
            cut_from_bytes: 0,
        }],
        idempotency_key: key.into(),
    };
    client
        .import_records(call("call-0"))
        .await
        .expect("imported");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let ledger = Ledger::new(
        service.pool.clone(),
        LedgerSettings::parse(&[]).expect("default settings"),
        shutdown.clone(),
    );
    let _stop = shutdown.drop_guard();
    // Not stale yet: within the hour.
    assert_eq!(
        ledger.fail_stale_imports(chrono::Utc::now()).await.unwrap(),
        0
    );
    assert_eq!(batch_statuses(&service, acme).await, ["RUNNING"]);
    let later = chrono::Utc::now() + chrono::Duration::minutes(61);
    assert_eq!(ledger.fail_stale_imports(later).await.unwrap(), 1);
    let error: String = sqlx::query_scalar("SELECT error FROM import_batches WHERE tenant_id = $1")
        .bind(acme)
        .fetch_one(&service.pool)
        .await
        .unwrap();
    assert!(
        error.starts_with("STALE: no call for more than 1h"),
        "{error}"
    );
    assert_eq!(batch_statuses(&service, acme).await, ["FAILED"]);

    // The stale batch takes nothing more; a rerun completes, finding the imported document.
    let refused = client
        .import_records(call("call-1"))
        .await
        .expect_err("a finished batch");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let dir = std::env::temp_dir().join(format!("phoenix-firebase-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.ndjson");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let rerun = import(&service, acme, 500, vec![path]).await;
    let _ = std::fs::remove_dir_all(&dir);
    let rerun = rerun.expect("the rerun runs");
    assert_eq!(rerun.status, pb::ImportBatchStatus::Completed);
    assert_eq!((rerun.inserted, rerun.duplicates), (0, 1));
}
