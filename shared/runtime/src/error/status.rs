//! [`Error`] → `tonic::Status`: the code, ErrorInfo, BadRequest and RetryInfo, bounded in size.
//!
//! Details travel in the `grpc-status-details-bin` trailer (base64) and the message in
//! `grpc-message` (percent-encoded). Clients built on the C gRPC core refuse trailers above
//! 8–16 KiB with RESOURCE_EXHAUSTED instead of our error, so every part is clipped here, once,
//! whatever a service put in: the message to 512 bytes, each text to a few hundred, and the
//! field violations to what fits in [`MAX_DETAILS_BYTES`] (the rest are counted in one last
//! violation and the `violations_total` metadata).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Error, RefusalKind};

/// Budget for the encoded details (before base64), message included.
pub const MAX_DETAILS_BYTES: usize = 4096;
const MAX_MESSAGE_BYTES: usize = 512;
const MAX_FIELD_BYTES: usize = 200;
const MAX_REASON_BYTES: usize = 64;
const MAX_DESCRIPTION_BYTES: usize = 300;
const MAX_METADATA_ENTRIES: usize = 16;
const MAX_METADATA_BYTES: usize = 200;
/// Protobuf tags and lengths around each string, generously.
const OVERHEAD_BYTES: usize = 8;

pub(super) fn code(error: &Error) -> Code {
    match error {
        Error::Refused(refusal) => match refusal.kind {
            RefusalKind::Invalid => Code::InvalidArgument,
            RefusalKind::NotFound => Code::NotFound,
            RefusalKind::AlreadyExists => Code::AlreadyExists,
            RefusalKind::Precondition => Code::FailedPrecondition,
            RefusalKind::Conflict => Code::Aborted,
            RefusalKind::PermissionDenied => Code::PermissionDenied,
            RefusalKind::Unauthenticated => Code::Unauthenticated,
            RefusalKind::Exhausted => Code::ResourceExhausted,
        },
        Error::Unavailable { .. } => Code::Unavailable,
        Error::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        Error::Invariant { .. } | Error::Internal { .. } => Code::Internal,
    }
}

/// `value` cut at a character boundary to at most `max` bytes, marked with `…` when cut.
fn clip(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

pub(super) fn into_status(error: Error, domain: &str) -> Status {
    let code = code(&error);
    let reason = clip(error.reason(), MAX_REASON_BYTES);
    let domain = clip(domain, MAX_REASON_BYTES);
    let (message, violations, metadata, retry_after) = match error {
        Error::Refused(refusal) => (
            refusal.message,
            refusal.violations,
            refusal.metadata,
            refusal.retry_after,
        ),
        Error::Unavailable {
            message,
            retry_after,
            ..
        } => (message, Vec::new(), Vec::new(), retry_after),
        Error::DeadlineExceeded { message, .. } => (message, Vec::new(), Vec::new(), None),
        Error::Invariant { invariant, detail } => {
            tracing::error!(invariant, %detail, "invariant broken");
            (
                format!(
                    "internal error: invariant {invariant} broken; the server log has the details under this request id"
                ),
                Vec::new(),
                vec![("invariant".to_owned(), invariant.to_owned())],
                None,
            )
        }
        Error::Internal { detail } => {
            tracing::error!(error = %detail, "internal error");
            (
                "internal error; the server log has the details under this request id".to_owned(),
                Vec::new(),
                Vec::new(),
                None,
            )
        }
    };
    let message = clip(&message, MAX_MESSAGE_BYTES);
    let mut budget = MAX_DETAILS_BYTES
        .saturating_sub(message.len() + reason.len() + domain.len() + 4 * OVERHEAD_BYTES);

    let mut details = ErrorDetails::new();
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
        budget = budget.saturating_sub(2 * OVERHEAD_BYTES);
    }
    // The facts a program matches on get up to half of what is left; the fields the rest.
    let mut info = HashMap::new();
    let mut facts_budget = budget / 2;
    for (key, value) in metadata.into_iter().take(MAX_METADATA_ENTRIES) {
        let key = clip(&key, MAX_REASON_BYTES);
        let value = clip(&value, MAX_METADATA_BYTES);
        let size = key.len() + value.len() + 2 * OVERHEAD_BYTES;
        if size > facts_budget {
            break;
        }
        facts_budget -= size;
        budget -= size;
        info.insert(key, value);
    }
    let total = violations.len();
    let mut sent = Vec::new();
    // Room for the closing "and N more" violation.
    let reserve = 64;
    for violation in violations {
        let violation = tonic_types::FieldViolation {
            field: clip(&violation.field, MAX_FIELD_BYTES),
            description: clip(&violation.description, MAX_DESCRIPTION_BYTES),
            reason: clip(&violation.reason, MAX_REASON_BYTES),
            localized_message: None,
        };
        let size = violation.field.len()
            + violation.description.len()
            + violation.reason.len()
            + 4 * OVERHEAD_BYTES;
        if size + reserve > budget {
            break;
        }
        budget -= size;
        sent.push(violation);
    }
    if sent.len() < total {
        let more = total - sent.len();
        sent.push(tonic_types::FieldViolation {
            field: String::new(),
            description: format!("{more} more violations are not listed ({total} in all)"),
            reason: "MORE_VIOLATIONS".to_owned(),
            localized_message: None,
        });
        info.insert("violations_total".to_owned(), total.to_string());
    }
    if !sent.is_empty() {
        details.set_bad_request(sent);
    }
    details.set_error_info(reason, domain.as_str(), info);
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Refusal, Violations};

    #[test]
    fn every_detail_arrives_with_the_reason_of_each_field() {
        let mut violations = Violations::new();
        violations.add("slug", "REQUIRED", "is required");
        violations.idempotency_key("");
        let refusal = violations.finish().expect_err("refused");
        let status = Error::from(refusal).into_status("test.phoenix");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "REQUIRED");
        assert_eq!(info.domain, "test.phoenix");
        let violations: Vec<_> = details
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            violations,
            [
                ("slug", "REQUIRED"),
                ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED")
            ]
        );
    }

    #[test]
    fn huge_errors_are_bounded_and_say_what_was_left_out() {
        let mut violations = Violations::new();
        for index in 0..8000 {
            violations.add(
                format!("transfers[{index}].amount"),
                "INVALID_AMOUNT",
                "x".repeat(10_000),
            );
        }
        let mut refusal = violations.finish().expect_err("refused");
        refusal.message = "y".repeat(1_000_000);
        let mut refusal = refusal.with("value", "z".repeat(1_000_000));
        for index in 0..40 {
            refusal = refusal.with(
                &format!("fact_{index}_{}", "k".repeat(100)),
                "v".repeat(500),
            );
        }
        refusal.reason = "R".repeat(10_000);
        let status = Error::from(refusal).into_status("test.phoenix");
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
        assert!(
            status.details().len() <= MAX_DETAILS_BYTES,
            "{} bytes of details",
            status.details().len()
        );
        let details = status.get_error_details();
        let listed = &details.bad_request().expect("bad request").field_violations;
        let last = listed.last().expect("some are listed");
        assert_eq!(last.reason, "MORE_VIOLATIONS");
        assert!(listed.len() > 3, "{} listed", listed.len());
        assert_eq!(
            details.error_info().expect("info").metadata["violations_total"],
            "8000"
        );
    }

    #[test]
    fn invariants_are_internal_and_named() {
        let status =
            Error::invariant("TRANSFER_MISSING", "transfer 7 is gone").into_status("t.phoenix");
        assert_eq!(status.code(), Code::Internal);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert_eq!(info.reason, "INVARIANT_BROKEN");
        assert_eq!(info.metadata["invariant"], "TRANSFER_MISSING");
        assert!(
            !status.message().contains("transfer 7"),
            "the detail stays in the log"
        );
    }

    #[test]
    fn a_retry_delay_is_sent_as_retry_info() {
        let status = Error::unavailable(
            "DATABASE_UNAVAILABLE",
            "down",
            Some(std::time::Duration::from_secs(2)),
        )
        .into_status("t.phoenix");
        let details = status.get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(std::time::Duration::from_secs(2))
        );
        let refused = Error::from(Refusal::not_found("X_NOT_FOUND", "no x")).into_status("t");
        assert_eq!(refused.code(), Code::NotFound);
        assert!(refused.get_error_details().bad_request().is_none());
    }
}
