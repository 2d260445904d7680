//! Code snapshots: a file's content submitted for a task, with its validation. A snapshot
//! never changes; a new submission of the same file is a new snapshot, and the latest of each
//! file is the one with the newest creation time (then the greatest id).

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{MAX_DESCRIPTION_CHARS, MAX_METADATA_BYTES, json_object};

/// Largest content accepted, in bytes of UTF-8.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
pub const MAX_PATH_CHARS: usize = 1000;
pub const MAX_LANGUAGE_CHARS: usize = 50;
pub const MAX_ISSUES: usize = 1000;
/// Largest list of issues, serialized.
pub const MAX_ISSUES_BYTES: usize = 64 * 1024;
/// Scores are 0.00 to 100.00, kept as hundredths.
pub const MAX_SCORE: i64 = 10_000;

/// A snapshot as the caller sent it.
#[derive(Debug, Clone, Default)]
pub struct SnapshotInput {
    pub file_path: String,
    pub language: String,
    pub content: String,
    pub validation_passed: Option<bool>,
    pub validation_score: Option<f64>,
    pub validation_feedback: String,
    pub issues_found: Vec<Map<String, Value>>,
    pub metadata: Map<String, Value>,
}

/// A validated snapshot, not yet stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSnapshot {
    pub file_path: String,
    pub language: String,
    pub content: String,
    pub content_sha256: String,
    pub validation_passed: Option<bool>,
    /// Hundredths of a point.
    pub validation_score: Option<i64>,
    pub validation_feedback: String,
    pub issues_found: Vec<Value>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeSnapshot {
    pub id: Uuid,
    pub task_id: Uuid,
    pub user_id: Uuid,
    pub snapshot: NewSnapshot,
    pub created_at: DateTime<Utc>,
}

impl NewSnapshot {
    /// Validates a snapshot whole: a relative path, a language such as `rust` (lower-cased),
    /// content of at most [`MAX_CONTENT_BYTES`] (`CONTENT_TOO_LARGE`), a score of 0.00 to 100.00.
    pub fn new(input: &SnapshotInput) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let file_path = v.text("file_path", &input.file_path, MAX_PATH_CHARS);
        if file_path.starts_with('/') || file_path.split(['/', '\\']).any(|part| part == "..") {
            v.add(
                "file_path",
                "INVALID_PATH",
                "must be relative to the project, without '..' parts",
            );
        }
        let language = v
            .text("language", &input.language, MAX_LANGUAGE_CHARS)
            .to_lowercase();
        if !language.is_empty()
            && !language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+#._-".contains(c))
        {
            v.add(
                "language",
                "INVALID_LANGUAGE",
                "must be letters, digits and + # . _ - only, e.g. rust or c++",
            );
        }
        if input.content.is_empty() {
            v.add("content", "REQUIRED", "is required: the file's content");
        } else if input.content.len() > MAX_CONTENT_BYTES {
            v.add(
                "content",
                "CONTENT_TOO_LARGE",
                format!(
                    "must be at most {MAX_CONTENT_BYTES} bytes, got {}",
                    input.content.len()
                ),
            );
        } else if input.content.contains('\0') {
            v.add(
                "content",
                "CONTROL_CHARACTER",
                "must not contain NUL characters",
            );
        }
        let validation_score = input
            .validation_score
            .map(|s| v.hundredths("validation_score", s, MAX_SCORE));
        let validation_feedback = v.free_text(
            "validation_feedback",
            &input.validation_feedback,
            MAX_DESCRIPTION_CHARS,
            false,
        );
        let issues_found = issues(&mut v, &input.issues_found);
        let metadata = json_object(&mut v, "metadata", &input.metadata);
        v.finish()?;
        Ok(Self {
            content_sha256: sha256_hex(&input.content),
            file_path,
            language,
            content: input.content.clone(),
            validation_passed: input.validation_passed,
            validation_score,
            validation_feedback,
            issues_found,
            metadata,
        })
    }
}

fn issues(v: &mut Violations, issues: &[Map<String, Value>]) -> Vec<Value> {
    if issues.len() > MAX_ISSUES {
        v.add(
            "issues_found",
            "TOO_MANY_ISSUES",
            format!(
                "must hold at most {MAX_ISSUES} issues, got {}",
                issues.len()
            ),
        );
        return Vec::new();
    }
    let checked: Vec<Value> = issues
        .iter()
        .enumerate()
        .map(|(i, issue)| {
            Value::Object(v.json_object(
                &format!("issues_found[{i}]"),
                issue.clone(),
                MAX_METADATA_BYTES,
            ))
        })
        .collect();
    let bytes = Value::Array(checked.clone()).to_string().len();
    if bytes > MAX_ISSUES_BYTES {
        v.add(
            "issues_found",
            "TOO_LARGE",
            format!("must be at most {MAX_ISSUES_BYTES} bytes as JSON, got {bytes}"),
        );
    }
    checked
}

pub fn sha256_hex(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(input: &SnapshotInput) -> Vec<(String, String)> {
        NewSnapshot::new(input)
            .err()
            .map(|r| {
                r.violations
                    .into_iter()
                    .map(|v| (v.field, v.reason))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn content_has_a_size_limit_and_paths_stay_relative() {
        let input = SnapshotInput {
            file_path: "../etc/passwd".into(),
            language: "Rust".into(),
            content: "x".repeat(MAX_CONTENT_BYTES + 1),
            validation_score: Some(100.5),
            ..SnapshotInput::default()
        };
        assert_eq!(
            reasons(&input),
            [
                ("file_path".to_owned(), "INVALID_PATH".to_owned()),
                ("content".to_owned(), "CONTENT_TOO_LARGE".to_owned()),
                ("validation_score".to_owned(), "OUT_OF_RANGE".to_owned()),
            ]
        );
    }

    #[test]
    fn a_valid_snapshot_is_lower_cased_and_hashed() {
        let snapshot = NewSnapshot::new(&SnapshotInput {
            file_path: "src/main.rs".into(),
            language: "Rust".into(),
            content: "fn main() {}".into(),
            ..SnapshotInput::default()
        })
        .expect("valid");
        assert_eq!(snapshot.language, "rust");
        assert_eq!(snapshot.content_sha256.len(), 64);
    }
}
