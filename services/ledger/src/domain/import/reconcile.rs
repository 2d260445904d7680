//! A batch, what the client declares it read, and the reconciliation of the source with what
//! the database holds, by checksums of document ids.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use phoenix_runtime::{Violations, quote};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{EXCERPT_CHARS, MAX_COLLECTION_CHARS, MAX_SOURCES, Origin, Quarantined, storable};
use crate::domain::Refusal;

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
    /// The record as the quarantine keeps it ([`storable`] text), so a call answers what a
    /// later report reads, and its outcome can be recorded (jsonb cannot hold NUL either).
    pub fn new(quarantined: &Quarantined) -> Self {
        let excerpt: String = quarantined.raw_text.chars().take(EXCERPT_CHARS).collect();
        Self {
            origin: quarantined.origin.clone(),
            collection: storable(&quarantined.collection),
            document_id: quarantined.firebase_id.as_deref().map(storable),
            reason: quarantined.reason.code().to_owned(),
            message: storable(&quarantined.message),
            raw_excerpt: storable(&excerpt),
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
        assert_eq!(refusal.kind, crate::domain::RefusalKind::Precondition);
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
