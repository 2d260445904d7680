//! A `tonic::Status` read back into what a caller decides on: the code, ErrorInfo's reason and
//! domain, the field violations, and whether a retry can help. The coordinator's sagas decide
//! retry-or-compensate with [`RemoteError::retry`]; [`crate::client::call_idempotent`] retries
//! with it.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::{FieldViolation, Refusal, RefusalKind};

/// Whether trying the same call again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// No: the answer will be the same (bad input, not found, a rule said no).
    Never,
    /// Yes, after a backoff of the caller's choosing. For calls that may run twice only: every
    /// Phoenix mutating call is, with its idempotency key.
    Backoff,
    /// Yes, not before this delay (the server sent RetryInfo).
    After(Duration),
}

/// What a peer's error says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub code: Code,
    pub message: String,
    /// ErrorInfo reason; empty when the peer sent none.
    pub reason: String,
    /// ErrorInfo domain, e.g. `ledger.phoenix`.
    pub domain: String,
    pub metadata: BTreeMap<String, String>,
    pub violations: Vec<FieldViolation>,
    /// RetryInfo's delay, when the peer knows one.
    pub retry_delay: Option<Duration>,
}

impl RemoteError {
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let (reason, domain, metadata) = details.error_info().map_or_else(
            || (String::new(), String::new(), BTreeMap::new()),
            |info| {
                (
                    info.reason.clone(),
                    info.domain.clone(),
                    info.metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            },
        );
        let violations = details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|v| FieldViolation::new(&v.field, &v.reason, &v.description))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            reason,
            domain,
            metadata,
            violations,
            retry_delay: details.retry_info().and_then(|info| info.retry_delay),
        }
    }

    /// Whether the same call can succeed if tried again.
    pub fn retry(&self) -> Retry {
        let later = || self.retry_delay.map_or(Retry::Backoff, Retry::After);
        match self.code {
            Code::Unavailable | Code::Aborted => later(),
            // A passed deadline says nothing about the next attempt.
            Code::DeadlineExceeded => later(),
            // Load shedding is temporary; a quota is not, unless the server says when.
            Code::ResourceExhausted if self.reason == "OVERLOADED" => later(),
            Code::ResourceExhausted => self.retry_delay.map_or(Retry::Never, Retry::After),
            _ => Retry::Never,
        }
    }

    /// The peer's "no" as a refusal of our own, to answer our caller with the same code, reason
    /// and fields; `None` for codes that are not refusals (UNAVAILABLE, INTERNAL, …).
    pub fn refusal(&self) -> Option<Refusal> {
        let kind = match self.code {
            Code::InvalidArgument | Code::OutOfRange => RefusalKind::Invalid,
            Code::NotFound => RefusalKind::NotFound,
            Code::AlreadyExists => RefusalKind::AlreadyExists,
            Code::FailedPrecondition => RefusalKind::Precondition,
            Code::Aborted => RefusalKind::Conflict,
            Code::PermissionDenied => RefusalKind::PermissionDenied,
            Code::Unauthenticated => RefusalKind::Unauthenticated,
            Code::ResourceExhausted => RefusalKind::Exhausted,
            _ => return None,
        };
        let reason = if self.reason.is_empty() {
            kind.code_name()
        } else {
            &self.reason
        };
        let mut refusal = Refusal::new(kind, reason, self.message.clone());
        refusal.violations = self.violations.clone();
        refusal.metadata = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        refusal.retry_after = self.retry_delay;
        Some(refusal)
    }
}

impl From<&Status> for RemoteError {
    fn from(status: &Status) -> Self {
        Self::from_status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Violations};

    #[test]
    fn a_status_reads_back_into_what_was_sent() {
        let mut violations = Violations::new();
        violations.uuid("account_id", "nope");
        violations.idempotency_key("");
        let sent = Error::from(violations.finish().expect_err("bad")).into_status("ledger.phoenix");
        let remote = RemoteError::from_status(&sent);
        assert_eq!(remote.code, Code::InvalidArgument);
        assert_eq!(remote.reason, "INVALID_ID");
        assert_eq!(remote.domain, "ledger.phoenix");
        assert_eq!(remote.violations.len(), 2);
        assert_eq!(remote.violations[1].reason, "IDEMPOTENCY_KEY_REQUIRED");
        assert_eq!(remote.retry(), Retry::Never);
        let again = remote.refusal().expect("a refusal");
        assert_eq!(again.kind, RefusalKind::Invalid);
        assert_eq!(again.violations, remote.violations);
    }

    #[test]
    fn retry_follows_the_code_and_the_servers_delay() {
        let down = Error::unavailable("DATABASE_UNAVAILABLE", "down", Some(Duration::from_secs(2)))
            .into_status("x");
        assert_eq!(
            RemoteError::from_status(&down).retry(),
            Retry::After(Duration::from_secs(2))
        );
        let conflict = Error::from(Refusal::conflict("VERSION_CONFLICT", "moved")).into_status("x");
        assert_eq!(RemoteError::from_status(&conflict).retry(), Retry::Backoff);
        let gone = Error::from(Refusal::not_found("USER_NOT_FOUND", "no")).into_status("x");
        assert_eq!(RemoteError::from_status(&gone).retry(), Retry::Never);
        assert!(RemoteError::from_status(&gone).refusal().is_some());
        let plain = Status::unavailable("no details");
        assert_eq!(RemoteError::from_status(&plain).retry(), Retry::Backoff);
        assert!(RemoteError::from_status(&plain).refusal().is_none());
        let internal = Error::internal("boom").into_status("x");
        assert_eq!(RemoteError::from_status(&internal).retry(), Retry::Never);
    }
}
