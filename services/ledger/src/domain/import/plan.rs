//! Planning one ImportRecords call: every record read, a document repeated within the call
//! imported once.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    Collection, Document, FirebaseId, IncomingRecord, Origin, Quarantined, RejectReason, excerpt,
    read_record,
};

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
                    Some(&at) if plan.documents[at].document.canonical == document.canonical => {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{campaign, doc, line, signal};
    use super::*;

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
}
