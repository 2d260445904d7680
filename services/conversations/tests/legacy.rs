//! The legacy files' import, export (rollback) and compare on the shipped sample, against a
//! real server and database.

use std::path::{Path, PathBuf};

use phoenix_conversations::app::Conversations;
use phoenix_conversations::ops::legacy::{self, ImportArgs, LegacyFiles};
use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_client::ConversationsServiceClient;
use phoenix_testkit::spawn;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

fn sample() -> LegacyFiles {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    LegacyFiles {
        threads: dir.join("threads-data.json"),
        guests: dir.join("guest-memory.json"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "phoenix-conversations-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn args(files: LegacyFiles, dry_run: bool) -> ImportArgs {
    ImportArgs {
        files,
        dry_run,
        quarantine: None,
    }
}

fn read(path: &Path) -> Map<String, Value> {
    match serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON") {
        Value::Object(map) => map,
        _ => unreachable!("the files are objects"),
    }
}

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("counted")
}

#[tokio::test]
async fn the_sample_imports_once_with_a_reason_per_rejected_record() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let report = scratch("import").join("quarantine.ndjson");
    let first = legacy::import(&conversations, &args(sample(), false), &report, |_, _| {})
        .await
        .expect("imported");
    assert_eq!(
        (
            first.contacts,
            first.imported,
            first.quarantined,
            first.duplicates
        ),
        (316, 305, 11, 1),
        "{}",
        first.line()
    );
    assert_eq!(count(&service.pool, "contacts").await, 305);

    let rules: Vec<(String, String, String)> = first
        .quarantine
        .iter()
        .map(|r| (r.key.clone(), r.field.clone(), r.rule.clone()))
        .collect();
    for expected in [
        ("573002000006", "lastInteraction", "INVALID_DATE"),
        ("573002000006", "", "OTHER_RECORD_REJECTED"),
        ("573002000007", "lastInteraction", "INVALID_DATE"),
        ("573002000008", "lastInteraction", "INVALID_DATE"),
        ("no-es-un-numero", "", "INVALID_PHONE"),
        ("123", "", "INVALID_PHONE"),
        ("573002000009", "threadId", "REQUIRED"),
        ("573002000010", "threadId", "INVALID_THREAD_ID"),
        ("573002000011", "labels", "NOT_AN_ARRAY"),
        ("573002000012", "labels[1]", "NOT_A_STRING"),
        ("573002000013", "", "NOT_AN_OBJECT"),
        ("573002000014", "name", "TOO_LONG"),
        ("573002000003", "", "DUPLICATE_PHONE"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(
            rules.contains(&expected),
            "{expected:?} missing from {rules:?}"
        );
    }
    assert!(
        first
            .quarantine
            .iter()
            .all(|r| r.message.chars().count() < 200),
        "a message echoes too much"
    );
    let written = std::fs::read_to_string(&report).expect("report");
    assert_eq!(written.lines().count(), first.quarantine.len());

    // The merged contact of a number written two ways, through the API.
    let mut client = ConversationsServiceClient::new(service.channel.clone());
    let ana = client
        .get_contact(pb::GetContactRequest {
            phone: "573002000001".into(),
        })
        .await
        .expect("imported")
        .into_inner();
    assert_eq!(
        ana.contact.as_ref().map(|c| c.name.as_str()),
        Some("Ana Núñez")
    );
    assert_eq!(
        ana.active_thread.map(|t| t.thread_id),
        Some("thread_cross1".to_owned())
    );
    // No half contact: the bad-date contact's thread record was not imported either.
    let status = client
        .get_contact(pb::GetContactRequest {
            phone: "573002000006".into(),
        })
        .await
        .expect_err("quarantined whole");
    phoenix_testkit::assert_refused(&status, tonic::Code::NotFound, "CONTACT_NOT_FOUND");

    let before = (
        count(&service.pool, "contacts").await,
        count(&service.pool, "threads").await,
        count(&service.pool, "events").await,
    );
    let second = legacy::import(&conversations, &args(sample(), false), &report, |_, _| {})
        .await
        .expect("imported");
    assert_eq!(
        (second.imported, second.unchanged, second.quarantined),
        (0, 305, 11),
        "{}",
        second.line()
    );
    let after = (
        count(&service.pool, "contacts").await,
        count(&service.pool, "threads").await,
        count(&service.pool, "events").await,
    );
    assert_eq!(after, before, "the second import changed nothing");
}

#[tokio::test]
async fn import_then_export_then_compare_shows_no_difference() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let dir = scratch("roundtrip");
    legacy::import(
        &conversations,
        &args(sample(), false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("imported");

    let exported = LegacyFiles {
        threads: dir.join("threads-data.json"),
        guests: dir.join("guest-memory.json"),
    };
    let written = legacy::export(&conversations, &exported)
        .await
        .expect("exported");
    let against_sample = legacy::compare(&conversations, &sample())
        .await
        .expect("compared");
    assert!(
        against_sample.differences.is_empty(),
        "{:#?}",
        against_sample
            .differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert!(against_sample.compared > 500);
    let against_export = legacy::compare(&conversations, &exported)
        .await
        .expect("compared");
    assert!(
        against_export.differences.is_empty(),
        "{:?}",
        against_export.differences
    );

    // Every accepted record is written back field for field, unknown fields and spellings of
    // keys, null and absent fields, padded names and date formats included.
    let read_back = phoenix_conversations::domain::legacy::read(
        &read(&sample().threads).into(),
        &read(&sample().guests).into(),
    );
    let rejected: std::collections::BTreeSet<&str> = read_back
        .rejections
        .iter()
        .map(|r| r.key.as_str())
        .collect();
    for (original, back) in [
        (read(&sample().threads), read(&exported.threads)),
        (read(&sample().guests), read(&exported.guests)),
    ] {
        let accepted: Map<String, Value> = original
            .into_iter()
            .filter(|(k, _)| !rejected.contains(k.as_str()))
            .collect();
        assert_eq!(back, accepted);
    }
    assert_eq!(
        written.threads + written.guests,
        read(&exported.threads).len() + read(&exported.guests).len()
    );
}

#[tokio::test]
async fn a_change_made_after_the_import_is_a_difference_and_is_exported() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let dir = scratch("change");
    legacy::import(
        &conversations,
        &args(sample(), false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("imported");
    let mut client = ConversationsServiceClient::new(service.channel.clone());
    client
        .save_contact(pb::SaveContactRequest {
            phone: "573002000001".into(),
            name: "Ana María Núñez".into(),
            chat_id: "573002000001@s.whatsapp.net".into(),
            labels: vec!["VIP".into()],
            ..Default::default()
        })
        .await
        .expect("saved");
    client
        .save_contact(pb::SaveContactRequest {
            phone: "573009990000".into(),
            name: "Nueva".into(),
            ..Default::default()
        })
        .await
        .expect("saved");
    let comparison = legacy::compare(&conversations, &sample())
        .await
        .expect("compared");
    let shown: Vec<(String, String)> = comparison
        .differences
        .iter()
        .map(|d| (d.key.clone(), d.field.clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("573002000001".to_owned(), "name".to_owned()),
            ("573009990000".to_owned(), String::new())
        ]
    );
    let exported = LegacyFiles {
        threads: dir.join("t.json"),
        guests: dir.join("g.json"),
    };
    legacy::export(&conversations, &exported)
        .await
        .expect("exported");
    let guests = read(&exported.guests);
    assert_eq!(
        guests["573002000001"]["name"],
        Value::String("Ana María Núñez".into())
    );
    assert_eq!(
        guests["573002000001"]["lastInteraction"],
        Value::String("2025-02-14".into())
    );
    assert_eq!(
        guests["573009990000"]["name"],
        Value::String("Nueva".into())
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_same_and_writes_nothing() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let report = scratch("dry").join("q.ndjson");
    let dry = legacy::import(&conversations, &args(sample(), true), &report, |_, _| {})
        .await
        .expect("checked");
    assert_eq!((dry.imported, dry.quarantined), (305, 11));
    for table in ["contacts", "threads", "events"] {
        assert_eq!(count(&service.pool, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_malformed_file_writes_nothing_and_a_record_the_database_refuses_is_quarantined_alone() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let dir = scratch("malformed");
    let files = LegacyFiles {
        threads: dir.join("t.json"),
        guests: dir.join("g.json"),
    };
    std::fs::write(
        &files.threads,
        r#"{"573001234567": {"threadId": "thread_a", "chatId": "x@s.whatsapp.net"}}"#,
    )
    .expect("written");
    std::fs::write(&files.guests, "{\"573001234567\": {\"name\": ").expect("written");
    let summary = legacy::import(
        &conversations,
        &args(files.clone(), false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("reported");
    assert_eq!(summary.quarantine.len(), 1);
    assert_eq!(
        (
            summary.quarantine[0].file.as_str(),
            summary.quarantine[0].rule.as_str()
        ),
        ("guest-memory.json", "INVALID_JSON")
    );
    assert_eq!(count(&service.pool, "contacts").await, 0);

    // Two contacts naming one thread: the second is refused by the database, alone.
    std::fs::write(
        &files.threads,
        r#"{"573001234567": {"threadId": "thread_a", "chatId": "a@s.whatsapp.net"},
            "573007654321": {"threadId": "thread_a", "chatId": "b@s.whatsapp.net"}}"#,
    )
    .expect("written");
    std::fs::write(&files.guests, r#"{"573009999999": {"name": "Sola"}}"#).expect("written");
    let summary = legacy::import(
        &conversations,
        &args(files, false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("imported");
    assert_eq!(
        (summary.imported, summary.quarantined),
        (2, 1),
        "{}",
        summary.line()
    );
    let refused = &summary.quarantine[0];
    assert_eq!(
        (
            refused.key.as_str(),
            refused.field.as_str(),
            refused.rule.as_str()
        ),
        ("573007654321", "threadId", "THREAD_OF_ANOTHER_CONTACT")
    );
    assert_eq!(
        count(&service.pool, "contacts").await,
        2,
        "the refused contact was not half written"
    );
}

#[tokio::test]
async fn repeated_keys_a_byte_order_mark_and_a_lone_surrogate_lose_nothing_silently() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let dir = scratch("strict");
    let files = LegacyFiles {
        threads: dir.join("t.json"),
        guests: dir.join("g.json"),
    };
    // Windows tools write a byte order mark; JavaScript's slice() leaves lone surrogates.
    std::fs::write(
        &files.threads,
        "\u{feff}{\"573001234567\": {\"threadId\": \"thread_a\", \"chatId\": \"a@s.whatsapp.net\"}}",
    )
    .expect("written");
    std::fs::write(
        &files.guests,
        r#"{"573001234567": {"name": "Primera", "labels": ["a"]},
            "573001234567": {"name": "Segunda"},
            "573002222222": {"name": "Ana", "name": "Ana María"},
            "573003333333": {"name": "\ud83d roto"},
            "573004444444": {"name": "Sana", "extra": {"n": 1}}}"#,
    )
    .expect("written");
    let summary = legacy::import(
        &conversations,
        &args(files.clone(), false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("imported");
    let rules: Vec<(&str, &str, &str)> = summary
        .quarantine
        .iter()
        .map(|r| (r.key.as_str(), r.field.as_str(), r.rule.as_str()))
        .collect();
    assert_eq!(
        (
            summary.records,
            summary.imported,
            summary.quarantined,
            summary.duplicates
        ),
        (6, 2, 2, 1),
        "{} {rules:?}",
        summary.line()
    );
    for expected in [
        ("573001234567", "", "DUPLICATE_PHONE"),
        ("573002222222", "name", "DUPLICATE_KEY"),
        ("573003333333", "", "INVALID_JSON"),
    ] {
        assert!(rules.contains(&expected), "{expected:?} not in {rules:?}");
    }
    let mut client = ConversationsServiceClient::new(service.channel.clone());
    let first = client
        .get_contact(pb::GetContactRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect("imported")
        .into_inner()
        .contact
        .expect("contact");
    assert_eq!(
        first.name, "Primera",
        "the first record of a repeated key is kept"
    );
    assert_eq!(count(&service.pool, "contacts").await, 2);

    // The kept records compare equal; the rejected ones are listed, not differences.
    let comparison = legacy::compare(&conversations, &files)
        .await
        .expect("compared");
    assert!(
        comparison.differences.is_empty(),
        "{:?}",
        comparison.differences
    );
    assert_eq!(
        comparison.quarantined.len(),
        3,
        "{:?}",
        comparison.quarantined
    );

    // Text that is not UTF-8 (a Latin-1 export) refuses the file, writing nothing.
    std::fs::write(
        &files.guests,
        b"{\"573005555555\": {\"name\": \"Jos\xe9\"}}",
    )
    .expect("written");
    let refused = legacy::import(
        &conversations,
        &args(files, false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("reported");
    assert_eq!(refused.quarantine.len(), 1);
    assert_eq!(
        (
            refused.quarantine[0].file.as_str(),
            refused.quarantine[0].rule.as_str()
        ),
        ("guest-memory.json", "NOT_UTF8")
    );
    assert_eq!(count(&service.pool, "contacts").await, 2);
}

#[tokio::test]
async fn an_unchanged_file_is_exported_byte_for_byte_in_its_order_with_its_numbers() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let dir = scratch("verbatim");
    let files = LegacyFiles {
        threads: dir.join("t.json"),
        guests: dir.join("g.json"),
    };
    // As the bot's JSON.stringify(data, null, 2) writes them: keys not in phone order, fields
    // not in alphabetical order, numbers a float parser would respell or round.
    let threads = r#"{
  "573009000002": {
    "threadId": "thread_b",
    "chatId": "573009000002@s.whatsapp.net",
    "userName": "Beto",
    "score": 1.50,
    "big": 12345678901234567890123,
    "exp": 1e+21
  },
  "+57 300 900 0001": {
    "threadId": "thread_a",
    "chatId": "573009000001@s.whatsapp.net",
    "userName": null
  }
}
"#;
    let guests = r#"{
  "573009000002": {
    "lastInteraction": "2025-01-27",
    "name": "Beto",
    "labels": ["z", "a"],
    "meta": {"zeta": 1.0, "alpha": -0.0, "list": [3, 2e2]}
  },
  "573009000001": {
    "name": "Ana"
  }
}
"#;
    std::fs::write(&files.threads, threads).expect("written");
    std::fs::write(&files.guests, guests).expect("written");
    let summary = legacy::import(
        &conversations,
        &args(files.clone(), false),
        &dir.join("q.ndjson"),
        |_, _| {},
    )
    .await
    .expect("imported");
    assert_eq!(summary.imported, 2, "{:?}", summary.quarantine);
    let exported = LegacyFiles {
        threads: dir.join("out-t.json"),
        guests: dir.join("out-g.json"),
    };
    legacy::export(&conversations, &exported)
        .await
        .expect("exported");
    assert_eq!(
        std::fs::read_to_string(&exported.threads).expect("read"),
        threads
    );
    assert_eq!(
        std::fs::read_to_string(&exported.guests).expect("read"),
        guests
    );

    // A record changed since is rendered from the database; the others stay as they were.
    let mut client = ConversationsServiceClient::new(service.channel.clone());
    client
        .save_thread(pb::SaveThreadRequest {
            phone: "573009000001".into(),
            thread_id: "thread_c".into(),
            ..Default::default()
        })
        .await
        .expect("saved");
    legacy::export(&conversations, &exported)
        .await
        .expect("exported");
    let text = std::fs::read_to_string(&exported.threads).expect("read");
    assert!(text.starts_with(&threads[..threads.find("  \"+57").expect("second")]));
    let back = read(&exported.threads);
    assert_eq!(back["+57 300 900 0001"]["threadId"], "thread_c");
    // ... in its fields' order, the unchanged ones as written.
    assert!(
        text.contains(
            "\"+57 300 900 0001\": {\n    \"threadId\": \"thread_c\",\n    \"chatId\": \"573009000001@s.whatsapp.net\",\n    \"userName\": "
        ),
        "{text}"
    );
    // SaveThread stamped Ana's last activity: her guest record is rendered, Beto's is not.
    let text = std::fs::read_to_string(&exported.guests).expect("read");
    assert!(text.starts_with(&guests[..guests.find("  \"573009000001").expect("second")]));
    assert!(read(&exported.guests)["573009000001"]["lastInteraction"].is_string());
    assert!(
        text.contains("\"573009000001\": {\n    \"name\": \"Ana\",\n    \"lastInteraction\": \""),
        "{text}"
    );

    // A guests file that cannot be written leaves the threads file as it was.
    let before = std::fs::read_to_string(&exported.threads).expect("read");
    client
        .save_thread(pb::SaveThreadRequest {
            phone: "573009000002".into(),
            thread_id: "thread_d".into(),
            ..Default::default()
        })
        .await
        .expect("saved");
    let error = legacy::export(
        &conversations,
        &LegacyFiles {
            threads: exported.threads.clone(),
            guests: dir.join("missing-dir").join("g.json"),
        },
    )
    .await
    .expect_err("the guests file cannot be written");
    assert!(error.to_string().contains("cannot write"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&exported.threads).expect("read"),
        before
    );
    assert!(!dir.join("out-t.json.partial").exists());
}
