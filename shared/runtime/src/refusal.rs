//! A rule's "no": the kind (which gRPC code it becomes), a stable reason, a message for people,
//! the field at fault and the facts behind it. Services keep their rules free of tonic and return
//! these; [`Refusal::into_api_error`] is the one mapping to an [`ApiError`].

use tonic::Code;

use crate::{ApiError, FieldViolation};
use serde::{Deserialize, Serialize};

/// What kind of "no" a rule gives; the API maps it to a gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalKind {
    /// The request is malformed whatever the state (INVALID_ARGUMENT).
    Invalid,
    /// Something named does not exist in the tenant (NOT_FOUND).
    NotFound,
    /// It exists already (ALREADY_EXISTS).
    AlreadyExists,
    /// The state does not allow it now (FAILED_PRECONDITION).
    Precondition,
    /// Optimistic concurrency: the state moved on; re-read and retry (ABORTED).
    Conflict,
}

/// A rule's refusal: a stable reason for programs, a message for people, the field at fault if
/// any, and the facts behind it (e.g. `available`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
    pub metadata: Vec<(String, String)>,
}

impl Refusal {
    pub fn new(kind: RefusalKind, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.to_owned(),
            message: message.into(),
            field: None,
            metadata: Vec::new(),
        }
    }

    pub fn invalid(field: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Invalid, reason, message).at(field)
    }

    pub fn not_found(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::NotFound, reason, message)
    }

    pub fn precondition(reason: &str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Precondition, reason, message)
    }

    /// Names the request field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a fact for the ErrorInfo metadata.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.metadata.push((key.to_owned(), value.to_string()));
        self
    }

    /// Prefixes the field with the path of the element it belongs to, e.g. `transfers[3].`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(field) => format!("{prefix}.{field}"),
            None => prefix.to_owned(),
        });
        self
    }
}

impl Refusal {
    /// The gRPC error for this refusal, with ErrorInfo in `domain`, the field as a BadRequest
    /// violation, and the facts as ErrorInfo metadata.
    pub fn into_api_error(self, domain: &'static str) -> ApiError {
        let code = match self.kind {
            RefusalKind::Invalid => Code::InvalidArgument,
            RefusalKind::NotFound => Code::NotFound,
            RefusalKind::AlreadyExists => Code::AlreadyExists,
            RefusalKind::Precondition => Code::FailedPrecondition,
            RefusalKind::Conflict => Code::Aborted,
        };
        let mut error = ApiError::new(code, domain, self.reason, self.message.clone());
        if let Some(field) = self.field {
            error = error.with_violation(FieldViolation::new(field, self.message));
        }
        for (key, value) in self.metadata {
            error = error.with_metadata(key, value);
        }
        error
    }
}
