//! The Firebase import through its gRPC API and the `phoenix import` client, against a real
//! server and database. The sample export (`testdata/firebase`, see its README) is the story:
//! 42 records, 29 documents to import, 3 duplicates and 10 malformed records.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use phoenix_ledger::domain::import::checksum;
use phoenix_ledger::import_client::{self, ImportArgs, ImportSummary};
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::CreateTenantRequest;
use phoenix_proto::ledger::v1::firebase_import_service_client::FirebaseImportServiceClient;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_testkit::{TestService, fields, metadata, reason, spawn};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

type Client = FirebaseImportServiceClient<Channel>;
type Time = DateTime<Utc>;

async fn ledger() -> (TestService, Client) {
    let service = spawn(phoenix_ledger::spec()).await;
    let client = FirebaseImportServiceClient::new(service.channel.clone());
    (service, client)
}

/// A tenant, created through LedgerService.
async fn tenant(service: &TestService, slug: &str) -> Uuid {
    LedgerServiceClient::new(service.channel.clone())
        .create_tenant(CreateTenantRequest {
            slug: slug.into(),
            name: "LeadBoost".into(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect("tenant created")
        .into_inner()
        .tenant
        .expect("tenant")
        .id
        .parse()
        .expect("a tenant id")
}

fn sample() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/firebase");
    vec![dir.join("export.json"), dir.join("events.ndjson")]
}

/// Imports the sample with small calls, so duplicates meet across calls too.
async fn import_sample(service: &TestService, tenant: Uuid) -> ImportSummary {
    import_client::run(
        service.channel.clone(),
        ImportArgs {
            tenant,
            source_name: "firebase-sample".into(),
            batch_size: 7,
            files: sample(),
        },
    )
    .await
    .expect("the import runs")
}

async fn rows(service: &TestService, table: &str, tenant: Uuid) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_one(&service.pool)
    .await
    .expect("count")
}

async fn table_counts(service: &TestService, tenant: Uuid) -> [i64; 4] {
    [
        rows(service, "raw_signals", tenant).await,
        rows(service, "campaigns", tenant).await,
        rows(service, "audit_logs", tenant).await,
        rows(service, "import_quarantine", tenant).await,
    ]
}

async fn start(client: &mut Client, tenant: Uuid, key: &str) -> pb::ImportBatch {
    client
        .start_import_batch(pb::StartImportBatchRequest {
            tenant_id: tenant.to_string(),
            source_name: "manual".into(),
            idempotency_key: key.into(),
        })
        .await
        .expect("started")
        .into_inner()
        .batch
        .expect("a batch")
}

fn ndjson(line: i64, text: &str) -> pb::ImportRecord {
    pb::ImportRecord {
        source_file: "manual.ndjson".into(),
        line_number: line,
        content: Some(pb::import_record::Content::NdjsonLine(
            text.as_bytes().to_vec(),
        )),
        cut_from_bytes: 0,
    }
}

fn signal_line(line: i64, id: &str) -> pb::ImportRecord {
    let text = serde_json::json!({
        "collection": "raw_signals",
        "id": id,
        "data": {"source": "web", "type": "page_view", "occurredAt": "2024-12-01T10:00:00Z"}
    });
    ndjson(line, &text.to_string())
}

fn records_request(
    tenant: Uuid,
    batch: &str,
    key: &str,
    records: Vec<pb::ImportRecord>,
) -> pb::ImportRecordsRequest {
    pb::ImportRecordsRequest {
        tenant_id: tenant.to_string(),
        batch_id: batch.into(),
        records,
        idempotency_key: key.into(),
    }
}

fn finish_request(
    tenant: Uuid,
    batch: &str,
    sources: Vec<pb::SourceCollection>,
) -> pb::FinishImportBatchRequest {
    pb::FinishImportBatchRequest {
        tenant_id: tenant.to_string(),
        batch_id: batch.into(),
        sources,
        idempotency_key: format!("finish-{batch}"),
    }
}

fn source(collection: &str, ids: &[&str]) -> pb::SourceCollection {
    pb::SourceCollection {
        collection: collection.into(),
        document_count: ids.len() as i64,
        checksum: checksum(ids.iter().copied()),
    }
}

#[tokio::test]
async fn importing_the_sample_fills_the_tables_and_the_report_matches() {
    let (service, _) = ledger().await;
    let acme = tenant(&service, "acme").await;

    let summary = import_sample(&service, acme).await;

    assert_eq!(summary.status, pb::ImportBatchStatus::Completed);
    assert!(
        summary.matches,
        "{}",
        import_client::render(&summary.report)
    );
    assert_eq!(
        (
            summary.records_read,
            summary.inserted,
            summary.duplicates,
            summary.quarantined
        ),
        (42, 29, 3, 10)
    );
    assert_eq!(table_counts(&service, acme).await, [14, 6, 9, 10]);
    let by_collection: Vec<_> = summary
        .report
        .collections
        .iter()
        .map(|c| {
            (
                c.collection.as_str(),
                c.source_count,
                c.imported_count,
                c.quarantined_count,
                c.accounted_count,
                c.matches,
            )
        })
        .collect();
    assert_eq!(
        by_collection,
        [
            ("audit_logs", 10, 9, 2, 10, true),
            ("campaigns", 7, 6, 1, 7, true),
            ("raw_signals", 17, 14, 5, 17, true),
            ("users", 1, 0, 1, 1, true),
        ]
    );
    // The client's checksum is the one of the ids in the source, and the database agrees.
    let campaigns = &summary.report.collections[1];
    let expected = checksum([
        "cmp_autumn",
        "cmp_bad_budget",
        "cmp_blackfriday",
        "cmp_newyear",
        "cmp_spring",
        "cmp_summer",
        "cmp_winter",
    ]);
    assert_eq!(campaigns.source_checksum, expected);
    assert_eq!(campaigns.accounted_checksum, expected);
    let imported: Vec<String> =
        sqlx::query_scalar("SELECT firebase_id FROM campaigns WHERE tenant_id = $1")
            .bind(acme)
            .fetch_all(&service.pool)
            .await
            .expect("ids");
    assert_eq!(
        campaigns.imported_checksum,
        checksum(imported.iter().map(String::as_str))
    );
}

#[tokio::test]
async fn imported_documents_have_typed_columns_and_keep_the_original() {
    let (service, _) = ledger().await;
    let acme = tenant(&service, "acme").await;
    import_sample(&service, acme).await;

    type CampaignRow = (String, String, i64, String, Option<Time>, Option<Time>);
    let (name, status, budget, currency, starts, ends): CampaignRow = sqlx::query_as(
        "SELECT name, status, budget_minor, currency, starts_at, ends_at FROM campaigns
             WHERE tenant_id = $1 AND firebase_id = 'cmp_blackfriday'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("the campaign");
    assert_eq!(
        (name.as_str(), status.as_str(), budget, currency.as_str()),
        ("Black Friday 2024", "ENDED", 1_500_000, "EUR")
    );
    assert_eq!(starts, DateTime::from_timestamp(1_732_752_000, 0));
    assert_eq!(ends, DateTime::from_timestamp(1_733_011_199, 0));

    let (status, currency, starts): (String, String, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT status, currency, starts_at FROM campaigns WHERE tenant_id = $1 AND firebase_id = 'cmp_spring'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("the draft");
    assert_eq!(
        (status.as_str(), currency.as_str(), starts),
        ("DRAFT", "USD", None)
    );

    let (occurred, user, payload, document): (
        DateTime<Utc>,
        Option<String>,
        serde_json::Value,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT occurred_at, user_id, payload, document FROM raw_signals
             WHERE tenant_id = $1 AND firebase_id = 'sig_0001'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("the signal");
    assert_eq!(
        occurred,
        DateTime::from_timestamp(1_733_050_800, 120_000_000).expect("time")
    );
    assert_eq!(user.as_deref(), Some("u_ana"));
    assert_eq!(
        payload["path"], "/pricing",
        "the export's version, not the edited line"
    );
    assert_eq!(document["occurredAt"]["_seconds"], 1_733_050_800);

    let anonymous: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM raw_signals WHERE tenant_id = $1 AND firebase_id = 'sig_0003'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("anonymous signal");
    assert_eq!(anonymous, None);
    let (target, at): (Option<String>, DateTime<Utc>) = sqlx::query_as(
        "SELECT target, at FROM audit_logs WHERE tenant_id = $1 AND firebase_id = 'log_0004'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("the log");
    assert_eq!(target, None);
    assert_eq!(
        at,
        "2024-12-02T03:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time")
    );
}

#[tokio::test]
async fn malformed_records_are_quarantined_with_their_line_and_reason() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let summary = import_sample(&service, acme).await;

    // Page through the report three at a time.
    let mut rejected = Vec::new();
    let mut token = String::new();
    loop {
        let report = client
            .get_import_report(pb::GetImportReportRequest {
                tenant_id: acme.to_string(),
                batch_id: summary.batch_id.to_string(),
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .expect("report")
            .into_inner()
            .report
            .expect("a report");
        assert_eq!(report.rejected_count, 10);
        assert!(report.rejected.len() <= 3);
        rejected.extend(report.rejected);
        if report.next_page_token.is_empty() {
            break;
        }
        token = report.next_page_token;
    }
    let seen: Vec<_> = rejected
        .iter()
        .map(|r| {
            let file = r
                .source_file
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            (
                file,
                r.line_number,
                r.reason.clone(),
                r.collection.clone(),
                r.document_id.clone(),
            )
        })
        .collect();
    let expected = [
        ("export.json", 11, "WRONG_TYPE", "raw_signals", "sig_0009"),
        (
            "export.json",
            12,
            "MISSING_FIELD",
            "raw_signals",
            "sig_0010",
        ),
        (
            "export.json",
            19,
            "WRONG_TYPE",
            "campaigns",
            "cmp_bad_budget",
        ),
        ("export.json", 28, "INVALID_VALUE", "audit_logs", "log_0005"),
        ("export.json", 30, "MISSING_ID", "audit_logs", ""),
        ("events.ndjson", 7, "MALFORMED_JSON", "", ""),
        ("events.ndjson", 8, "MISSING_ID", "raw_signals", ""),
        ("events.ndjson", 9, "UNKNOWN_COLLECTION", "users", "u_ana"),
        ("events.ndjson", 10, "WRONG_TYPE", "raw_signals", "sig_0017"),
        (
            "events.ndjson",
            11,
            "CONFLICTING_DUPLICATE",
            "raw_signals",
            "sig_0001",
        ),
    ]
    .map(|(f, l, r, c, i)| (f.to_owned(), l, r.to_owned(), c.to_owned(), i.to_owned()));
    assert_eq!(seen, expected);
    let messages: Vec<&str> = rejected.iter().map(|r| r.message.as_str()).collect();
    assert!(messages[0].contains("\"occurredAt\""), "{}", messages[0]);
    assert!(messages[2].contains("\"budgetMinor\""), "{}", messages[2]);
    assert!(messages[9].contains("already imported"), "{}", messages[9]);
    assert!(
        rejected[5]
            .raw_excerpt
            .starts_with("{\"collection\": \"raw_signals\", \"id\": \"sig_0016\"")
    );

    // The quarantine keeps the whole text as it arrived.
    let raw: String = sqlx::query_scalar(
        "SELECT raw_text FROM import_quarantine WHERE tenant_id = $1 AND reason = 'MALFORMED_JSON'",
    )
    .bind(acme)
    .fetch_one(&service.pool)
    .await
    .expect("the bad line");
    assert_eq!(
        raw,
        r#"{"collection": "raw_signals", "id": "sig_0016", "data": {"source": "web", "type": "click""#
    );
}

#[tokio::test]
async fn importing_again_inserts_nothing_and_reports_duplicates() {
    let (service, _) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let first = import_sample(&service, acme).await;

    let second = import_sample(&service, acme).await;

    assert_ne!(
        second.batch_id, first.batch_id,
        "a run is a batch of its own"
    );
    assert_eq!(
        (
            second.records_read,
            second.inserted,
            second.duplicates,
            second.quarantined
        ),
        (42, 0, 32, 10)
    );
    assert!(second.matches, "{}", import_client::render(&second.report));
    assert_eq!(table_counts(&service, acme).await[..3], [14, 6, 9]);
    let imported_by_first: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM raw_signals WHERE tenant_id = $1 AND batch_id = $2",
    )
    .bind(acme)
    .bind(first.batch_id)
    .fetch_one(&service.pool)
    .await
    .expect("count");
    assert_eq!(
        imported_by_first, 14,
        "rows keep the batch that inserted them"
    );
}

#[tokio::test]
async fn another_tenant_sees_none_of_it() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let globex = tenant(&service, "globex").await;
    let summary = import_sample(&service, acme).await;
    let running = start(&mut client, acme, "acme-running").await;

    let status = client
        .get_import_report(pb::GetImportReportRequest {
            tenant_id: globex.to_string(),
            batch_id: summary.batch_id.to_string(),
            ..Default::default()
        })
        .await
        .expect_err("not globex's batch");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "IMPORT_BATCH_NOT_FOUND");
    let status = client
        .import_records(records_request(
            globex,
            &running.id,
            "globex-1",
            vec![signal_line(1, "x1")],
        ))
        .await
        .expect_err("not globex's batch");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(table_counts(&service, globex).await, [0, 0, 0, 0]);

    // The same documents are globex's own when globex imports them.
    let theirs = import_sample(&service, globex).await;
    assert_eq!((theirs.inserted, theirs.duplicates), (29, 3));
    assert_eq!(table_counts(&service, globex).await, [14, 6, 9, 10]);
    assert_eq!(table_counts(&service, acme).await, [14, 6, 9, 10]);
}

#[tokio::test]
async fn bad_requests_are_refused_whole_with_details_and_write_nothing() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let batch = start(&mut client, acme, "start-1").await;

    let unknown = Uuid::now_v7().to_string();
    let status = client
        .import_records(records_request(
            acme,
            &unknown,
            "k1",
            vec![signal_line(1, "s1")],
        ))
        .await
        .expect_err("unknown batch");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "IMPORT_BATCH_NOT_FOUND");
    assert_eq!(fields(&status), ["batch_id"]);
    assert_eq!(metadata(&status, "batch_id"), Some(unknown.clone()));

    let status = client
        .import_records(records_request(
            acme,
            "batch-7",
            "k2",
            vec![signal_line(1, "s1")],
        ))
        .await
        .expect_err("not a uuid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["batch_id"]);

    let too_many = (1..=1001)
        .map(|i| signal_line(i, &format!("s{i}")))
        .collect();
    let status = client
        .import_records(records_request(acme, &batch.id, "k3", too_many))
        .await
        .expect_err("too many records");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["records"]);
    assert!(
        status.message().contains("at most 1000"),
        "{}",
        status.message()
    );

    let empty = pb::ImportRecord {
        source_file: "x".into(),
        line_number: 1,
        content: None,
        cut_from_bytes: 0,
    };
    let status = client
        .import_records(records_request(
            acme,
            &batch.id,
            "k4",
            vec![signal_line(1, "s1"), empty],
        ))
        .await
        .expect_err("no content");
    assert_eq!(fields(&status), ["records[1].content"]);

    let status = client
        .import_records(records_request(
            acme,
            &batch.id,
            "",
            vec![signal_line(1, "s1")],
        ))
        .await
        .expect_err("no key");
    assert_eq!(fields(&status), ["idempotency_key"]);

    let status = client
        .finish_import_batch(finish_request(
            acme,
            &batch.id,
            vec![pb::SourceCollection {
                collection: "raw_signals".into(),
                document_count: -1,
                checksum: "not-hex".into(),
            }],
        ))
        .await
        .expect_err("bad declaration");
    assert_eq!(
        fields(&status),
        ["sources[0].document_count", "sources[0].checksum"]
    );

    let status = client
        .start_import_batch(pb::StartImportBatchRequest {
            tenant_id: Uuid::now_v7().to_string(),
            source_name: "x".into(),
            idempotency_key: "start-2".into(),
        })
        .await
        .expect_err("unknown tenant");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "TENANT_NOT_FOUND");
    let status = client
        .start_import_batch(pb::StartImportBatchRequest {
            tenant_id: acme.to_string(),
            source_name: " ".into(),
            idempotency_key: "start-3".into(),
        })
        .await
        .expect_err("no name");
    assert_eq!(fields(&status), ["source_name"]);

    // Nothing was written: the batch is as started, and still running.
    assert_eq!(table_counts(&service, acme).await, [0, 0, 0, 0]);
    let report = client
        .get_import_report(pb::GetImportReportRequest {
            tenant_id: acme.to_string(),
            batch_id: batch.id.clone(),
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("a report");
    let batch = report.batch.expect("batch");
    assert_eq!(batch.status(), pb::ImportBatchStatus::Running);
    assert_eq!(batch.records_read, 0);
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM import_batches")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(batches, 1);
}

#[tokio::test]
async fn a_retried_call_is_answered_once() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let batch = start(&mut client, acme, "start").await;
    let again = start(&mut client, acme, "start").await;
    assert_eq!(again, batch, "a retried start is the same batch");

    let request = records_request(
        acme,
        &batch.id,
        "chunk-0",
        vec![signal_line(1, "s1"), signal_line(2, "s2")],
    );
    let first = client
        .import_records(request.clone())
        .await
        .expect("first")
        .into_inner();
    let retried = client
        .import_records(request)
        .await
        .expect("retry")
        .into_inner();

    assert_eq!(retried, first);
    assert_eq!((first.inserted_count, first.duplicate_count), (2, 0));
    assert_eq!(retried.batch.expect("batch").records_read, 2);
    assert_eq!(rows(&service, "raw_signals", acme).await, 2);

    let status = client
        .import_records(records_request(
            acme,
            &batch.id,
            "chunk-0",
            vec![signal_line(1, "s3")],
        ))
        .await
        .expect_err("key reused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(rows(&service, "raw_signals", acme).await, 2);
}

#[tokio::test]
async fn a_finished_batch_takes_no_more_records() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let batch = start(&mut client, acme, "start").await;
    client
        .import_records(records_request(
            acme,
            &batch.id,
            "c0",
            vec![signal_line(1, "s1")],
        ))
        .await
        .expect("imported");
    client
        .finish_import_batch(finish_request(
            acme,
            &batch.id,
            vec![source("raw_signals", &["s1"])],
        ))
        .await
        .expect("finished");

    let status = client
        .import_records(records_request(
            acme,
            &batch.id,
            "c1",
            vec![signal_line(2, "s2")],
        ))
        .await
        .expect_err("finished");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "IMPORT_BATCH_FINISHED");
    let status = client
        .finish_import_batch(pb::FinishImportBatchRequest {
            idempotency_key: "finish-again".into(),
            ..finish_request(acme, &batch.id, vec![])
        })
        .await
        .expect_err("finished");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(rows(&service, "raw_signals", acme).await, 1);

    // The batch's story is in the event store.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE tenant_id = $1 AND aggregate_type = 'import_batch'
           AND aggregate_id = $2 ORDER BY aggregate_version",
    )
    .bind(acme)
    .bind(&batch.id)
    .fetch_all(&service.pool)
    .await
    .expect("events");
    assert_eq!(
        events,
        [
            "phoenix.ledger.v1.ImportBatchStarted",
            "phoenix.ledger.v1.ImportRecordsApplied",
            "phoenix.ledger.v1.ImportBatchFinished"
        ]
    );
}

#[tokio::test]
async fn a_source_the_database_does_not_account_for_fails_the_batch() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let batch = start(&mut client, acme, "start").await;
    client
        .import_records(records_request(
            acme,
            &batch.id,
            "c0",
            vec![signal_line(1, "s1"), signal_line(2, "s2")],
        ))
        .await
        .expect("imported");

    // The client read a third document that never arrived.
    let report = client
        .finish_import_batch(finish_request(
            acme,
            &batch.id,
            vec![source("raw_signals", &["s1", "s2", "s3"])],
        ))
        .await
        .expect("finished")
        .into_inner()
        .report
        .expect("a report");

    assert!(!report.matches);
    let batch = report.batch.expect("batch");
    assert_eq!(batch.status(), pb::ImportBatchStatus::Failed);
    assert!(
        batch
            .error
            .contains("raw_signals: the source has 3 documents, the database accounts for 2"),
        "{}",
        batch.error
    );
    let signals = &report.collections[0];
    assert_eq!(
        (
            signals.source_count,
            signals.accounted_count,
            signals.matches
        ),
        (3, 2, false)
    );
}

#[tokio::test]
async fn checksums_agree_with_the_database_whatever_the_ids() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let batch = start(&mut client, acme, "start").await;
    // Upper case before lower, bytes not a locale's order; a backslash is not an escape.
    let ids = ["b", "B", "a", "é", "Z z", "a\\x41", "ñandú"];
    let records = ids
        .iter()
        .zip(1..)
        .map(|(id, line)| signal_line(line, id))
        .collect();
    client
        .import_records(records_request(acme, &batch.id, "c0", records))
        .await
        .expect("imported");

    let report = client
        .finish_import_batch(finish_request(
            acme,
            &batch.id,
            vec![source("raw_signals", &ids)],
        ))
        .await
        .expect("finished")
        .into_inner()
        .report
        .expect("a report");

    assert!(report.matches, "{}", import_client::render(&report));
    assert_eq!(report.collections[0].imported_checksum, checksum(ids));
}

#[tokio::test]
async fn a_line_that_is_not_utf8_or_holds_nul_is_quarantined_not_lost() {
    let (service, mut client) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let batch = start(&mut client, acme, "start").await;
    let not_utf8 = pb::ImportRecord {
        source_file: "bad.ndjson".into(),
        line_number: 3,
        content: Some(pb::import_record::Content::NdjsonLine(
            b"{\"id\": \"\xff\"}".to_vec(),
        )),
        cut_from_bytes: 0,
    };
    let nul = ndjson(
        4,
        r#"{"collection": "audit_logs", "id": "a1", "data": {"actor": "x\u0000", "action": "y", "at": "2025-01-01T00:00:00Z"}}"#,
    );

    let answer = client
        .import_records(records_request(acme, &batch.id, "c0", vec![not_utf8, nul]))
        .await
        .expect("imported")
        .into_inner();

    assert_eq!(answer.quarantined_count, 2);
    let reasons: Vec<_> = answer
        .rejected
        .iter()
        .map(|r| (r.line_number, r.reason.as_str()))
        .collect();
    assert_eq!(reasons, [(3, "MALFORMED_JSON"), (4, "INVALID_VALUE")]);
    assert!(
        answer.rejected[0].message.contains("UTF-8"),
        "{}",
        answer.rejected[0].message
    );
    assert_eq!(rows(&service, "import_quarantine", acme).await, 2);
}

#[tokio::test]
async fn the_database_keeps_imports_as_they_are() {
    let (service, _) = ledger().await;
    let acme = tenant(&service, "acme").await;
    let summary = import_sample(&service, acme).await;

    for statement in [
        "UPDATE raw_signals SET source = 'edited' WHERE firebase_id = 'sig_0001'",
        "DELETE FROM campaigns WHERE firebase_id = 'cmp_spring'",
        "UPDATE import_quarantine SET reason = 'FINE'",
        "UPDATE import_batches SET status = 'RUNNING', finished_at = NULL",
    ] {
        let error = sqlx::query(statement)
            .execute(&service.pool)
            .await
            .expect_err(statement);
        assert!(error.as_database_error().is_some(), "{statement}: {error}");
    }
    let error = sqlx::query(
        "INSERT INTO audit_logs (tenant_id, firebase_id, actor, action, at, document, batch_id, imported_at)
         VALUES ($1, 'a/b', 'x', 'y', now(), '{}', $2, now())",
    )
    .bind(acme)
    .bind(summary.batch_id)
    .execute(&service.pool)
    .await
    .expect_err("an invalid id");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("23514")
    );
    assert_eq!(table_counts(&service, acme).await, [14, 6, 9, 10]);
}
