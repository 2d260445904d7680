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
//!
//! `record` reads one record (typed fields, or why it is quarantined), `plan` reads a whole
//! call, and `reconcile` holds the batch, what the client declared, and the comparison of the
//! two sides.

mod json_text;
mod plan;
mod reconcile;
mod record;

use phoenix_runtime::Violations;
use serde::{Deserialize, Serialize};

pub use json_text::canonical;
pub use plan::{ImportPlan, Planned, conflicting, plan};
pub use reconcile::{
    BatchStatus, CollectionReport, DatabaseCollection, ImportBatch, ImportOutcome, ImportReport,
    RejectedRecord, SourceCollection, check_sources, checksum, reconcile, source_name, verdict,
};
pub use record::{
    AuditLog, Campaign, CampaignStatus, Document, Fields, Quarantined, RawSignal, ndjson_identity,
    read_record, source_identity, storable, timestamp,
};

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
    /// Larger than one record may be; the client sent only its start.
    RecordTooLarge,
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
            Self::RecordTooLarge => "RECORD_TOO_LARGE",
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
    /// A record too large to send: its start (lossy UTF-8) and its full size in bytes.
    TooLarge { start: String, bytes: i64 },
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
            RecordContent::TooLarge { start, .. } => start,
        }
    }
}

/// The size of an ImportRecords call: 1 to [`MAX_RECORDS_PER_CALL`] records; whether it is
/// (the records of a call of another size are not read). A bad call is refused whole; bad
/// *content* is quarantined instead.
pub fn check_call(count: usize, violations: &mut Violations) -> bool {
    if count == 0 {
        violations.add("records", "NO_RECORDS", "must hold at least one record");
        return false;
    }
    violations.check(
        count <= MAX_RECORDS_PER_CALL,
        "records",
        "TOO_MANY_RECORDS",
        &format!("holds {count} records; at most {MAX_RECORDS_PER_CALL} per call"),
    )
}

/// Where the record at `index` of a call was read: a line number that is 0 or more, a file
/// name of at most 1,000 characters without control characters.
pub fn check_origin(index: usize, origin: &Origin, violations: &mut Violations) {
    violations.check(
        origin.line_number >= 0,
        &format!("records[{index}].line_number"),
        "INVALID_LINE_NUMBER",
        "must be 0 (unknown) or a 1-based line number",
    );
    let file = &origin.source_file;
    violations.check(
        file.chars().count() <= MAX_SOURCE_FILE_CHARS && !file.chars().any(char::is_control),
        &format!("records[{index}].source_file"),
        "INVALID_SOURCE_FILE",
        "must be at most 1,000 characters without control characters",
    );
}

/// At most `max` characters of `text`, quoted, with "…" when cut.
pub(super) fn excerpt(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// Records for the tests of the import's modules.
#[cfg(test)]
mod fixtures {
    use serde_json::{Value, json};

    use super::*;

    pub fn origin(line: i64) -> Origin {
        Origin {
            source_file: "export.ndjson".into(),
            line_number: line,
        }
    }

    pub fn line(line_number: i64, text: &str) -> IncomingRecord {
        IncomingRecord {
            origin: origin(line_number),
            content: RecordContent::NdjsonLine(text.to_owned()),
        }
    }

    pub fn doc(collection: &str, id: &str, json: &Value) -> IncomingRecord {
        IncomingRecord {
            origin: origin(1),
            content: RecordContent::Document {
                collection: collection.into(),
                document_id: id.into(),
                json: json.to_string(),
            },
        }
    }

    pub fn signal() -> Value {
        json!({
            "source": "web", "type": "page_view", "userId": "u1",
            "occurredAt": {"_seconds": 1_733_050_800, "_nanoseconds": 500},
            "payload": {"path": "/pricing"}
        })
    }

    pub fn campaign() -> Value {
        json!({
            "name": "Black Friday", "status": "active", "budgetMinor": 150_000,
            "currency": "eur", "startAt": "2025-11-28T00:00:00Z", "endAt": "2025-12-01T23:59:59Z"
        })
    }

    pub fn rejected(record: &IncomingRecord) -> Quarantined {
        *read_record(record).expect_err("quarantined")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::line;
    use super::*;

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
    fn a_call_holds_one_to_a_thousand_records() {
        let checked = |count: usize| {
            let mut violations = Violations::new();
            assert_eq!(
                check_call(count, &mut violations),
                violations.is_empty(),
                "whether the records are read"
            );
            violations.finish()
        };
        assert_eq!(checked(0).expect_err("empty").reason, "NO_RECORDS");
        let refusal = checked(MAX_RECORDS_PER_CALL + 1).expect_err("too many");
        assert_eq!(refusal.reason, "TOO_MANY_RECORDS");
        assert_eq!(refusal.field(), Some("records"));
        assert!(checked(MAX_RECORDS_PER_CALL).is_ok());
        let mut violations = Violations::new();
        check_origin(0, &line(-1, "{}").origin, &mut violations);
        assert_eq!(
            violations.finish().expect_err("negative").field(),
            Some("records[0].line_number")
        );
    }
}
