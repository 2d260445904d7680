//! A rule's "no": what kind of no (which gRPC code it becomes), a stable reason, a message for
//! people, the fields at fault and the facts behind it. Domains return these as values; the
//! validation collector ([`crate::error::Violations`]) builds one for a bad request; the runtime
//! turns one into a `tonic::Status` in exactly one place ([`crate::Error::into_status`]). No layer
//! converts a refusal into another type and back: the reason a rule gave is the reason on the wire.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of "no"; each maps to one gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefusalKind {
    /// The request is malformed whatever the state (INVALID_ARGUMENT).
    Invalid,
    /// Something named does not exist (NOT_FOUND).
    NotFound,
    /// It exists already (ALREADY_EXISTS).
    AlreadyExists,
    /// The state does not allow it now (FAILED_PRECONDITION).
    Precondition,
    /// A concurrent change got there first; re-read and retry the whole call (ABORTED).
    Conflict,
    /// The caller is known but may not do this (PERMISSION_DENIED).
    PermissionDenied,
    /// The caller did not prove who it is (UNAUTHENTICATED).
    Unauthenticated,
    /// A limit was reached: a quota, or the service's concurrency (RESOURCE_EXHAUSTED).
    Exhausted,
}

impl RefusalKind {
    /// The gRPC code's canonical name, as batch results and logs spell it.
    pub fn code_name(self) -> &'static str {
        match self {
            Self::Invalid => "INVALID_ARGUMENT",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::Precondition => "FAILED_PRECONDITION",
            Self::Conflict => "ABORTED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Exhausted => "RESOURCE_EXHAUSTED",
        }
    }
}

/// One invalid field of a request, as reported in `google.rpc.BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    /// Path of the field, e.g. `transfers[3].amount`.
    pub field: String,
    /// Stable SCREAMING_SNAKE_CASE reason of this field's problem, e.g. `INVALID_ID`.
    #[serde(default)]
    pub reason: String,
    /// What is wrong with it, phrased so a caller can fix the request.
    pub description: String,
}

impl FieldViolation {
    pub fn new(
        field: impl Into<String>,
        reason: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            description: description.into(),
        }
    }
}

/// A rule's refusal: a stable reason for programs, a message for people, the fields at fault if
/// any, and the facts behind it (e.g. `available`). Serializable, because idempotent calls store
/// the refusals they answered with and replay them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(from = "StoredRefusal")]
#[error("{reason}: {message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub reason: String,
    pub message: String,
    /// The request fields at fault, each with its own reason (BadRequest).
    pub violations: Vec<FieldViolation>,
    /// Facts for the ErrorInfo metadata, in the order they were added.
    pub metadata: Vec<(String, String)>,
    /// When the caller may usefully try again (RetryInfo), if the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Duration>,
}

/// What a stored refusal looks like, including records written before refusals carried
/// several violations (`field`: the one field at fault, with the refusal's own reason).
#[derive(Deserialize)]
struct StoredRefusal {
    kind: RefusalKind,
    reason: String,
    message: String,
    #[serde(default)]
    violations: Vec<FieldViolation>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    metadata: Vec<(String, String)>,
    #[serde(default)]
    retry_after: Option<Duration>,
}

impl From<StoredRefusal> for Refusal {
    fn from(stored: StoredRefusal) -> Self {
        let mut violations = stored.violations;
        if let Some(field) = stored.field {
            violations.push(FieldViolation::new(
                field,
                stored.reason.clone(),
                stored.message.clone(),
            ));
        }
        Self {
            kind: stored.kind,
            reason: stored.reason,
            message: stored.message,
            violations,
            metadata: stored.metadata,
            retry_after: stored.retry_after,
        }
    }
}

impl Refusal {
    pub fn new(kind: RefusalKind, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.to_owned(),
            message: message.into(),
            violations: Vec::new(),
            metadata: Vec::new(),
            retry_after: None,
        }
    }

    /// One bad field: INVALID_ARGUMENT with `reason`, the field named in BadRequest.
    pub fn invalid(field: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Invalid, reason, message).at(field)
    }

    pub fn not_found(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::NotFound, reason, message)
    }

    pub fn already_exists(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::AlreadyExists, reason, message)
    }

    pub fn precondition(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Precondition, reason, message)
    }

    pub fn conflict(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Conflict, reason, message)
    }

    pub fn permission_denied(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::PermissionDenied, reason, message)
    }

    /// Names the request field at fault. A refusal without violations gets one, with its own
    /// reason and message; otherwise the first violation is moved to `field`.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        match self.violations.first_mut() {
            Some(first) => first.field = field.into(),
            None => self.violations.push(FieldViolation::new(
                field,
                self.reason.clone(),
                self.message.clone(),
            )),
        }
        self
    }

    /// Adds a fact for the ErrorInfo metadata.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.metadata.push((key.to_owned(), value.to_string()));
        self
    }

    /// Says when a retry may succeed (sent as RetryInfo).
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Puts every field under the path of the element it belongs to, e.g. `transfers[3]`; a
    /// refusal that named no field names the element.
    pub fn within(mut self, prefix: &str) -> Self {
        if self.violations.is_empty() {
            return self.at(prefix);
        }
        for violation in &mut self.violations {
            violation.field = if violation.field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", violation.field)
            };
        }
        self
    }

    /// The first field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.violations.first().map(|v| v.field.as_str())
    }

    /// The value of a metadata fact.
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_stored_with_one_field_still_replay() {
        let stored = r#"{"kind":"Precondition","reason":"INSUFFICIENT_FUNDS","message":"short",
                         "field":"transfer.amount","metadata":[["available","5"]]}"#;
        let refusal: Refusal = serde_json::from_str(stored).expect("an old record reads");
        assert_eq!(refusal.kind, RefusalKind::Precondition);
        assert_eq!(refusal.field(), Some("transfer.amount"));
        assert_eq!(refusal.violations[0].reason, "INSUFFICIENT_FUNDS");
        assert_eq!(refusal.fact("available"), Some("5"));
        let again: Refusal =
            serde_json::from_str(&serde_json::to_string(&refusal).expect("serializes"))
                .expect("a new record reads");
        assert_eq!(again, refusal);
    }

    #[test]
    fn within_prefixes_every_field_or_names_the_element() {
        let refusal =
            Refusal::invalid("amount", "INVALID_AMOUNT", "must be positive").within("transfers[3]");
        assert_eq!(refusal.field(), Some("transfers[3].amount"));
        let refusal = Refusal::precondition("SAME_ACCOUNT", "same").within("transfers[1]");
        assert_eq!(refusal.field(), Some("transfers[1]"));
        assert_eq!(refusal.violations[0].reason, "SAME_ACCOUNT");
    }
}
