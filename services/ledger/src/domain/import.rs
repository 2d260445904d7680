//! The Firebase import (seed 003, "Fase B: Backfill"): what a Firestore document of each known
//! collection must look like, why a record is turned away, and how a batch is reconciled with
//! its source.
//!
//! A record arrives either as one document of a Firestore JSON export (the client split it by
//! collection and id) or as one NDJSON line `{"collection", "id", "data"}` as read. Reading it
//! either gives a [`Document`] with typed fields, or a [`Quarantined`] record that says why not;
//! nothing is dropped. Timestamps are accepted in both shapes Firestore exports use:
//! `{"_seconds": …, "_nanoseconds": …}` (also `seconds`/`nanoseconds`) and RFC 3339 strings.
//!
//! Reconciliation compares sets of document ids by [`checksum`]: the SHA-256 of the distinct
//! ids sorted by their UTF-8 bytes and joined with `\n`. The client computes it over what it
//! read, the database over what it holds (`COLLATE "C"` orders by bytes too).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use phoenix_runtime::{Violations, quote};

use super::Refusal;

/// Most records one ImportRecords call may carry.
pub const MAX_RECORDS_PER_CALL: usize = 1_000;
/// Most collections a source may declare when the batch is finished.
pub const MAX_SOURCES: usize = 1_000;
/// Longest source file name a record may carry.
pub const MAX_SOURCE_FILE_CHARS: usize = 1_000;
/// Longest collection name a source may declare.
pub const MAX_COLLECTION_CHARS: usize = 200;
/// Characters of a rejected record's text shown in reports.
pub const EXCERPT_CHARS: usize = 200;

/// The collections the import knows; each has a table of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Collection {
    RawSignals,
    Campaigns,
    AuditLogs,
}

impl Collection {
    pub const ALL: [Self; 3] = [Self::RawSignals, Self::Campaigns, Self::AuditLogs];

    /// The Firestore collection name, which is also the table's.
    pub fn name(self) -> &'static str {
        match self {
            Self::RawSignals => "raw_signals",
            Self::Campaigns => "campaigns",
            Self::AuditLogs => "audit_logs",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A Firestore document id. Firestore's own rules (non-empty, at most 1,500 bytes, no `/`, not
/// `.` or `..`, not `__…__`) plus no control characters, since ids are joined with `\n` for the
/// checksums. The database checks the same (`is_firebase_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FirebaseId(String);

impl FirebaseId {
    pub const MAX_BYTES: usize = 1_500;

    pub fn parse(id: &str) -> Result<Self, Rejection> {
        let problem = if id.is_empty() {
            return Err(Rejection::new(
                RejectReason::MissingId,
                "the document has no id",
            ));
        } else if id.len() > Self::MAX_BYTES {
            "is longer than 1,500 bytes"
        } else if id.contains('/') {
            "contains '/'"
        } else if id.chars().any(char::is_control) {
            "contains a control character"
        } else if id == "." || id == ".." {
            "is '.' or '..'"
        } else if id.len() >= 4 && id.starts_with("__") && id.ends_with("__") {
            "is reserved: it starts and ends with '__'"
        } else {
            return Ok(Self(id.to_owned()));
        };
        Err(Rejection::new(
            RejectReason::InvalidId,
            format!("document id {} {problem}", excerpt(id, 60)),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a record was quarantined: a stable code for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The text is not JSON.
    MalformedJson,
    /// JSON, but not an NDJSON record `{"collection", "id", "data"}`.
    MalformedRecord,
    /// Not one of the known collections.
    UnknownCollection,
    /// No document id.
    MissingId,
    /// A document id Firestore (or the checksum) would not allow.
    InvalidId,
    /// The document is not a JSON object.
    NotAnObject,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field has the right type and a wrong value.
    InvalidValue,
    /// A document with this id was already imported with different content.
    ConflictingDuplicate,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedJson => "MALFORMED_JSON",
            Self::MalformedRecord => "MALFORMED_RECORD",
            Self::UnknownCollection => "UNKNOWN_COLLECTION",
            Self::MissingId => "MISSING_ID",
            Self::InvalidId => "INVALID_ID",
            Self::NotAnObject => "NOT_AN_OBJECT",
            Self::MissingField => "MISSING_FIELD",
            Self::WrongType => "WRONG_TYPE",
            Self::InvalidValue => "INVALID_VALUE",
            Self::ConflictingDuplicate => "CONFLICTING_DUPLICATE",
        }
    }
}

/// Why one record cannot be imported, for people and programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Where a record was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub source_file: String,
    /// 1-based; 0 when unknown.
    pub line_number: i64,
}

/// A record as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordContent {
    /// One document of a Firestore JSON export.
    Document {
        collection: String,
        document_id: String,
        json: String,
    },
    /// One NDJSON line, as read.
    NdjsonLine(String),
    /// One NDJSON line that is not UTF-8: its text with the bad bytes replaced, and why.
    Undecodable { lossy: String, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRecord {
    pub origin: Origin,
    pub content: RecordContent,
}

impl IncomingRecord {
    /// The record's text as received: the document's JSON or the NDJSON line.
    pub fn raw_text(&self) -> &str {
        match &self.content {
            RecordContent::Document { json, .. } => json,
            RecordContent::NdjsonLine(line) => line,
            RecordContent::Undecodable { lossy, .. } => lossy,
        }
    }
}

/// The shape of an ImportRecords call: 1 to [`MAX_RECORDS_PER_CALL`] records with sane origins.
/// A bad call is refused whole; bad *content* is quarantined instead.
pub fn check_call(records: &[IncomingRecord], violations: &mut Violations) {
    if records.is_empty() {
        violations.add("records", "NO_RECORDS", "must hold at least one record");
        return;
    }
    if records.len() > MAX_RECORDS_PER_CALL {
        violations.add(
            "records",
            "TOO_MANY_RECORDS",
            format!(
                "holds {} records; at most {MAX_RECORDS_PER_CALL} per call",
                records.len()
            ),
        );
        return;
    }
    for (index, record) in records.iter().enumerate() {
        violations.check(
            record.origin.line_number >= 0,
            &format!("records[{index}].line_number"),
            "INVALID_LINE_NUMBER",
            "must be 0 (unknown) or a 1-based line number",
        );
        let file = &record.origin.source_file;
        violations.check(
            file.chars().count() <= MAX_SOURCE_FILE_CHARS && !file.chars().any(char::is_control),
            &format!("records[{index}].source_file"),
            "INVALID_SOURCE_FILE",
            "must be at most 1,000 characters without control characters",
        );
    }
}

/// A raw signal: one event an app sent (page view, click, sign-up…).
#[derive(Debug, Clone, PartialEq)]
pub struct RawSignal {
    /// Where it came from, e.g. "web", "ios".
    pub source: String,
    /// What happened, e.g. "page_view" (document field `type`).
    pub signal_type: String,
    /// Firebase Auth uid (`userId`); `None` for an anonymous signal.
    pub user_id: Option<String>,
    /// `occurredAt`.
    pub occurred_at: DateTime<Utc>,
    /// `payload`: an object, `{}` when absent.
    pub payload: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
    Ended,
    Archived,
}

impl CampaignStatus {
    const ALL: [Self; 5] = [
        Self::Draft,
        Self::Active,
        Self::Paused,
        Self::Ended,
        Self::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Paused => "PAUSED",
            Self::Ended => "ENDED",
            Self::Archived => "ARCHIVED",
        }
    }

    /// Firestore documents spell it in any case ("active", "ACTIVE").
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(value.trim()))
    }
}

/// A marketing campaign. The budget is exact, in the currency's minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub name: String,
    pub status: CampaignStatus,
    /// `budgetMinor`: 150000 is 1,500.00 EUR.
    pub budget_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// `startAt`, `endAt`: both optional (a draft has no dates); the end is not before the start.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Who did what to what, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLog {
    pub actor: String,
    pub action: String,
    /// `None` when the action has no object (e.g. a sign-in).
    pub target: Option<String>,
    pub at: DateTime<Utc>,
}

/// The typed fields of a document, by collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    RawSignal(RawSignal),
    Campaign(Campaign),
    AuditLog(AuditLog),
}

/// A document that may be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub collection: Collection,
    pub id: FirebaseId,
    pub fields: Fields,
    /// The document as sent, kept next to the typed columns.
    pub original: Value,
}

/// A record turned away, with everything the quarantine keeps. `collection` and `firebase_id`
/// are as given (`""` and `None` when unknown), even when they are the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub origin: Origin,
    pub collection: String,
    pub firebase_id: Option<String>,
    pub reason: RejectReason,
    pub message: String,
    pub raw_text: String,
}

/// Reads one record: a document ready to import, or why it is quarantined.
pub fn read_record(record: &IncomingRecord) -> Result<Document, Box<Quarantined>> {
    let (collection, id, data) = match &record.content {
        RecordContent::Document {
            collection,
            document_id,
            json,
        } => {
            let data = serde_json::from_str::<Value>(json).map_err(|e| {
                Rejection::new(
                    RejectReason::MalformedJson,
                    format!("the document is not valid JSON: {e}"),
                )
            });
            (collection.clone(), non_empty(document_id), data)
        }
        RecordContent::Undecodable { error, .. } => {
            let rejection = Rejection::new(
                RejectReason::MalformedJson,
                format!("the line is not valid UTF-8: {error}"),
            );
            return Err(quarantine(record, String::new(), None, rejection));
        }
        RecordContent::NdjsonLine(line) => match read_ndjson_envelope(line) {
            Ok(envelope) => (envelope.collection, envelope.id, envelope.data),
            Err(rejection) => {
                let identity = ndjson_partial_identity(line);
                return Err(quarantine(record, identity.0, identity.1, rejection));
            }
        },
    };
    document(&collection, id.as_deref(), data)
        .map_err(|rejection| quarantine(record, collection, id, rejection))
}

fn quarantine(
    record: &IncomingRecord,
    collection: String,
    firebase_id: Option<String>,
    rejection: Rejection,
) -> Box<Quarantined> {
    Box::new(Quarantined {
        origin: record.origin.clone(),
        collection,
        firebase_id,
        reason: rejection.reason,
        message: rejection.message,
        raw_text: record.raw_text().to_owned(),
    })
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// An NDJSON line split into collection, id (if a non-empty string) and the parsed data.
struct Envelope {
    collection: String,
    id: Option<String>,
    data: Result<Value, Rejection>,
}

fn read_ndjson_envelope(line: &str) -> Result<Envelope, Rejection> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        Rejection::new(
            RejectReason::MalformedJson,
            format!("the line is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(Rejection::new(
            RejectReason::MalformedRecord,
            format!(
                "an NDJSON record is an object {{\"collection\", \"id\", \"data\"}}, not {}",
                json_type(&value)
            ),
        ));
    };
    let collection = match object.remove("collection") {
        Some(Value::String(collection)) => collection,
        None | Some(Value::Null) => {
            return Err(Rejection::new(
                RejectReason::MalformedRecord,
                "the record has no \"collection\"",
            ));
        }
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::MalformedRecord,
                format!("\"collection\" must be a string, not {}", json_type(&other)),
            ));
        }
    };
    let id = match object.remove("id") {
        Some(Value::String(id)) => non_empty(&id),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::InvalidId,
                format!("\"id\" must be a string, not {}", json_type(&other)),
            ));
        }
    };
    let data = match object.remove("data") {
        Some(data) => Ok(data),
        None => Err(Rejection::new(
            RejectReason::MalformedRecord,
            "the record has no \"data\"",
        )),
    };
    Ok(Envelope {
        collection,
        id,
        data,
    })
}

/// The collection and id a malformed NDJSON line names, as far as they can be read.
fn ndjson_partial_identity(line: &str) -> (String, Option<String>) {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
        return (String::new(), None);
    };
    let text = |key: &str| match object.get(key) {
        Some(Value::String(value)) => value.clone(),
        _ => String::new(),
    };
    (text("collection"), non_empty(&text("id")))
}

/// The collection and id an NDJSON line names, when both are non-empty strings: what a client
/// counts as a document of the source. The server records the same pair for the line whether
/// it imports or quarantines it, so the two sides reconcile.
pub fn ndjson_identity(line: &str) -> Option<(String, String)> {
    let (collection, id) = ndjson_partial_identity(line);
    source_identity(&collection, id.as_deref().unwrap_or_default())
}

/// A document of the source as the reconciliation counts it: both names non-empty, in the form
/// the database stores them ([`storable`]).
pub fn source_identity(collection: &str, id: &str) -> Option<(String, String)> {
    (!collection.is_empty() && !id.is_empty()).then(|| (storable(collection), storable(id)))
}

fn document(
    collection: &str,
    id: Option<&str>,
    data: Result<Value, Rejection>,
) -> Result<Document, Rejection> {
    let known = Collection::parse(collection).ok_or_else(|| {
        let message = if collection.is_empty() {
            "the record names no collection".to_owned()
        } else {
            format!(
                "unknown collection {}; known: raw_signals, campaigns, audit_logs",
                excerpt(collection, 60)
            )
        };
        Rejection::new(RejectReason::UnknownCollection, message)
    })?;
    let id = FirebaseId::parse(id.unwrap_or_default())?;
    let data = data?;
    let Value::Object(object) = &data else {
        return Err(Rejection::new(
            RejectReason::NotAnObject,
            format!("a document is a JSON object, not {}", json_type(&data)),
        ));
    };
    if let Some(path) = nul_path(&data, String::new()) {
        return Err(Rejection::new(
            RejectReason::InvalidValue,
            format!("{path} contains a NUL character (\\u0000), which PostgreSQL cannot store"),
        ));
    }
    let fields = FieldReader(object);
    let fields = match known {
        Collection::RawSignals => Fields::RawSignal(RawSignal {
            source: fields.text("source", 200)?,
            signal_type: fields.text("type", 200)?,
            user_id: fields.optional_text("userId", 200)?,
            occurred_at: fields.time("occurredAt")?,
            payload: fields
                .optional_object("payload")?
                .unwrap_or_else(|| Value::Object(Map::new())),
        }),
        Collection::Campaigns => {
            let status = fields.text("status", 40)?;
            let status = CampaignStatus::parse(&status).ok_or_else(|| {
                Rejection::new(
                    RejectReason::InvalidValue,
                    format!(
                        "field \"status\" is {}; expected draft, active, paused, ended or archived",
                        excerpt(&status, 40)
                    ),
                )
            })?;
            let budget_minor = fields.integer("budgetMinor")?;
            if budget_minor < 0 {
                return Err(Rejection::new(
                    RejectReason::InvalidValue,
                    format!("field \"budgetMinor\" is {budget_minor}; a budget is not negative"),
                ));
            }
            let currency = fields.text("currency", 3)?.to_ascii_uppercase();
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(Rejection::new(
                    RejectReason::InvalidValue,
                    format!(
                        "field \"currency\" is {currency:?}; expected a 3-letter ISO 4217 code"
                    ),
                ));
            }
            let starts_at = fields.optional_time("startAt")?;
            let ends_at = fields.optional_time("endAt")?;
            if let (Some(start), Some(end)) = (starts_at, ends_at)
                && end < start
            {
                return Err(Rejection::new(
                    RejectReason::InvalidValue,
                    format!("field \"endAt\" ({end}) is before \"startAt\" ({start})"),
                ));
            }
            Fields::Campaign(Campaign {
                name: fields.text("name", 500)?,
                status,
                budget_minor,
                currency,
                starts_at,
                ends_at,
            })
        }
        Collection::AuditLogs => Fields::AuditLog(AuditLog {
            actor: fields.text("actor", 200)?,
            action: fields.text("action", 200)?,
            target: fields.optional_text("target", 500)?,
            at: fields.time("at")?,
        }),
    };
    Ok(Document {
        collection: known,
        id,
        fields,
        original: data,
    })
}

/// Typed access to a document's fields; absent and `null` are the same.
struct FieldReader<'a>(&'a Map<String, Value>);

impl FieldReader<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn missing(name: &str) -> Rejection {
        Rejection::new(
            RejectReason::MissingField,
            format!("required field \"{name}\" is missing"),
        )
    }

    fn wrong_type(name: &str, expected: &str, value: &Value) -> Rejection {
        Rejection::new(
            RejectReason::WrongType,
            format!(
                "field \"{name}\" must be {expected}, not {} ({})",
                json_type(value),
                excerpt(&value.to_string(), 40)
            ),
        )
    }

    /// A required, non-blank string of at most `max` characters, trimmed.
    fn text(&self, name: &str, max: usize) -> Result<String, Rejection> {
        self.optional_text(name, max)?
            .ok_or_else(|| Self::missing(name))
    }

    /// An optional string: absent, `null` and blank are `None`.
    fn optional_text(&self, name: &str, max: usize) -> Result<Option<String>, Rejection> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let Value::String(text) = value else {
            return Err(Self::wrong_type(name, "a string", value));
        };
        let text = text.trim();
        if text.chars().count() > max {
            return Err(Rejection::new(
                RejectReason::InvalidValue,
                format!("field \"{name}\" is longer than {max} characters"),
            ));
        }
        Ok(non_empty(text))
    }

    fn integer(&self, name: &str) -> Result<i64, Rejection> {
        let value = self.get(name).ok_or_else(|| Self::missing(name))?;
        match value {
            Value::Number(number) if number.is_i64() || number.is_u64() => {
                number.as_i64().ok_or_else(|| {
                    Rejection::new(
                        RejectReason::InvalidValue,
                        format!("field \"{name}\" is too large for a 64-bit integer"),
                    )
                })
            }
            _ => Err(Self::wrong_type(
                name,
                "an integer number of minor units (150000 for 1,500.00)",
                value,
            )),
        }
    }

    fn optional_object(&self, name: &str) -> Result<Option<Value>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
            Some(value) => Err(Self::wrong_type(name, "an object", value)),
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, Rejection> {
        self.optional_time(name)?.ok_or_else(|| Self::missing(name))
    }

    fn optional_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
        self.get(name)
            .map(|value| timestamp(name, value))
            .transpose()
    }
}

/// A Firestore timestamp: `{"_seconds": s, "_nanoseconds": n}` (or `seconds`/`nanoseconds`, as
/// `Timestamp.toJSON()` writes it) or an RFC 3339 string, between the years 1 and 9999.
pub fn timestamp(name: &str, value: &Value) -> Result<DateTime<Utc>, Rejection> {
    const EXPECTED: &str =
        "a timestamp: an RFC 3339 string or {\"_seconds\": …, \"_nanoseconds\": …}";
    let invalid = |what: String| {
        Rejection::new(
            RejectReason::InvalidValue,
            format!("field \"{name}\" {what}"),
        )
    };
    let time = match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text.trim())
            .map_err(|e| invalid(format!("is not an RFC 3339 timestamp ({e}): {text:?}")))?
            .with_timezone(&Utc),
        Value::Object(object) => {
            let part = |keys: [&str; 2]| keys.into_iter().find_map(|key| object.get(key));
            let Some(seconds) = part(["_seconds", "seconds"]) else {
                return Err(FieldReader::wrong_type(name, EXPECTED, value));
            };
            let seconds = seconds
                .as_i64()
                .ok_or_else(|| FieldReader::wrong_type(name, EXPECTED, value))?;
            let nanos = match part(["_nanoseconds", "nanoseconds"]) {
                None => 0,
                Some(nanos) => nanos
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n < 1_000_000_000)
                    .ok_or_else(|| invalid("has nanoseconds outside 0..999999999".to_owned()))?,
            };
            DateTime::from_timestamp(seconds, nanos)
                .ok_or_else(|| invalid(format!("is out of range ({seconds} seconds)")))?
        }
        _ => return Err(FieldReader::wrong_type(name, EXPECTED, value)),
    };
    if !(1..=9999).contains(&time.year()) {
        return Err(invalid(format!("is out of range ({time})")));
    }
    Ok(time)
}

/// The path of the first string or key holding a NUL character, if any.
fn nul_path(value: &Value, path: String) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "the document".to_owned()
        } else {
            format!("field \"{path}\"")
        }
    };
    match value {
        Value::String(text) if text.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(object) => object.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(format!("field name \"{}\"", child.replace('\0', "\\u0000")))
            } else {
                nul_path(item, child)
            }
        }),
        _ => None,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` characters of `text`, quoted, with "…" when cut.
fn excerpt(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// Text PostgreSQL can store: NUL characters become U+FFFD.
pub fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// A document to import, with where it arrived in the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Position in the call, to keep the quarantine in arrival order.
    pub index: usize,
    pub origin: Origin,
    pub document: Document,
    pub raw_text: String,
}

/// What one ImportRecords call brings, before the database has its say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportPlan {
    /// The first record of each (collection, id), in arrival order.
    pub documents: Vec<Planned>,
    /// Later records of the same document with the same content: duplicates.
    pub repeats: i64,
    /// Records turned away, each with its position in the call.
    pub quarantined: Vec<(usize, Quarantined)>,
}

/// Reads every record of a call. A document repeated within the call is imported once: a
/// repeat with the same content is a duplicate, one with different content is quarantined
/// (which of two different versions is right is a question for a person, not the import).
pub fn plan(records: &[IncomingRecord]) -> ImportPlan {
    let mut plan = ImportPlan::default();
    let mut first: HashMap<(Collection, FirebaseId), usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        match read_record(record) {
            Ok(document) => {
                let key = (document.collection, document.id.clone());
                match first.get(&key) {
                    None => {
                        first.insert(key, plan.documents.len());
                        plan.documents.push(Planned {
                            index,
                            origin: record.origin.clone(),
                            document,
                            raw_text: record.raw_text().to_owned(),
                        });
                    }
                    Some(&at) if plan.documents[at].document.original == document.original => {
                        plan.repeats += 1;
                    }
                    Some(&at) => {
                        let earlier = &plan.documents[at].origin;
                        plan.quarantined.push((
                            index,
                            Quarantined {
                                origin: record.origin.clone(),
                                collection: document.collection.name().to_owned(),
                                firebase_id: Some(document.id.as_str().to_owned()),
                                reason: RejectReason::ConflictingDuplicate,
                                message: format!(
                                    "a different document with id {} came first, at {}",
                                    excerpt(document.id.as_str(), 60),
                                    place(earlier)
                                ),
                                raw_text: record.raw_text().to_owned(),
                            },
                        ));
                    }
                }
            }
            Err(quarantined) => plan.quarantined.push((index, *quarantined)),
        }
    }
    plan
}

fn place(origin: &Origin) -> String {
    match (origin.source_file.as_str(), origin.line_number) {
        ("", 0) => "an unknown place".to_owned(),
        ("", line) => format!("line {line}"),
        (file, 0) => file.to_owned(),
        (file, line) => format!("{file}:{line}"),
    }
}

/// A planned document whose id is already imported with different content (by `batch_id`).
pub fn conflicting(planned: &Planned, batch_id: Uuid) -> Quarantined {
    Quarantined {
        origin: planned.origin.clone(),
        collection: planned.document.collection.name().to_owned(),
        firebase_id: Some(planned.document.id.as_str().to_owned()),
        reason: RejectReason::ConflictingDuplicate,
        message: format!(
            "document {} was already imported by batch {batch_id} with different content",
            excerpt(planned.document.id.as_str(), 60)
        ),
        raw_text: planned.raw_text.clone(),
    }
}

/// The checksum of a set of document ids: lower-case hex SHA-256 of the distinct ids sorted by
/// their UTF-8 bytes and joined with `\n`. The empty set hashes the empty string. In SQL:
/// `encode(sha256(convert_to(coalesce(string_agg(id, E'\n' ORDER BY id COLLATE "C"), ''),
/// 'UTF8')), 'hex')` over distinct ids.
pub fn checksum<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    // `str`'s order is the order of its UTF-8 bytes.
    let sorted: BTreeSet<&str> = ids.into_iter().collect();
    let mut hasher = Sha256::new();
    for (i, id) in sorted.iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(id.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchStatus {
    Running,
    Completed,
    Failed,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Running, Self::Completed, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// One run of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportBatch {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub source_name: String,
    pub status: BatchStatus,
    pub records_read: i64,
    pub inserted: i64,
    pub duplicates: i64,
    pub quarantined: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl ImportBatch {
    /// Records and the finish are accepted only while the batch runs.
    pub fn require_running(&self) -> Result<(), Refusal> {
        if self.status == BatchStatus::Running {
            return Ok(());
        }
        Err(Refusal::precondition(
            "IMPORT_BATCH_FINISHED",
            format!(
                "import batch {} is {}; start a new batch to import again",
                self.id,
                self.status.as_str()
            ),
        )
        .at("batch_id")
        .with("batch_id", self.id)
        .with("status", self.status.as_str()))
    }
}

/// The name of a source: 1-200 characters without control characters, trimmed.
pub fn source_name(name: &str, violations: &mut Violations) -> String {
    let name = name.trim();
    violations.check(
        !(name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control)),
        "source_name",
        "INVALID_SOURCE_NAME",
        "is required: 1-200 characters without control characters (e.g. firebase-prod-2025-12-01)",
    );
    name.to_owned()
}

/// What the client read of one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCollection {
    pub collection: String,
    pub document_count: i64,
    pub checksum: String,
}

/// The client's declaration at the finish: names unique and sane, counts not negative,
/// checksums 64 lower-case hex digits.
pub fn check_sources(sources: &[SourceCollection], violations: &mut Violations) {
    if sources.len() > MAX_SOURCES {
        violations.add(
            "sources",
            "TOO_MANY_SOURCES",
            format!(
                "declares {} collections; at most {MAX_SOURCES}",
                sources.len()
            ),
        );
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, source) in sources.iter().enumerate() {
        let name = &source.collection;
        let field = format!("sources[{i}].collection");
        if name.is_empty()
            || name.chars().count() > MAX_COLLECTION_CHARS
            || name.chars().any(char::is_control)
        {
            violations.add(
                field,
                "INVALID_COLLECTION",
                "is required: 1-200 characters without control characters",
            );
        } else if !seen.insert(name.as_str()) {
            violations.add(
                field,
                "DUPLICATE_COLLECTION",
                format!("{} is declared twice", quote(name)),
            );
        }
        violations.check(
            source.document_count >= 0,
            &format!("sources[{i}].document_count"),
            "INVALID_COUNT",
            "must not be negative",
        );
        let hex = source.checksum.len() == 64
            && source
                .checksum
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        violations.check(
            hex,
            &format!("sources[{i}].checksum"),
            "INVALID_CHECKSUM",
            "must be a SHA-256 in 64 lower-case hex digits",
        );
    }
}

/// What the database holds of one collection for a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseCollection {
    pub collection: String,
    pub imported_count: i64,
    pub imported_checksum: String,
    pub quarantined_count: i64,
    pub accounted_count: i64,
    pub accounted_checksum: String,
}

/// One collection of the validation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionReport {
    pub collection: String,
    /// `None` until the client declared its counts.
    pub source: Option<SourceCollection>,
    pub database: DatabaseCollection,
    pub matches: bool,
}

/// Compares the source with the database, one entry per collection either side names, by name.
/// A collection matches when what was imported plus what was quarantined (by id) is exactly the
/// source's set of ids; `sources` is `None` while the batch runs, and nothing matches then.
pub fn reconcile(
    sources: Option<&[SourceCollection]>,
    database: &[DatabaseCollection],
) -> Vec<CollectionReport> {
    let mut names: BTreeMap<&str, (Option<&SourceCollection>, Option<&DatabaseCollection>)> =
        BTreeMap::new();
    for source in sources.unwrap_or_default() {
        names.entry(&source.collection).or_default().0 = Some(source);
    }
    for held in database {
        names.entry(&held.collection).or_default().1 = Some(held);
    }
    names
        .into_iter()
        .map(|(name, (source, held))| {
            let database = held.cloned().unwrap_or_else(|| {
                let empty = checksum([]);
                DatabaseCollection {
                    collection: name.to_owned(),
                    imported_count: 0,
                    imported_checksum: empty.clone(),
                    quarantined_count: 0,
                    accounted_count: 0,
                    accounted_checksum: empty,
                }
            });
            let source = match (sources, source) {
                (None, _) => None,
                (Some(_), Some(source)) => Some(source.clone()),
                // Declared nothing for a collection the batch saw: the source had none of it.
                (Some(_), None) => Some(SourceCollection {
                    collection: name.to_owned(),
                    document_count: 0,
                    checksum: checksum([]),
                }),
            };
            let matches = source.as_ref().is_some_and(|s| {
                s.document_count == database.accounted_count
                    && s.checksum == database.accounted_checksum
            });
            CollectionReport {
                collection: name.to_owned(),
                source,
                database,
                matches,
            }
        })
        .collect()
}

/// How a batch ends: `Ok` when every collection matches, else why not, for the batch's error.
pub fn verdict(reports: &[CollectionReport]) -> Result<(), String> {
    let problems: Vec<String> = reports
        .iter()
        .filter(|r| !r.matches)
        .map(|r| {
            let declared = r.source.as_ref().map_or(0, |s| s.document_count);
            let held = &r.database;
            if declared == held.accounted_count {
                format!(
                    "{}: {declared} documents on both sides, but the ids differ (checksums do not match)",
                    r.collection
                )
            } else {
                format!(
                    "{}: the source has {declared} documents, the database accounts for {} ({} imported, {} quarantined records)",
                    r.collection, held.accounted_count, held.imported_count, held.quarantined_count
                )
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A quarantined record as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    pub origin: Origin,
    pub collection: String,
    pub document_id: Option<String>,
    /// A [`RejectReason::code`].
    pub reason: String,
    pub message: String,
    /// At most [`EXCERPT_CHARS`] characters of the record's text.
    pub raw_excerpt: String,
}

impl RejectedRecord {
    pub fn new(quarantined: &Quarantined) -> Self {
        Self {
            origin: quarantined.origin.clone(),
            collection: quarantined.collection.clone(),
            document_id: quarantined.firebase_id.clone(),
            reason: quarantined.reason.code().to_owned(),
            message: quarantined.message.clone(),
            raw_excerpt: quarantined.raw_text.chars().take(EXCERPT_CHARS).collect(),
        }
    }
}

/// The validation report of a batch, with one page of its rejected records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub batch: ImportBatch,
    pub collections: Vec<CollectionReport>,
    pub rejected_count: i64,
    pub rejected: Vec<RejectedRecord>,
    /// Quarantine position to continue after, when there are more.
    pub next_after: Option<i64>,
}

impl ImportReport {
    /// Finished, and every collection matches.
    pub fn matches(&self) -> bool {
        self.batch.status != BatchStatus::Running && self.collections.iter().all(|c| c.matches)
    }
}

/// What one ImportRecords call did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub inserted: i64,
    pub duplicates: i64,
    pub quarantined: i64,
    pub rejected: Vec<RejectedRecord>,
    pub batch: ImportBatch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin(line: i64) -> Origin {
        Origin {
            source_file: "export.ndjson".into(),
            line_number: line,
        }
    }

    fn line(line_number: i64, text: &str) -> IncomingRecord {
        IncomingRecord {
            origin: origin(line_number),
            content: RecordContent::NdjsonLine(text.to_owned()),
        }
    }

    fn doc(collection: &str, id: &str, json: &Value) -> IncomingRecord {
        IncomingRecord {
            origin: origin(1),
            content: RecordContent::Document {
                collection: collection.into(),
                document_id: id.into(),
                json: json.to_string(),
            },
        }
    }

    fn signal() -> Value {
        json!({
            "source": "web", "type": "page_view", "userId": "u1",
            "occurredAt": {"_seconds": 1_733_050_800, "_nanoseconds": 500},
            "payload": {"path": "/pricing"}
        })
    }

    fn campaign() -> Value {
        json!({
            "name": "Black Friday", "status": "active", "budgetMinor": 150_000,
            "currency": "eur", "startAt": "2025-11-28T00:00:00Z", "endAt": "2025-12-01T23:59:59Z"
        })
    }

    fn rejected(record: &IncomingRecord) -> Quarantined {
        *read_record(record).expect_err("quarantined")
    }

    #[test]
    fn a_raw_signal_is_read_with_typed_fields() {
        let document = read_record(&doc("raw_signals", "sig-1", &signal())).expect("valid");
        assert_eq!(document.collection, Collection::RawSignals);
        assert_eq!(document.id.as_str(), "sig-1");
        let Fields::RawSignal(signal) = &document.fields else {
            panic!("a raw signal")
        };
        assert_eq!(signal.signal_type, "page_view");
        assert_eq!(signal.user_id.as_deref(), Some("u1"));
        assert_eq!(
            signal.occurred_at,
            DateTime::from_timestamp(1_733_050_800, 500).expect("time")
        );
        assert_eq!(signal.payload, json!({"path": "/pricing"}));
        assert_eq!(document.original, self::signal());
    }

    #[test]
    fn timestamps_come_as_seconds_objects_or_rfc3339_strings() {
        let expected = DateTime::from_timestamp(1_700_000_000, 250_000_000).expect("time");
        for value in [
            json!({"_seconds": 1_700_000_000, "_nanoseconds": 250_000_000}),
            json!({"seconds": 1_700_000_000, "nanoseconds": 250_000_000, "type": "firestore/timestamp/1.0"}),
            json!("2023-11-14T22:13:20.25Z"),
            json!("2023-11-14T23:13:20.25+01:00"),
        ] {
            assert_eq!(timestamp("at", &value), Ok(expected), "{value}");
        }
        let reason = |value: Value| timestamp("at", &value).expect_err("refused").reason;
        assert_eq!(reason(json!(1_700_000_000)), RejectReason::WrongType);
        assert_eq!(reason(json!({"_seconds": "soon"})), RejectReason::WrongType);
        assert_eq!(reason(json!({"_nanoseconds": 1})), RejectReason::WrongType);
        assert_eq!(
            reason(json!({"_seconds": 1, "_nanoseconds": 1_000_000_000})),
            RejectReason::InvalidValue
        );
        assert_eq!(reason(json!("yesterday")), RejectReason::InvalidValue);
        assert_eq!(
            reason(json!({"_seconds": 400_000_000_000_i64})),
            RejectReason::InvalidValue
        );
    }

    #[test]
    fn a_campaign_budget_is_an_exact_integer_of_minor_units() {
        let document = read_record(&doc("campaigns", "c1", &campaign())).expect("valid");
        let Fields::Campaign(campaign) = document.fields else {
            panic!("a campaign")
        };
        assert_eq!(campaign.budget_minor, 150_000);
        assert_eq!(campaign.currency, "EUR");
        assert_eq!(campaign.status, CampaignStatus::Active);

        let with = |key: &str, value: Value| {
            let mut document = self::campaign();
            document[key] = value;
            rejected(&doc("campaigns", "c1", &document))
        };
        let float = with("budgetMinor", json!(1500.5));
        assert_eq!(float.reason, RejectReason::WrongType);
        assert!(float.message.contains("budgetMinor"), "{}", float.message);
        assert_eq!(
            with("budgetMinor", json!("150000")).reason,
            RejectReason::WrongType
        );
        assert_eq!(
            with("budgetMinor", json!(-1)).reason,
            RejectReason::InvalidValue
        );
        assert_eq!(
            with("status", json!("live")).reason,
            RejectReason::InvalidValue
        );
        assert_eq!(
            with("currency", json!("E1")).reason,
            RejectReason::InvalidValue
        );
        assert_eq!(
            with("endAt", json!("2025-01-01T00:00:00Z")).reason,
            RejectReason::InvalidValue
        );
        assert_eq!(with("name", Value::Null).reason, RejectReason::MissingField);
    }

    #[test]
    fn an_audit_log_needs_actor_action_and_time() {
        let log = json!({"actor": "u1", "action": "campaign.pause", "target": "campaigns/c1", "at": "2025-12-01T10:00:00Z"});
        let document = read_record(&doc("audit_logs", "a1", &log)).expect("valid");
        assert!(matches!(
            document.fields,
            Fields::AuditLog(AuditLog {
                target: Some(_),
                ..
            })
        ));
        let missing = rejected(&doc(
            "audit_logs",
            "a1",
            &json!({"actor": "u1", "at": "2025-12-01T10:00:00Z"}),
        ));
        assert_eq!(missing.reason, RejectReason::MissingField);
        assert!(
            missing.message.contains("\"action\""),
            "{}",
            missing.message
        );
        let wrong = rejected(&doc(
            "audit_logs",
            "a1",
            &json!({"actor": 7, "action": "x", "at": "2025-12-01T10:00:00Z"}),
        ));
        assert_eq!(wrong.reason, RejectReason::WrongType);
    }

    #[test]
    fn an_ndjson_line_is_an_envelope_around_a_document() {
        let text = json!({"collection": "raw_signals", "id": "s1", "data": signal()}).to_string();
        let document = read_record(&line(3, &text)).expect("valid");
        assert_eq!(document.id.as_str(), "s1");
        assert_eq!(
            ndjson_identity(&text),
            Some(("raw_signals".to_owned(), "s1".to_owned()))
        );
    }

    #[test]
    fn every_malformed_record_is_quarantined_with_a_reason_and_what_is_known() {
        let cases = [
            (
                r#"{"collection": "raw_signals", "id": "s1", "data": {"#,
                RejectReason::MalformedJson,
                "",
                None,
            ),
            (
                r#"["raw_signals", "s1"]"#,
                RejectReason::MalformedRecord,
                "",
                None,
            ),
            (
                r#"{"id": "s1", "data": {}}"#,
                RejectReason::MalformedRecord,
                "",
                Some("s1"),
            ),
            (
                r#"{"collection": "raw_signals", "id": "s1"}"#,
                RejectReason::MalformedRecord,
                "raw_signals",
                Some("s1"),
            ),
            (
                r#"{"collection": "users", "id": "u1", "data": {}}"#,
                RejectReason::UnknownCollection,
                "users",
                Some("u1"),
            ),
            (
                r#"{"collection": "campaigns", "data": {}}"#,
                RejectReason::MissingId,
                "campaigns",
                None,
            ),
            (
                r#"{"collection": "campaigns", "id": 42, "data": {}}"#,
                RejectReason::InvalidId,
                "campaigns",
                None,
            ),
            (
                r#"{"collection": "campaigns", "id": "a/b", "data": {}}"#,
                RejectReason::InvalidId,
                "campaigns",
                Some("a/b"),
            ),
            (
                r#"{"collection": "campaigns", "id": "c1", "data": [1]}"#,
                RejectReason::NotAnObject,
                "campaigns",
                Some("c1"),
            ),
            (
                r#"{"collection": "audit_logs", "id": "a1", "data": {"actor": "x\u0000", "action": "y", "at": "2025-01-01T00:00:00Z"}}"#,
                RejectReason::InvalidValue,
                "audit_logs",
                Some("a1"),
            ),
        ];
        for (text, reason, collection, id) in cases {
            let quarantined = rejected(&line(7, text));
            assert_eq!(
                quarantined.reason, reason,
                "{text}: {}",
                quarantined.message
            );
            assert_eq!(quarantined.collection, collection, "{text}");
            assert_eq!(quarantined.firebase_id.as_deref(), id, "{text}");
            assert_eq!(quarantined.origin.line_number, 7);
            assert_eq!(quarantined.raw_text, text);
            assert!(!quarantined.message.is_empty());
            // The client counts a line exactly when the server records both collection and id.
            let counted = ndjson_identity(text).is_some();
            assert_eq!(counted, !collection.is_empty() && id.is_some(), "{text}");
        }
    }

    #[test]
    fn firebase_ids_follow_firestore_rules() {
        for good in ["abc", "sig_0001", "Ünïcode id", "a.b", "__x", "x__"] {
            assert!(FirebaseId::parse(good).is_ok(), "{good}");
        }
        assert_eq!(
            FirebaseId::parse("").expect_err("empty").reason,
            RejectReason::MissingId
        );
        for bad in ["a/b", ".", "..", "__x__", "line\nbreak", &"x".repeat(1501)] {
            assert_eq!(
                FirebaseId::parse(bad).expect_err(bad).reason,
                RejectReason::InvalidId,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_document_repeated_in_a_call_is_imported_once() {
        let records = [
            doc("raw_signals", "s1", &signal()),
            doc("raw_signals", "s1", &signal()),
            doc("campaigns", "s1", &campaign()),
            doc(
                "raw_signals",
                "s1",
                &json!({"source": "ios", "type": "t", "occurredAt": "2025-01-01T00:00:00Z"}),
            ),
            line(9, "not json"),
        ];
        let plan = plan(&records);
        assert_eq!(plan.documents.len(), 2, "s1 in two collections");
        assert_eq!(plan.repeats, 1);
        let reasons: Vec<_> = plan
            .quarantined
            .iter()
            .map(|(i, q)| (*i, q.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                (3, RejectReason::ConflictingDuplicate),
                (4, RejectReason::MalformedJson)
            ]
        );
    }

    #[test]
    fn a_call_holds_one_to_a_thousand_records() {
        let checked = |records: &[IncomingRecord]| {
            let mut violations = Violations::new();
            check_call(records, &mut violations);
            violations.finish()
        };
        assert_eq!(checked(&[]).expect_err("empty").reason, "NO_RECORDS");
        let many = vec![line(1, "{}"); MAX_RECORDS_PER_CALL + 1];
        let refusal = checked(&many).expect_err("too many");
        assert_eq!(refusal.reason, "TOO_MANY_RECORDS");
        assert_eq!(refusal.field(), Some("records"));
        assert!(checked(&many[..MAX_RECORDS_PER_CALL]).is_ok());
        let negative = [line(-1, "{}")];
        assert_eq!(
            checked(&negative).expect_err("negative").field(),
            Some("records[0].line_number")
        );
    }

    #[test]
    fn the_checksum_is_over_distinct_ids_in_byte_order() {
        assert_eq!(
            checksum([]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(checksum(["b", "a", "b"]), sha_hex("a\nb"));
        // Byte order, not a locale's: "B" (0x42) < "a" (0x61) < "é" (0xc3 0xa9).
        assert_eq!(checksum(["é", "a", "B"]), sha_hex("B\na\né"));
        assert_eq!(checksum(["a", "b"]), sha_hex("a\nb"));
    }

    fn sha_hex(text: &str) -> String {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn held(collection: &str, ids: &[&str], quarantined: &[&str]) -> DatabaseCollection {
        let accounted: BTreeSet<&str> = ids.iter().chain(quarantined).copied().collect();
        DatabaseCollection {
            collection: collection.into(),
            imported_count: ids.len() as i64,
            imported_checksum: checksum(ids.iter().copied()),
            quarantined_count: quarantined.len() as i64,
            accounted_count: accounted.len() as i64,
            accounted_checksum: checksum(accounted),
        }
    }

    fn declared(collection: &str, ids: &[&str]) -> SourceCollection {
        SourceCollection {
            collection: collection.into(),
            document_count: ids.len() as i64,
            checksum: checksum(ids.iter().copied()),
        }
    }

    #[test]
    fn a_collection_matches_when_imported_and_quarantined_ids_are_the_source() {
        let sources = [
            declared("campaigns", &["c1", "c2", "c3"]),
            declared("raw_signals", &["s1"]),
        ];
        let database = [
            held("campaigns", &["c1", "c2"], &["c3"]),
            held("raw_signals", &["s2"], &[]),
            held("users", &[], &["u1"]),
        ];
        let reports = reconcile(Some(&sources), &database);
        let summary: Vec<_> = reports
            .iter()
            .map(|r| (r.collection.as_str(), r.matches))
            .collect();
        assert_eq!(
            summary,
            [
                ("campaigns", true),
                ("raw_signals", false),
                ("users", false)
            ]
        );
        let error = verdict(&reports).expect_err("mismatch");
        assert!(
            error.contains("raw_signals: 1 documents on both sides, but the ids differ"),
            "{error}"
        );
        assert!(
            error.contains("users: the source has 0 documents, the database accounts for 1"),
            "{error}"
        );

        assert!(
            reconcile(None, &database)
                .iter()
                .all(|r| !r.matches && r.source.is_none())
        );
        let good = reconcile(Some(&sources[..1]), &database[..1]);
        assert_eq!(verdict(&good), Ok(()));
    }

    #[test]
    fn declared_sources_are_checked() {
        let checked = |sources: &[SourceCollection]| {
            let mut violations = Violations::new();
            check_sources(sources, &mut violations);
            violations.finish()
        };
        let good = declared("campaigns", &["c1"]);
        assert!(checked(std::slice::from_ref(&good)).is_ok());
        let bad = [
            good.clone(),
            good.clone(),
            SourceCollection {
                collection: String::new(),
                document_count: -1,
                checksum: "ABC".into(),
            },
        ];
        let fields: Vec<_> = checked(&bad)
            .expect_err("bad")
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "sources[1].collection",
                "sources[2].collection",
                "sources[2].document_count",
                "sources[2].checksum"
            ]
        );
    }

    #[test]
    fn a_finished_batch_takes_nothing_more() {
        let mut batch = ImportBatch {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            source_name: "s".into(),
            status: BatchStatus::Running,
            records_read: 0,
            inserted: 0,
            duplicates: 0,
            quarantined: 0,
            started_at: DateTime::UNIX_EPOCH,
            finished_at: None,
            error: None,
        };
        assert!(batch.require_running().is_ok());
        batch.status = BatchStatus::Completed;
        let refusal = batch.require_running().expect_err("finished");
        assert_eq!(refusal.reason, "IMPORT_BATCH_FINISHED");
        assert_eq!(refusal.kind, super::super::RefusalKind::Precondition);
    }

    #[test]
    fn source_names_are_trimmed_and_bounded() {
        let named = |name: &str| {
            let mut violations = Violations::new();
            let name = source_name(name, &mut violations);
            violations.finish().map(|()| name)
        };
        assert_eq!(named("  prod export "), Ok("prod export".to_owned()));
        assert!(named(" ").is_err());
        assert!(named(&"x".repeat(201)).is_err());
    }
}
