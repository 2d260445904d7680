//! Messy legacy files: every record is imported or quarantined (none dropped without a word),
//! and what is imported compares equal and exports byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use phoenix_conversations::app::Conversations;
use phoenix_conversations::ops::legacy::{self, ImportArgs, LegacyFiles};
use phoenix_testkit::spawn;
use tokio_util::sync::CancellationToken;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "phoenix-conversations-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const THREADS: &str = r#"{
  "573001000001": {"threadId": "thread_1", "chatId": "573001000001@s.whatsapp.net", "userName": "Uno", "x": {"deep": [[[{"a": null}]]]}},
  "+57 (300) 100-0002": {"threadId": "thread_2", "chatId": "573001000002@c.us", "userName": null},
  "573001000003@s.whatsapp.net": {"threadId": "thread_3", "chatId": "573001000003@s.whatsapp.net"},
  "573001000004": {"threadId": 4, "chatId": "573001000004@s.whatsapp.net"},
  "573001000005": {"threadId": "thread_5", "chatId": ["x"]},
  "573001000006": "thread_6",
  "573001000007": {"threadId": "thread_7", "chatId": "573001000007@s.whatsapp.net", "userName": {"first": "Siete"}},
  "573001000008": {"threadId": "thread_8", "chatId": "573001000008@s.whatsapp.net", "big": 1e400},
  "573001000009": null,
  "": {"threadId": "thread_9", "chatId": "x@s.whatsapp.net"},
  "573001000010": {"threadId": "thread_10", "chatId": "573001000010@s.whatsapp.net", "userName": "  Diez  ", "n": "0012", "f": 0.1, "e": -1E-7}
}"#;

const GUESTS: &str = r#"{
  "573001000001": {"name": "Uno 😀 ğ 中文 עברית", "labels": ["a", " a ", "b"], "lastInteraction": "2025-01-27T10:20:30.123456789+05:30"},
  "573001000002": {"name": "", "labels": null, "lastInteraction": null},
  "573001000003": {"labels": "vip"},
  "573001000011": {"name": 57, "labels": []},
  "573001000012": {"name": "Doce", "lastInteraction": 1706300000000},
  "573001000013": {"name": "Trece", "lastInteraction": "2025-01-27 10:20:30"},
  "573001000014": {"name": "Catorce", "lastInteraction": "27/01/2025"},
  "573001000015": {"name": "Quince\u0007"},
  "573001000016": {"name": "Dieciséis", "labels": ["x", {"y": 1}], "unknown": {"a": [1, 2, {"b": "c"}]}},
  "573001000017": [],
  "0573001000018": {"name": "Cero"},
  "573001000010": {"name": "Diez bis", "lastInteraction": "2025-02-29"}
}"#;

#[tokio::test]
async fn every_record_of_a_messy_file_is_imported_or_quarantined_and_compares_equal() {
    let service = spawn(phoenix_conversations::spec()).await;
    let conversations = Conversations::new(service.pool.clone(), CancellationToken::new());
    let dir = scratch("messy");
    let files = LegacyFiles {
        threads: dir.join("threads-data.json"),
        guests: dir.join("guest-memory.json"),
    };
    std::fs::write(&files.threads, THREADS).expect("written");
    std::fs::write(&files.guests, GUESTS).expect("written");
    let args = ImportArgs {
        files: files.clone(),
        dry_run: false,
        quarantine: None,
    };
    let summary = legacy::import(&conversations, &args, &dir.join("q.ndjson"), |_, _| {})
        .await
        .expect("imported");
    let quarantined: BTreeSet<(String, String)> = summary
        .quarantine
        .iter()
        .map(|r| (r.file.clone(), r.key.clone()))
        .collect();
    let rules: Vec<String> = summary
        .quarantine
        .iter()
        .map(|r| format!("{} {} {} {}", r.file, r.key, r.field, r.rule))
        .collect();
    assert_eq!(
        (summary.records, summary.imported, summary.quarantined),
        (23, 3, 16),
        "{}",
        summary.line()
    );
    for expected in [
        // A number past f64 rejects its record alone, not the whole file.
        "threads-data.json 573001000008  INVALID_JSON",
        "threads-data.json 573001000009  NOT_AN_OBJECT",
        "guest-memory.json 573001000012 lastInteraction NOT_A_STRING",
        "guest-memory.json 0573001000018  INVALID_PHONE",
        "threads-data.json 573001000010  OTHER_RECORD_REJECTED",
    ] {
        assert!(
            rules.iter().any(|r| r == expected),
            "{expected} not in {rules:?}"
        );
    }

    // Every record is imported or quarantined.
    let exported = LegacyFiles {
        threads: dir.join("out-threads.json"),
        guests: dir.join("out-guests.json"),
    };
    legacy::export(&conversations, &exported)
        .await
        .expect("exported");
    for (file, original, back) in [
        ("threads-data.json", THREADS, &exported.threads),
        ("guest-memory.json", GUESTS, &exported.guests),
    ] {
        let original: serde_json::Value = serde_json::from_str(original).unwrap_or_default();
        let back: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(back).expect("read")).expect("JSON");
        for key in original
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            assert!(
                back.contains_key(&key) || quarantined.contains(&(file.to_owned(), key.clone())),
                "{file} {key:?} neither exported nor quarantined: {rules:?}"
            );
        }
    }
    let comparison = legacy::compare(&conversations, &files)
        .await
        .expect("compared");
    assert!(
        comparison.differences.is_empty(),
        "{:#?}",
        comparison
            .differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    // A second import changes nothing.
    let again = legacy::import(&conversations, &args, &dir.join("q.ndjson"), |_, _| {})
        .await
        .expect("imported");
    assert_eq!((again.imported, again.unchanged), (0, summary.imported));
}
