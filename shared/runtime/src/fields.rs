//! Decoding of the request fields every service has (ids, page sizes, durations, times) into
//! INVALID_ARGUMENT errors that name the field, so each service says "bad input" the same way.

use crate::{ApiError, FieldViolation};

fn invalid(domain: &'static str, field: &str, message: &str) -> ApiError {
    ApiError::invalid_argument(domain, vec![FieldViolation::new(field, message)])
}

/// A required UUID field.
pub fn uuid(domain: &'static str, field: &str, value: &str) -> Result<uuid::Uuid, ApiError> {
    crate::error::parse_uuid(value).map_err(|description| {
        ApiError::invalid_argument(domain, vec![FieldViolation::new(field, description)])
    })
}

/// A page size: 0 means `default`; negative or above `max` is INVALID_ARGUMENT.
pub fn page_size(
    domain: &'static str,
    value: i32,
    default: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match i64::from(value) {
        0 => Ok(default),
        size if (1..=max).contains(&size) => Ok(size),
        _ => Err(invalid(
            domain,
            "page_size",
            &format!("must be between 0 (default {default}) and {max}"),
        )),
    }
}

/// An optional duration that, when given, must be positive.
pub fn positive_duration(
    domain: &'static str,
    field: &str,
    value: Option<&prost_types::Duration>,
) -> Result<Option<chrono::Duration>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let duration = chrono::Duration::try_seconds(value.seconds)
        .and_then(|d| d.checked_add(&chrono::Duration::nanoseconds(i64::from(value.nanos))));
    match duration {
        Some(duration) if duration > chrono::Duration::zero() => Ok(Some(duration)),
        _ => Err(invalid(domain, field, "must be a positive duration")),
    }
}

/// A required timestamp field as a UTC time.
pub fn time(
    domain: &'static str,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    value
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .ok_or_else(|| invalid(domain, field, "is required: a valid timestamp"))
}
