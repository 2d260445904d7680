//! One error model for every service: a domain error becomes an [`ApiError`], and an `ApiError`
//! becomes a `tonic::Status` in exactly one place ([`ApiError::into_status`]), carrying
//! google.rpc details: `BadRequest` field violations for bad input and an `ErrorInfo` whose
//! `reason` is a stable string clients may match on.

use std::borrow::Cow;
use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// ErrorInfo domain of errors raised by the runtime itself (deadline, load shedding, auth).
pub const RUNTIME_DOMAIN: &str = "runtime.phoenix";

/// One invalid field of a request, as reported in `google.rpc.BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `user.email`.
    pub field: String,
    /// What is wrong with it, phrased so a caller can fix the request.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// An error a caller can act on: a gRPC code, a stable reason, a message and details.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    domain: &'static str,
    reason: Cow<'static, str>,
    message: String,
    violations: Vec<FieldViolation>,
    metadata: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(
        code: Code,
        domain: &'static str,
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            domain,
            reason: reason.into(),
            message: message.into(),
            violations: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT with one `BadRequest` field violation per invalid field.
    pub fn invalid_argument(domain: &'static str, violations: Vec<FieldViolation>) -> Self {
        let summary = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = Self::new(
            Code::InvalidArgument,
            domain,
            "INVALID_ARGUMENT",
            format!("invalid request: {summary}"),
        );
        error.violations = violations;
        error
    }

    /// INTERNAL for a failure that is the server's fault. The cause is logged here, with the
    /// request id of the current span; the caller only learns that it happened.
    pub fn internal(domain: &'static str, cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Code::Internal,
            domain,
            "INTERNAL",
            "internal error; the server log has the details under this request id",
        )
    }

    /// Maps a database error: an unreachable or exhausted database is UNAVAILABLE (retryable),
    /// anything else is INTERNAL.
    pub fn database(domain: &'static str, error: sqlx::Error) -> Self {
        let sqlstate = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned())
            .unwrap_or_default();
        let transient = matches!(
            error,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed
        );
        match sqlstate.as_str() {
            // Connection failures, too many connections, admin shutdown, crash recovery.
            s if transient || s.starts_with("08") || s == "53300" || s.starts_with("57P0") => {
                tracing::warn!(%error, "database unavailable");
                Self::new(
                    Code::Unavailable,
                    domain,
                    "DATABASE_UNAVAILABLE",
                    "the database is unavailable; retry with backoff",
                )
            }
            // Serialization failure or deadlock: the whole call may be retried.
            "40001" | "40P01" => {
                tracing::info!(%error, "transaction conflict");
                Self::new(
                    Code::Aborted,
                    domain,
                    "TRANSACTION_CONFLICT",
                    "the call conflicted with a concurrent one; retry it",
                )
            }
            // statement_timeout or lock_timeout: the call's deadline has passed.
            "57014" | "55P03" => Self::new(
                Code::DeadlineExceeded,
                domain,
                "DATABASE_TIMEOUT",
                "the database did not answer within the deadline",
            ),
            _ => Self::internal(domain, error),
        }
    }

    /// Adds a `BadRequest` field violation to an error of any code.
    pub fn with_violation(mut self, violation: FieldViolation) -> Self {
        self.violations.push(violation);
        self
    }

    /// Adds a key/value to the `ErrorInfo` metadata (e.g. the id that was not found).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// The single mapping from the error model to the wire.
    pub fn into_status(self) -> Status {
        let mut details = ErrorDetails::new();
        if !self.violations.is_empty() {
            for violation in &self.violations {
                details.add_bad_request_violation(
                    violation.field.clone(),
                    violation.description.clone(),
                );
            }
        }
        details.set_error_info(
            self.reason.into_owned(),
            self.domain,
            self.metadata
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        Status::with_error_details(self.code, self.message, details)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        error.into_status()
    }
}

/// Collects every invalid field of a request so the caller sees them all at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records `description` for `field` when `valid` is false.
    pub fn check(&mut self, valid: bool, field: &str, description: &str) {
        if !valid {
            self.add(field, description);
        }
    }

    /// Parses `value` with `parse`, recording a violation (and returning `None`) when it fails.
    pub fn parse<T, E: fmt::Display>(
        &mut self,
        field: &str,
        value: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// `Ok` when nothing was recorded, else INVALID_ARGUMENT with every violation.
    pub fn into_result(self, domain: &'static str) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_argument(domain, self.0))
        }
    }
}

/// Parses a UUID field, naming what was expected.
pub fn parse_uuid(value: &str) -> Result<uuid::Uuid, String> {
    if value.is_empty() {
        return Err("is required".to_owned());
    }
    uuid::Uuid::parse_str(value).map_err(|_| format!("must be a UUID, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_violation_and_a_reason() {
        let mut violations = Violations::new();
        violations.check(false, "email", "is required");
        violations.check(true, "name", "unused");
        violations.add("id", "must be a UUID");
        let status = violations
            .into_result("test.phoenix")
            .expect_err("two violations")
            .into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "id"]);
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, "test.phoenix");
    }

    #[test]
    fn parse_uuid_names_the_problem() {
        assert_eq!(parse_uuid(""), Err("is required".to_owned()));
        assert!(parse_uuid("nope").expect_err("not a uuid").contains("UUID"));
        assert!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
    }
}
