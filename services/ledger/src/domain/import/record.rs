//! Reading one record: a document of a known collection with typed fields, or the reason it
//! is quarantined and everything known about it. Timestamps are accepted in both shapes
//! Firestore exports use.

use chrono::{DateTime, Datelike, Utc};
use phoenix_runtime::error::json_type;
use serde_json::{Map, Value};

use super::{
    Collection, FirebaseId, IncomingRecord, Origin, RecordContent, RejectReason, Rejection, excerpt,
};

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
    /// The document's JSON text as sent: what is stored (as jsonb, so numbers stay exact).
    pub original_text: String,
    /// The canonical form of `original_text` (`json_text`): what tells a duplicate.
    pub canonical: String,
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
                    format!(
                        "the document is not valid JSON: {}",
                        phoenix_runtime::error::json_error_reason(&e)
                    ),
                )
            });
            (
                collection.clone(),
                non_empty(document_id),
                data.map(|data| (data, Some(json.clone()))),
            )
        }
        RecordContent::Undecodable { error, .. } => {
            let rejection = Rejection::new(
                RejectReason::MalformedJson,
                format!("the line is not valid UTF-8: {error}"),
            );
            return Err(quarantine(record, String::new(), None, rejection));
        }
        RecordContent::TooLarge { bytes, .. } => {
            let rejection = Rejection::new(
                RejectReason::RecordTooLarge,
                format!(
                    "the record has {bytes} bytes, more than one call may carry; only its start \
                     was sent and is kept here"
                ),
            );
            return Err(quarantine(record, String::new(), None, rejection));
        }
        RecordContent::NdjsonLine(line) => match read_ndjson_envelope(line) {
            Ok(envelope) => (
                envelope.collection,
                envelope.id,
                envelope.data.map(|data| (data, ndjson_data_text(line))),
            ),
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

/// The text of an NDJSON line's `data`, as written (None when it cannot be told apart, e.g. a
/// repeated key: the parsed value stands in then).
fn ndjson_data_text(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct DataOnly<'a> {
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
    }
    serde_json::from_str::<DataOnly>(line)
        .ok()
        .map(|envelope| envelope.data.get().to_owned())
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
            format!(
                "the line is not valid JSON: {}",
                phoenix_runtime::error::json_error_reason(&e)
            ),
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
    data: Result<(Value, Option<String>), Rejection>,
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
    let (data, text) = data?;
    let Value::Object(object) = &data else {
        return Err(Rejection::new(
            RejectReason::NotAnObject,
            format!("a document is a JSON object, not {}", json_type(&data)),
        ));
    };
    if let Some(path) = nul_path(&data) {
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
    let original_text = match text {
        Some(text) => text,
        None => data.to_string(),
    };
    let canonical = super::canonical(&original_text).map_err(|e| {
        Rejection::new(
            RejectReason::MalformedJson,
            format!(
                "the document is not valid JSON: {}",
                phoenix_runtime::error::json_error_reason(&e)
            ),
        )
    })?;
    Ok(Document {
        collection: known,
        id,
        fields,
        original: data,
        original_text,
        canonical,
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
            .map_err(|e| {
                invalid(format!(
                    "is not an RFC 3339 timestamp ({e}): {}",
                    excerpt(text, 60)
                ))
            })?
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

/// Where `value` holds a NUL, as a reason names it (`phoenix_runtime::error::json_nul`).
fn nul_path(value: &Value) -> Option<String> {
    let at = phoenix_runtime::error::json_nul(value)?;
    Some(if at.in_key {
        format!("field name \"{}\"", at.path)
    } else if at.path.is_empty() {
        "the document".to_owned()
    } else {
        format!("field \"{}\"", at.path)
    })
}

/// Text PostgreSQL can store: NUL characters become U+FFFD.
pub fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{campaign, doc, line, rejected, signal};
    use super::*;

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
}
