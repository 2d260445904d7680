//! The one error vocabulary of every Phoenix service.
//!
//! - A domain rule says no with a [`Refusal`] (invalid input, not found, already exists,
//!   precondition, conflict, permission…), a value with a stable reason.
//! - A request is validated with [`Violations`], which answers with one refusal listing every
//!   bad field.
//! - Everything a call can fail with is an [`Error`]: a refusal, an unavailable dependency, a
//!   passed deadline, a named broken invariant, or an unexpected internal failure. Services use
//!   `Result<T, Error>` from the store up to the API; `?` lifts refusals and database errors.
//! - [`Error::into_status`] is the one mapping to `tonic::Status`, with google.rpc details
//!   (ErrorInfo, BadRequest, RetryInfo), bounded in size so no client's metadata limit is hit.
//! - [`RemoteError`] reads a `tonic::Status` back: code, reason, field violations and whether a
//!   retry can help, for callers deciding to retry or compensate.

mod json_text;
mod refusal;
mod remote;
mod status;
mod violations;

use std::borrow::Cow;
use std::time::Duration;

pub use json_text::{NulAt, json_error_reason, json_nul, json_type};
pub use refusal::{FieldViolation, Refusal, RefusalKind};
pub use remote::{RemoteError, Retry};
pub use status::MAX_DETAILS_BYTES;
pub use violations::{MAX_IDEMPOTENCY_KEY_BYTES, MAX_TIME_ZONE_BYTES, Violations};

/// ErrorInfo domain of errors raised by the runtime itself (deadline, load shedding, auth).
pub const RUNTIME_DOMAIN: &str = "runtime.phoenix";

/// The ErrorInfo domain of a service's own errors.
pub fn service_domain(service: &str) -> String {
    format!("{service}.phoenix")
}

/// Everything a call can fail with. Clone: calls written together (the ledger's coalesced
/// commits) share one failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A rule, or validation, said no: the caller can fix or reconsider the request.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A dependency (the database, a peer) cannot serve now; retry with backoff.
    #[error("{reason}: {message}")]
    Unavailable {
        reason: Cow<'static, str>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The call's deadline passed before it finished.
    #[error("{reason}: {message}")]
    DeadlineExceeded {
        reason: Cow<'static, str>,
        message: String,
    },
    /// Something that must always hold did not: a bug or corrupted data. The caller gets
    /// INTERNAL with the invariant's name; the log gets the detail.
    #[error("invariant {invariant} broken: {detail}")]
    Invariant {
        invariant: &'static str,
        detail: String,
    },
    /// An unexpected failure (an unclassified database error, an I/O error). The caller gets
    /// INTERNAL; the log gets the detail.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A named invariant broke: `invariant` is a short stable name (`TRANSFER_RECORDED_MISSING`),
    /// `detail` says what was seen.
    pub fn invariant(invariant: &'static str, detail: impl Into<String>) -> Self {
        Self::Invariant {
            invariant,
            detail: detail.into(),
        }
    }

    /// An unexpected failure whose detail only the log should see.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal {
            detail: detail.to_string(),
        }
    }

    pub fn unavailable(
        reason: &'static str,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self::Unavailable {
            reason: Cow::Borrowed(reason),
            message: message.into(),
            retry_after,
        }
    }

    /// The refusal inside, if this is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// The stable reason, as ErrorInfo will carry it.
    pub fn reason(&self) -> &str {
        match self {
            Self::Refused(refusal) => &refusal.reason,
            Self::Unavailable { reason, .. } | Self::DeadlineExceeded { reason, .. } => reason,
            Self::Invariant { .. } => "INVARIANT_BROKEN",
            Self::Internal { .. } => "INTERNAL",
        }
    }

    /// The gRPC code it maps to.
    pub fn code(&self) -> tonic::Code {
        status::code(self)
    }

    /// Maps a database error: an unreachable or exhausted database is UNAVAILABLE (retryable),
    /// a serialization failure or deadlock is ABORTED (retry the call), a statement or lock
    /// timeout is DEADLINE_EXCEEDED, anything else INTERNAL.
    pub fn database(error: sqlx::Error) -> Self {
        crate::telemetry::sql::statement_failed(&error);
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
                Self::unavailable(
                    "DATABASE_UNAVAILABLE",
                    "the database is unavailable; retry with backoff",
                    None,
                )
            }
            // Serialization failure or deadlock: the whole call may be retried.
            "40001" | "40P01" => {
                tracing::info!(%error, "transaction conflict");
                Refusal::conflict(
                    "TRANSACTION_CONFLICT",
                    "the call conflicted with a concurrent one; retry it",
                )
                .into()
            }
            // A value PostgreSQL cannot store (a NUL in text, a date beyond its range, a number
            // beyond its column): validation should have refused it, and the caller can fix
            // it, so it is the caller's error, not ours. Logged, to close the gap.
            s if s.starts_with("22") => {
                let detail = error
                    .as_database_error()
                    .map(|e| e.message().to_owned())
                    .unwrap_or_default();
                tracing::warn!(sqlstate = s, %detail, "a request value reached the database unvalidated");
                Refusal::new(
                    RefusalKind::Invalid,
                    "VALUE_NOT_STORABLE",
                    format!(
                        "a value of the request cannot be stored: {}",
                        quote(&detail)
                    ),
                )
                .with("sqlstate", s)
                .into()
            }
            // statement_timeout or lock_timeout: the call's deadline has passed.
            "57014" | "55P03" => Self::DeadlineExceeded {
                reason: Cow::Borrowed("DATABASE_TIMEOUT"),
                message: "the database did not answer within the deadline".to_owned(),
            },
            _ => Self::internal(format_args!("database: {error}")),
        }
    }

    /// The single mapping from the error model to the wire, with ErrorInfo in `domain`.
    pub fn into_status(self, domain: &str) -> tonic::Status {
        status::into_status(self, domain)
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self::database(error)
    }
}

/// The ErrorInfo domain of errors raised now: inside a call, the serving service's
/// (`ledger.phoenix`); outside one (a tool, a test calling a use case), `phoenix`. A server
/// stream takes it when the call begins, since its items are made after the handler returned.
pub fn current_domain() -> String {
    crate::middleware::CURRENT_CALL
        .try_with(|call| service_domain(call.service))
        .unwrap_or_else(|_| "phoenix".to_owned())
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        error.into_status(&current_domain())
    }
}

impl From<Refusal> for tonic::Status {
    fn from(refusal: Refusal) -> Self {
        Error::Refused(refusal).into()
    }
}

/// Characters of an echoed value kept in an error.
pub const QUOTED_CHARS: usize = 64;

/// A value as an error message may echo it: quoted, and when longer than [`QUOTED_CHARS`]
/// characters cut to them, with the full length, so an error never carries a caller's huge
/// input back (`"xxxx…" (20000 characters)`).
pub fn quote(value: &str) -> String {
    let mut chars = value.char_indices();
    match chars.nth(QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?} ({} characters)",
            format!("{}…", &value[..cut]),
            value.chars().count()
        ),
    }
}

/// A request's value as ErrorInfo metadata carries it: whole up to [`QUOTED_CHARS`] characters,
/// else cut there and marked with `…`, as [`quote`] cuts it in messages.
pub fn fact(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}…", &value[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_keep_short_values_and_cut_long_ones() {
        assert_eq!(fact("user-1"), "user-1");
        assert_eq!(fact(&"x".repeat(64)), "x".repeat(64));
        let cut = fact(&"é".repeat(20_000));
        assert_eq!(cut, format!("{}…", "é".repeat(64)));
    }

    #[test]
    fn quote_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "é".repeat(20_000);
        let quoted = quote(&long);
        assert!(quoted.ends_with("(20000 characters)"), "{quoted}");
        assert!(quoted.chars().count() < 100, "{quoted}");
        assert_eq!(quote(&"x".repeat(64)), format!("\"{}\"", "x".repeat(64)));
    }
}
