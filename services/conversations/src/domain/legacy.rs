//! The legacy bot's two files (seed 004), read record by record, and written back.
//!
//! `threads-data.json`: one object keyed by WhatsApp number; each record has `threadId`
//! (required, the assistant thread), `chatId` (required) and `userName` (string or null).
//! `guest-memory.json`: the same keys; each record has `name` (string or null), `labels` (an
//! array of strings) and `lastInteraction` (a date `2025-01-27`, an RFC 3339 time, or an ISO
//! time without offset, read as UTC; or null). Every field is optional in a guest record.
//!
//! A contact is both files' records under one normalised number ([`Phone`]), merged. A record
//! that breaks a rule rejects its whole contact (no contact is imported half): each reason is
//! reported with the file, the key as written, the field path and the rule. A second record of
//! the same number in one file (the number written another way) is rejected as
//! `DUPLICATE_PHONE`; the first one, in key order, is kept.
//!
//! Records are kept verbatim (every field, known or not) with the key as written, so the
//! export writes each record back as it was read while the columns still hold what the import
//! gave them, and renders only the fields that changed since ([`render_thread`],
//! [`render_guest`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use phoenix_runtime::error::json_type;
use serde_json::{Map, Value};

use super::contact::{self, Phone};
pub use super::legacy_file::{FileRecord, FileRecords, Source, fields_of, file_records};

pub const THREADS_FILE: &str = "threads-data.json";
pub const GUESTS_FILE: &str = "guest-memory.json";

/// One reason a record is rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    pub file: String,
    /// The record's key as written in the file.
    pub key: String,
    /// Path of the field at fault inside the record (`labels[2]`); empty for the record itself.
    pub field: String,
    pub rule: String,
    pub message: String,
}

/// A threads-data.json record, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRecord {
    pub key: String,
    pub thread_id: String,
    pub chat_id: String,
    pub user_name: Option<String>,
    pub original: Map<String, Value>,
    /// The record's text as written, when read from a file.
    pub source: Option<Source>,
}

/// A guest-memory.json record, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRecord {
    pub key: String,
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub last_interaction: Option<DateTime<Utc>>,
    pub original: Map<String, Value>,
    /// The record's text as written, when read from a file.
    pub source: Option<Source>,
}

/// A contact as the two files describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyContact {
    pub phone: Phone,
    pub thread: Option<ThreadRecord>,
    pub guest: Option<GuestRecord>,
}

impl LegacyContact {
    /// The contact's name: the guest record's, else the thread's user name.
    pub fn name(&self) -> Option<String> {
        let guest = self.guest.as_ref().and_then(|g| g.name.clone());
        guest.or_else(|| self.thread.as_ref().and_then(|t| t.user_name.clone()))
    }

    pub fn chat_id(&self) -> String {
        self.thread
            .as_ref()
            .map_or_else(|| self.phone.default_chat_id(), |t| t.chat_id.clone())
    }

    pub fn labels(&self) -> Vec<String> {
        self.guest
            .as_ref()
            .map(|g| g.labels.clone())
            .unwrap_or_default()
    }

    pub fn last_activity_at(&self) -> Option<DateTime<Utc>> {
        self.guest.as_ref().and_then(|g| g.last_interaction)
    }
}

/// Both files read: the contacts to import, and every rejection.
#[derive(Debug, Clone, Default)]
pub struct LegacyRead {
    pub contacts: Vec<LegacyContact>,
    pub rejections: Vec<Rejection>,
    /// Records read (both files).
    pub records: usize,
    /// Contacts rejected.
    pub rejected_contacts: usize,
    /// Records rejected as a second spelling of a number their file already has.
    pub duplicates: usize,
}

/// Reads both files' records into contacts, rejecting each contact with a broken record. The
/// files' repeated keys ([`FileRecords::repeats`]) are not looked at here.
pub fn read(threads: &FileRecords, guests: &FileRecords) -> LegacyRead {
    #[derive(Default)]
    struct Pair {
        thread: Option<ThreadRecord>,
        guest: Option<GuestRecord>,
        reasons: Vec<Rejection>,
        keys: Vec<(&'static str, String)>,
    }
    let mut out = LegacyRead::default();
    let mut by_phone: BTreeMap<Phone, Pair> = BTreeMap::new();
    let mut unkeyed = Vec::new();
    for (file, records) in [(THREADS_FILE, threads), (GUESTS_FILE, guests)] {
        for (key, record) in &records.records {
            out.records += 1;
            let phone = match Phone::parse(key) {
                Ok(phone) => phone,
                Err(refusal) => {
                    unkeyed.push(reject(file, key, "", &refusal.reason, refusal.message));
                    continue;
                }
            };
            let pair = by_phone.entry(phone).or_default();
            let taken = if file == THREADS_FILE {
                pair.thread.is_some()
            } else {
                pair.guest.is_some()
            };
            if taken || pair.keys.iter().any(|(f, _)| *f == file) {
                out.duplicates += 1;
                out.rejections.push(reject(
                    file,
                    key,
                    "",
                    "DUPLICATE_PHONE",
                    "another record of this file has the same number written another way".into(),
                ));
                continue;
            }
            pair.keys.push((file, key.clone()));
            let value = match record {
                FileRecord::Read(value) => value,
                FileRecord::Broken {
                    field,
                    rule,
                    message,
                } => {
                    pair.reasons
                        .push(reject(file, key, field, rule, message.clone()));
                    continue;
                }
            };
            let source = records.sources.get(key).cloned();
            let parsed = if file == THREADS_FILE {
                thread_record(key, value).map(|t| pair.thread = Some(ThreadRecord { source, ..t }))
            } else {
                guest_record(key, value).map(|g| pair.guest = Some(GuestRecord { source, ..g }))
            };
            if let Err(reasons) = parsed {
                pair.reasons.extend(reasons);
            }
        }
    }
    out.rejected_contacts += unkeyed.len();
    out.rejections.extend(unkeyed);
    for (phone, pair) in by_phone {
        if pair.reasons.is_empty() {
            out.contacts.push(LegacyContact {
                phone,
                thread: pair.thread,
                guest: pair.guest,
            });
            continue;
        }
        out.rejected_contacts += 1;
        // The contact's sound records are not imported either: say so, record by record.
        for (file, key) in &pair.keys {
            if !pair
                .reasons
                .iter()
                .any(|r| r.file == *file && r.key == *key)
            {
                out.rejections.push(reject(
                    file,
                    key,
                    "",
                    "OTHER_RECORD_REJECTED",
                    "not imported: the other file's record of this contact is rejected".into(),
                ));
            }
        }
        out.rejections.extend(pair.reasons);
    }
    out
}

fn reject(file: &str, key: &str, field: &str, rule: &str, message: String) -> Rejection {
    Rejection {
        file: file.to_owned(),
        key: key.to_owned(),
        field: field.to_owned(),
        rule: rule.to_owned(),
        message,
    }
}

/// A threads-data.json record, or every reason it is rejected.
pub fn thread_record(key: &str, value: &Value) -> Result<ThreadRecord, Vec<Rejection>> {
    let record = object_record(THREADS_FILE, key, value)?;
    let mut reasons = Vec::new();
    let mut bad = |field: &str, rule: &str, message: String| {
        reasons.push(reject(THREADS_FILE, key, field, rule, message));
    };
    let thread_id = match record.get("threadId") {
        Some(Value::String(id)) => contact::thread_id(id)
            .map_err(|r| bad("threadId", &r.reason, r.message))
            .ok(),
        None | Some(Value::Null) => {
            bad(
                "threadId",
                "REQUIRED",
                "is required: the assistant's thread id".into(),
            );
            None
        }
        Some(other) => {
            bad(
                "threadId",
                "NOT_A_STRING",
                format!("must be a string, got {}", json_type(other)),
            );
            None
        }
    };
    let chat_id = match record.get("chatId") {
        Some(Value::String(id)) if !id.trim().is_empty() => {
            let phone = Phone::stored(String::new());
            contact::chat_id(&phone, id)
                .map_err(|r| bad("chatId", &r.reason, r.message))
                .ok()
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {
            bad(
                "chatId",
                "REQUIRED",
                "is required: the WhatsApp chat id".into(),
            );
            None
        }
        Some(other) => {
            bad(
                "chatId",
                "NOT_A_STRING",
                format!("must be a string, got {}", json_type(other)),
            );
            None
        }
    };
    let user_name = optional_name(record, "userName", &mut bad);
    match (thread_id, chat_id, reasons.is_empty()) {
        (Some(thread_id), Some(chat_id), true) => Ok(ThreadRecord {
            key: key.to_owned(),
            thread_id,
            chat_id,
            user_name,
            original: record.clone(),
            source: None,
        }),
        _ => Err(reasons),
    }
}

/// A guest-memory.json record, or every reason it is rejected.
pub fn guest_record(key: &str, value: &Value) -> Result<GuestRecord, Vec<Rejection>> {
    let record = object_record(GUESTS_FILE, key, value)?;
    let mut reasons = Vec::new();
    let mut bad = |field: &str, rule: &str, message: String| {
        reasons.push(reject(GUESTS_FILE, key, field, rule, message));
    };
    let name = optional_name(record, "name", &mut bad);
    let labels = match record.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut labels = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(label) => labels.push(label.clone()),
                    other => bad(
                        &format!("labels[{i}]"),
                        "NOT_A_STRING",
                        format!("a label must be a string, got {}", json_type(other)),
                    ),
                }
            }
            match contact::labels(&labels) {
                Ok(kept) => kept,
                Err(r) => {
                    bad(r.field().unwrap_or("labels"), &r.reason, r.message.clone());
                    Vec::new()
                }
            }
        }
        Some(other) => {
            bad(
                "labels",
                "NOT_AN_ARRAY",
                format!("must be an array of strings, got {}", json_type(other)),
            );
            Vec::new()
        }
    };
    let last_interaction = match record.get("lastInteraction") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let parsed = parse_time(text);
            if parsed.is_none() {
                bad(
                    "lastInteraction",
                    "INVALID_DATE",
                    format!(
                        "must be a date such as 2025-01-27 or an RFC 3339 time, got {}",
                        phoenix_runtime::quote(text)
                    ),
                );
            }
            parsed
        }
        Some(other) => {
            bad(
                "lastInteraction",
                "NOT_A_STRING",
                format!("must be a date string, got {}", json_type(other)),
            );
            None
        }
    };
    if !reasons.is_empty() {
        return Err(reasons);
    }
    Ok(GuestRecord {
        key: key.to_owned(),
        name,
        labels,
        last_interaction,
        original: record.clone(),
        source: None,
    })
}

/// A record's object, or its rejection: not an object, or holding a NUL (which PostgreSQL
/// cannot store, so the record could not be kept verbatim).
fn object_record<'v>(
    file: &str,
    key: &str,
    value: &'v Value,
) -> Result<&'v Map<String, Value>, Vec<Rejection>> {
    let Value::Object(record) = value else {
        let message = "a record must be a JSON object".to_owned();
        return Err(vec![reject(file, key, "", "NOT_AN_OBJECT", message)]);
    };
    if let Some(nul) = phoenix_runtime::error::json_nul(value) {
        let message = "holds a NUL character, which cannot be stored".to_owned();
        return Err(vec![reject(file, key, &nul.path, "NUL_CHARACTER", message)]);
    }
    Ok(record)
}

fn optional_name(
    record: &Map<String, Value>,
    field: &str,
    bad: &mut impl FnMut(&str, &str, String),
) -> Option<String> {
    match record.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => contact::name(field, name)
            .map_err(|r| bad(field, &r.reason, r.message))
            .ok()
            .flatten(),
        Some(other) => {
            bad(
                field,
                "NOT_A_STRING",
                format!("must be a string or null, got {}", json_type(other)),
            );
            None
        }
    }
}

/// A legacy time: `2025-01-27` (midnight UTC), RFC 3339, or ISO 8601 without an offset (UTC),
/// kept to the microsecond PostgreSQL stores.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    // ISO 8601's space for the `T` (`2025-01-27 10:20:30`, as SQL tools and logs write it).
    let spaced;
    let text = match text.as_bytes().get(10) {
        Some(b' ') if text.len() > 11 => {
            spaced = format!("{}T{}", &text[..10], &text[11..]);
            spaced.as_str()
        }
        _ => text,
    };
    let time = if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)?.and_utc()
    } else if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        time.with_timezone(&Utc)
    } else {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc()
    };
    let micros = DateTime::from_timestamp_micros(time.timestamp_micros())?;
    (1..=9999)
        .contains(&chrono::Datelike::year(&micros))
        .then_some(micros)
}

/// How an exported time is written when the column changed since the import.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What the database holds of a contact's thread-file half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadView {
    pub thread_id: String,
    pub chat_id: String,
    pub user_name: Option<String>,
}

/// What the database holds of a contact's guest-file half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestView {
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub last_activity_at: Option<DateTime<Utc>>,
}

/// A threads-data.json record of `current`: the record as imported (`original`) while the
/// columns hold what it gave them, each changed field rendered from the columns.
pub fn render_thread(original: &Map<String, Value>, current: &ThreadView) -> Map<String, Value> {
    let mut record = original.clone();
    let read = thread_record("", &Value::Object(original.clone())).ok();
    let imported = read.as_ref().map(|t| ThreadView {
        thread_id: t.thread_id.clone(),
        chat_id: t.chat_id.clone(),
        user_name: t.user_name.clone(),
    });
    let same = imported.as_ref();
    if same.map(|v| &v.thread_id) != Some(&current.thread_id) {
        record.insert("threadId".into(), Value::String(current.thread_id.clone()));
    }
    if same.map(|v| &v.chat_id) != Some(&current.chat_id) {
        record.insert("chatId".into(), Value::String(current.chat_id.clone()));
    }
    if same.map(|v| &v.user_name) != Some(&current.user_name) {
        record.insert("userName".into(), optional_string(&current.user_name));
    }
    record
}

/// A guest-memory.json record of `current`, as [`render_thread`] renders a thread's.
/// `imported_name` is the name the import gave the contact (see [`LegacyContact::name`]).
pub fn render_guest(
    original: &Map<String, Value>,
    imported_name: Option<&str>,
    current: &GuestView,
) -> Map<String, Value> {
    let mut record = original.clone();
    let read = guest_record("", &Value::Object(original.clone())).ok();
    if read.is_none() || imported_name != current.name.as_deref() {
        record.insert("name".into(), optional_string(&current.name));
    }
    if read.as_ref().map(|g| &g.labels) != Some(&current.labels) {
        record.insert(
            "labels".into(),
            Value::Array(current.labels.iter().cloned().map(Value::String).collect()),
        );
    }
    if read.as_ref().map(|g| g.last_interaction) != Some(current.last_activity_at) {
        record.insert(
            "lastInteraction".into(),
            current
                .last_activity_at
                .map_or(Value::Null, |t| Value::String(format_time(t))),
        );
    }
    record
}

fn optional_string(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("the tests pass objects"),
        }
    }

    #[test]
    fn both_files_merge_per_number_whatever_its_spelling() {
        let threads = object(
            json!({"+57 300 123 4567": {"threadId": "thread_a", "chatId": "573001234567@s.whatsapp.net", "userName": "Juan", "extra": [1]}}),
        );
        let guests = object(
            json!({"573001234567": {"name": "Juan Pérez", "labels": ["Potencial"], "lastInteraction": "2025-01-27"}}),
        );
        let read = read(&threads.into(), &guests.into());
        assert!(read.rejections.is_empty(), "{:?}", read.rejections);
        let contact = &read.contacts[0];
        assert_eq!(contact.phone.as_str(), "573001234567");
        assert_eq!(contact.name().as_deref(), Some("Juan Pérez"));
        assert_eq!(
            contact.thread.as_ref().map(|t| t.key.as_str()),
            Some("+57 300 123 4567")
        );
        assert_eq!(
            contact.last_activity_at(),
            parse_time("2025-01-27T00:00:00Z")
        );
    }

    #[test]
    fn a_broken_record_rejects_its_whole_contact_with_each_reason() {
        let threads =
            object(json!({"573001234567": {"threadId": "thread_a", "chatId": "x@s.whatsapp.net"}}));
        let guests = object(
            json!({"573001234567": {"labels": ["ok", 3], "lastInteraction": "2025-13-45"}, "abc": {}}),
        );
        let read = read(&threads.into(), &guests.into());
        assert!(read.contacts.is_empty());
        assert_eq!(read.rejected_contacts, 2);
        let rules: Vec<(&str, &str)> = read
            .rejections
            .iter()
            .map(|r| (r.field.as_str(), r.rule.as_str()))
            .collect();
        assert!(rules.contains(&("", "INVALID_PHONE")), "{rules:?}");
        assert!(rules.contains(&("labels[1]", "NOT_A_STRING")), "{rules:?}");
        assert!(
            rules.contains(&("lastInteraction", "INVALID_DATE")),
            "{rules:?}"
        );
        assert!(rules.contains(&("", "OTHER_RECORD_REJECTED")), "{rules:?}");
    }

    #[test]
    fn a_number_written_twice_in_one_file_keeps_the_first() {
        let guests = object(json!({"573001234567": {"name": "A"}, "+573001234567": {"name": "B"}}));
        let read = read(&FileRecords::default(), &guests.into());
        assert_eq!(read.rejections.len(), 1, "{:?}", read.rejections);
        assert_eq!(read.rejections[0].rule, "DUPLICATE_PHONE");
        assert_eq!(read.rejections[0].key, "573001234567");
        assert_eq!(
            read.contacts[0]
                .guest
                .as_ref()
                .and_then(|g| g.name.as_deref()),
            Some("B")
        );
    }

    #[test]
    fn times_of_each_legacy_spelling_read_and_bad_ones_do_not() {
        assert!(parse_time("2025-01-27").is_some());
        assert!(parse_time("2025-01-27T10:20:30.123Z").is_some());
        assert!(parse_time("2025-01-27T10:20:30").is_some());
        assert_eq!(
            parse_time("2025-01-27 10:20:30"),
            parse_time("2025-01-27T10:20:30Z")
        );
        assert_eq!(
            parse_time("2025-01-27 10:20:30.5-05:00"),
            parse_time("2025-01-27T15:20:30.5Z")
        );
        assert!(parse_time("2025-01-27 ").is_some(), "trimmed to a date");
        assert!(parse_time("2025-01-2é 10:20:30").is_none());
        assert!(parse_time("ayer").is_none());
        assert!(parse_time("2025-02-30").is_none());
        assert!(parse_time("").is_none());
    }

    #[test]
    fn unchanged_records_render_verbatim_and_changed_fields_from_the_columns() {
        let original = object(
            json!({"name": null, "labels": ["a"], "lastInteraction": "2025-01-27", "vip": {"x": 1}}),
        );
        let view = GuestView {
            name: None,
            labels: vec!["a".into()],
            last_activity_at: parse_time("2025-01-27"),
        };
        assert_eq!(render_guest(&original, None, &view), original);
        let changed = GuestView {
            name: Some("Ana".into()),
            ..view
        };
        let rendered = render_guest(&original, None, &changed);
        assert_eq!(rendered["name"], json!("Ana"));
        assert_eq!(rendered["vip"], json!({"x": 1}));
        assert_eq!(rendered["lastInteraction"], json!("2025-01-27"));
    }

    #[test]
    fn a_record_holding_a_nul_is_rejected_with_its_path() {
        let guests = object(json!({"573001234567": {"name": "A", "notes": {"x": "a\u{0}b"}}}));
        let read = read(&FileRecords::default(), &guests.into());
        assert_eq!(read.rejections[0].rule, "NUL_CHARACTER");
        assert_eq!(read.rejections[0].field, "notes.x");
    }
}
