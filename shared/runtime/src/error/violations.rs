//! The one way a Phoenix service validates a request: a [`Violations`] collector gathers every
//! bad field with its own reason, then [`Violations::finish`] answers with one INVALID_ARGUMENT
//! listing them all, so a caller fixes the whole request in one round.
//!
//! The typed helpers return a usable placeholder (a nil UUID, the default page size, `None`) for
//! a bad field, so a request decodes in straight-line code; nothing decoded may be used before
//! `finish()` has returned `Ok`.
//!
//! Reasons are stable and specific: `REQUIRED`, `INVALID_ID`, `IDEMPOTENCY_KEY_REQUIRED`,
//! `INVALID_IDEMPOTENCY_KEY`, `INVALID_PAGE_SIZE`, `INVALID_PAGE_TOKEN`, `INVALID_DURATION`,
//! `INVALID_TIMESTAMP`, `INVALID_TIME_ZONE`, `INVALID_ENUM`, `TOO_LONG`, `CONTROL_CHARACTER`,
//! `OUT_OF_RANGE`, `READ_ONLY_FIELD`, `UNKNOWN_FIELD`, `DUPLICATE_FIELD`, or the caller's own.

use std::fmt::Display;
use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::quote;
use super::refusal::{FieldViolation, Refusal, RefusalKind};

/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// Longest IANA zone name accepted (the longest real one has 32 characters).
pub const MAX_TIME_ZONE_BYTES: usize = 64;

/// Every bad field of one request.
#[derive(Debug, Default)]
#[must_use = "call finish() to refuse the request when a field was bad"]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a bad field.
    pub fn add(&mut self, field: impl Into<String>, reason: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, reason, description));
    }

    /// Records `description` for `field` unless `valid`; returns `valid`.
    pub fn check(&mut self, valid: bool, field: &str, reason: &str, description: &str) -> bool {
        if !valid {
            self.add(field, reason, description);
        }
        valid
    }

    /// Takes in the fields of a refusal a parser gave (e.g. a domain type's `parse`).
    pub fn absorb(&mut self, refusal: Refusal) {
        if refusal.violations.is_empty() {
            self.add("", &refusal.reason, refusal.message);
        } else {
            self.0.extend(refusal.violations);
        }
    }

    /// Takes in the refusal of a parser, keeping its value when it succeeded.
    pub fn take<T>(&mut self, parsed: Result<T, Refusal>) -> Option<T> {
        parsed.map_err(|refusal| self.absorb(refusal)).ok()
    }

    /// A required UUID; nil when missing or malformed.
    pub fn uuid(&mut self, field: &str, value: &str) -> Uuid {
        if value.is_empty() {
            self.add(field, "REQUIRED", "is required: a UUID");
            return Uuid::nil();
        }
        self.optional_uuid(field, value).unwrap_or_else(Uuid::nil)
    }

    /// A UUID that may be left empty (`None`).
    pub fn optional_uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        if value.is_empty() {
            return None;
        }
        match Uuid::try_parse(value) {
            Ok(id) => Some(id),
            Err(_) => {
                self.add(
                    field,
                    "INVALID_ID",
                    format!("must be a UUID, got {}", quote(value)),
                );
                None
            }
        }
    }

    /// The `idempotency_key` of a mutating call: required, printable ASCII without spaces, at
    /// most 255 bytes.
    pub fn idempotency_key(&mut self, value: &str) -> String {
        const FIELD: &str = "idempotency_key";
        if value.is_empty() {
            self.add(
                FIELD,
                "IDEMPOTENCY_KEY_REQUIRED",
                "is required: send a unique key (a UUID works) and reuse it when retrying",
            );
        } else if value.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            self.add(
                FIELD,
                "INVALID_IDEMPOTENCY_KEY",
                format!(
                    "must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes, got {}",
                    value.len()
                ),
            );
        } else if !value.chars().all(|c| c.is_ascii_graphic()) {
            self.add(
                FIELD,
                "INVALID_IDEMPOTENCY_KEY",
                format!(
                    "must be printable ASCII without spaces, got {}",
                    quote(value)
                ),
            );
        }
        value.to_owned()
    }

    /// The `page_size` of a list call: 0 means `default`; negative or above `max` is refused.
    pub fn page_size(&mut self, value: i32, default: i64, max: i64) -> i64 {
        self.page_size_of("page_size", value, default, max)
    }

    /// A page size under another name (`max_count`): 0 means `default`; negative or above `max`
    /// is refused.
    pub fn page_size_of(&mut self, field: &str, value: i32, default: i64, max: i64) -> i64 {
        match i64::from(value) {
            0 => default,
            size if (1..=max).contains(&size) => size,
            size => {
                self.add(
                    field,
                    "INVALID_PAGE_SIZE",
                    format!("must be between 0 (default {default}) and {max}, got {size}"),
                );
                default
            }
        }
    }

    /// A page token as `parse` reads it; empty is the first page (`None`).
    pub fn page_token<T>(
        &mut self,
        value: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        if value.is_empty() {
            return None;
        }
        let parsed = parse(value);
        if parsed.is_none() {
            self.add(
                "page_token",
                "INVALID_PAGE_TOKEN",
                "must be the next_page_token of the previous page",
            );
        }
        parsed
    }

    /// An optional duration that, when given, must be positive and at most `max`.
    pub fn positive_duration(
        &mut self,
        field: &str,
        value: Option<&prost_types::Duration>,
        max: chrono::Duration,
    ) -> Option<chrono::Duration> {
        let value = value?;
        let duration = chrono::Duration::try_seconds(value.seconds)
            .and_then(|d| d.checked_add(&chrono::Duration::nanoseconds(i64::from(value.nanos))))
            .filter(|d| *d > chrono::Duration::zero() && *d <= max);
        if duration.is_none() {
            self.add(
                field,
                "INVALID_DURATION",
                format!(
                    "must be a positive duration of at most {} s",
                    max.num_seconds()
                ),
            );
        }
        duration
    }

    /// A required timestamp between the years 1 and 9999.
    pub fn timestamp(
        &mut self,
        field: &str,
        value: Option<&prost_types::Timestamp>,
    ) -> Option<DateTime<Utc>> {
        let Some(value) = value else {
            self.add(field, "REQUIRED", "is required: a timestamp");
            return None;
        };
        let time = crate::convert::time_from_proto(value);
        if time.is_none() {
            self.add(
                field,
                "INVALID_TIMESTAMP",
                "must be a valid timestamp between 0001-01-01 and 9999-12-31",
            );
        }
        time
    }

    /// A required IANA time zone name (e.g. `Europe/Madrid`), from the tz database the
    /// binary ships: every service accepts the same zones.
    pub fn time_zone(&mut self, field: &str, value: &str) -> Option<chrono_tz::Tz> {
        if value.is_empty() {
            self.add(
                field,
                "REQUIRED",
                "is required: an IANA time zone such as Europe/Madrid",
            );
            return None;
        }
        let zone = (value.len() <= MAX_TIME_ZONE_BYTES)
            .then(|| value.parse::<chrono_tz::Tz>().ok())
            .flatten();
        if zone.is_none() {
            self.add(
                field,
                "INVALID_TIME_ZONE",
                format!(
                    "must be an IANA time zone such as Europe/Madrid, got {}",
                    quote(value)
                ),
            );
        }
        zone
    }

    /// A protobuf enum field: `unspecified` (value 0) is refused with `required_reason`, an
    /// unknown number with `INVALID_ENUM`.
    pub fn enumeration<E: TryFrom<i32>>(
        &mut self,
        field: &str,
        value: i32,
        required_reason: &str,
        choices: &str,
    ) -> Option<E> {
        if value == 0 {
            self.add(field, required_reason, format!("is required: {choices}"));
            return None;
        }
        let known = E::try_from(value).ok();
        if known.is_none() {
            self.add(
                field,
                "INVALID_ENUM",
                format!("{value} is not a known value: {choices}"),
            );
        }
        known
    }

    /// Required text, trimmed: not empty, at most `max_chars` characters, no control
    /// characters.
    pub fn text(&mut self, field: &str, value: &str, max_chars: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "REQUIRED", "is required");
            return String::new();
        }
        self.optional_text(field, trimmed, max_chars)
    }

    /// Optional text, trimmed: at most `max_chars` characters, no control characters.
    pub fn optional_text(&mut self, field: &str, value: &str, max_chars: usize) -> String {
        let trimmed = value.trim();
        let chars = trimmed.chars().count();
        if chars > max_chars {
            self.add(
                field,
                "TOO_LONG",
                format!("must be at most {max_chars} characters, got {chars}"),
            );
        } else if trimmed.chars().any(char::is_control) {
            self.add(
                field,
                "CONTROL_CHARACTER",
                "must not contain control characters",
            );
        }
        trimmed.to_owned()
    }

    /// Free text (a description, a proof, a message), trimmed: at most `max_chars` characters;
    /// line breaks and tabs are allowed, other control characters (NUL among them, which
    /// PostgreSQL text cannot hold) are not. Empty is refused when `required`.
    pub fn free_text(
        &mut self,
        field: &str,
        value: &str,
        max_chars: usize,
        required: bool,
    ) -> String {
        let trimmed = value.trim();
        let chars = trimmed.chars().count();
        if trimmed.is_empty() {
            if required {
                self.add(field, "REQUIRED", "is required");
            }
        } else if chars > max_chars {
            self.add(
                field,
                "TOO_LONG",
                format!("must be at most {max_chars} characters, got {chars}"),
            );
        } else if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.add(
                field,
                "CONTROL_CHARACTER",
                "must not contain control characters other than line breaks and tabs",
            );
        }
        trimmed.to_owned()
    }

    /// A number that must lie in `range`; refused with `reason` (or `OUT_OF_RANGE`).
    pub fn range<T: PartialOrd + Display + Copy>(
        &mut self,
        field: &str,
        value: T,
        range: RangeInclusive<T>,
        reason: Option<&str>,
    ) -> T {
        if !range.contains(&value) {
            self.add(
                field,
                reason.unwrap_or("OUT_OF_RANGE"),
                format!(
                    "must be between {} and {}, got {value}",
                    range.start(),
                    range.end()
                ),
            );
        }
        value
    }

    /// A decimal with at most two places, between 0 and `max_hundredths` / 100, as integer
    /// hundredths (12.34 → 1234): `OUT_OF_RANGE` (also for NaN and infinities) or
    /// `TOO_MANY_DECIMALS`; 0 when refused.
    pub fn hundredths(&mut self, field: &str, value: f64, max_hundredths: i64) -> i64 {
        let scaled = value * 100.0;
        let rounded = scaled.round();
        if !value.is_finite() || rounded < 0.0 || rounded > max_hundredths as f64 {
            self.add(
                field,
                "OUT_OF_RANGE",
                format!(
                    "must be between 0.00 and {:.2}, got {value}",
                    max_hundredths as f64 / 100.0
                ),
            );
            return 0;
        }
        if (scaled - rounded).abs() > 1e-6 {
            self.add(
                field,
                "TOO_MANY_DECIMALS",
                format!("must have at most two decimals, got {value}"),
            );
        }
        // In range, so it fits.
        rounded as i64
    }

    /// A JSON object PostgreSQL's jsonb can hold: at most `max_bytes` serialized (`TOO_LARGE`)
    /// and no NUL anywhere (`CONTROL_CHARACTER`). Returns it (an empty one when refused).
    pub fn json_object(
        &mut self,
        field: &str,
        value: serde_json::Map<String, serde_json::Value>,
        max_bytes: usize,
    ) -> serde_json::Map<String, serde_json::Value> {
        let value = serde_json::Value::Object(value);
        let text = value.to_string();
        if text.len() > max_bytes {
            self.add(
                field,
                "TOO_LARGE",
                format!(
                    "must be at most {max_bytes} bytes as JSON, got {}",
                    text.len()
                ),
            );
        } else if text.contains("\\u0000") {
            self.add(
                field,
                "CONTROL_CHARACTER",
                "must not contain NUL characters",
            );
        } else if let serde_json::Value::Object(object) = value {
            return object;
        }
        serde_json::Map::new()
    }

    /// The paths of an update's field mask (`field` names it, e.g. `update_mask`): required,
    /// each one of `writable`; a path in `read_only` is refused `READ_ONLY_FIELD`, any other
    /// `UNKNOWN_FIELD`, a repeated one `DUPLICATE_FIELD`, each naming `field.paths[i]`. Returns
    /// the valid paths, in order.
    pub fn field_mask(
        &mut self,
        field: &str,
        mask: Option<&prost_types::FieldMask>,
        writable: &[&str],
        read_only: &[&str],
    ) -> Vec<String> {
        let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
        if paths.is_empty() {
            self.add(
                field,
                "REQUIRED",
                format!(
                    "is required: the fields to change, among {}",
                    writable.join(", ")
                ),
            );
            return Vec::new();
        }
        let mut valid: Vec<String> = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let at = format!("{field}.paths[{i}]");
            if writable.contains(&path.as_str()) {
                if valid.contains(path) {
                    self.add(
                        at,
                        "DUPLICATE_FIELD",
                        format!("{} is named twice", quote(path)),
                    );
                } else {
                    valid.push(path.clone());
                }
            } else if read_only.contains(&path.as_str()) {
                self.add(
                    at,
                    "READ_ONLY_FIELD",
                    format!("{} cannot be changed by an update", quote(path)),
                );
            } else {
                self.add(
                    at,
                    "UNKNOWN_FIELD",
                    format!(
                        "{} is not a field that can be changed: one of {}",
                        quote(path),
                        writable.join(", ")
                    ),
                );
            }
        }
        valid
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many bad fields were recorded so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// [`Violations::finish`], then the value a decoder gave: `None` with no violation is a
    /// decoder that failed without saying why, a broken invariant (INTERNAL
    /// `DECODED_WITHOUT_VALUE`), never a panic.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T, super::Error> {
        self.finish()?;
        value.ok_or_else(|| {
            super::Error::invariant(
                "DECODED_WITHOUT_VALUE",
                "a request passed validation without a decoded value",
            )
        })
    }

    /// `Ok` when every field was valid; else one INVALID_ARGUMENT refusal with every violation,
    /// whose reason is the first violation's.
    pub fn finish(self) -> Result<(), Refusal> {
        if self.0.is_empty() {
            return Ok(());
        }
        let reason = self
            .0
            .first()
            .map(|v| v.reason.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "INVALID_ARGUMENT".to_owned());
        let summary = self
            .0
            .iter()
            .take(5)
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        let more = match self.0.len() {
            n if n > 5 => format!(" (and {} more)", n - 5),
            _ => String::new(),
        };
        let mut refusal = Refusal::new(
            RefusalKind::Invalid,
            &reason,
            format!("invalid request: {summary}{more}"),
        );
        refusal.violations = self.0;
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_and_reasons(violations: Violations) -> Vec<(String, String)> {
        violations
            .finish()
            .expect_err("refused")
            .violations
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect()
    }

    #[test]
    fn every_bad_field_is_reported_with_its_own_reason() {
        let mut v = Violations::new();
        let id = v.uuid("tenant_id", "nope");
        v.uuid("account_id", "");
        v.idempotency_key("");
        v.page_size(-1, 100, 1000);
        v.text("name", "  ", 10);
        assert!(id.is_nil());
        assert_eq!(
            fields_and_reasons(v),
            [
                ("tenant_id".to_owned(), "INVALID_ID".to_owned()),
                ("account_id".to_owned(), "REQUIRED".to_owned()),
                (
                    "idempotency_key".to_owned(),
                    "IDEMPOTENCY_KEY_REQUIRED".to_owned()
                ),
                ("page_size".to_owned(), "INVALID_PAGE_SIZE".to_owned()),
                ("name".to_owned(), "REQUIRED".to_owned()),
            ]
        );
    }

    #[test]
    fn the_refusal_takes_the_first_reason() {
        let mut v = Violations::new();
        v.idempotency_key("has space");
        v.uuid("id", "x");
        let refusal = v.finish().expect_err("refused");
        assert_eq!(refusal.kind, RefusalKind::Invalid);
        assert_eq!(refusal.reason, "INVALID_IDEMPOTENCY_KEY");
        assert!(
            refusal.message.contains("idempotency_key"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn valid_fields_decode() {
        let mut v = Violations::new();
        let id = v.uuid("id", "67e55044-10b1-426f-9247-bb680e5fe0c8");
        let size = v.page_size(0, 100, 1000);
        let zone = v.time_zone("time_zone", "Europe/Madrid");
        let name = v.text("name", "  Ada ", 10);
        v.finish().expect("valid");
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(size, 100);
        assert_eq!(zone, Some(chrono_tz::Europe::Madrid));
        assert_eq!(name, "Ada");
    }

    #[test]
    fn huge_values_are_quoted_short() {
        let mut v = Violations::new();
        v.uuid("id", &"x".repeat(20_000));
        v.time_zone("time_zone", &"y".repeat(20_000));
        let refusal = v.finish().expect_err("refused");
        for violation in &refusal.violations {
            assert!(
                violation.description.len() < 200,
                "{}",
                violation.description.len()
            );
            assert!(violation.description.contains("20000 characters"));
        }
        assert!(refusal.message.len() < 500);
    }

    #[test]
    fn free_text_keeps_line_breaks_and_refuses_nul() {
        let mut v = Violations::new();
        assert_eq!(
            v.free_text("proof", " line one\n\tline two ", 100, true),
            "line one\n\tline two"
        );
        v.finish().expect("line breaks and tabs are text");
        let mut v = Violations::new();
        v.free_text("proof", "nul\u{0}inside", 100, true);
        v.free_text("note", "", 100, false);
        v.free_text("title", "", 100, true);
        v.free_text("body", &"x".repeat(101), 100, false);
        assert_eq!(
            fields_and_reasons(v),
            [
                ("proof".to_owned(), "CONTROL_CHARACTER".to_owned()),
                ("title".to_owned(), "REQUIRED".to_owned()),
                ("body".to_owned(), "TOO_LONG".to_owned()),
            ]
        );
    }

    #[test]
    fn out_of_range_timestamps_and_durations_are_refused() {
        let mut v = Violations::new();
        v.timestamp(
            "time",
            Some(&prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
        );
        v.positive_duration(
            "by",
            Some(&prost_types::Duration {
                seconds: 1_000_000_000_000_000,
                nanos: 0,
            }),
            chrono::Duration::days(36_500),
        );
        v.enumeration::<i8>("mode", 0, "MODE_REQUIRED", "A or B");
        assert_eq!(
            fields_and_reasons(v),
            [
                ("time".to_owned(), "INVALID_TIMESTAMP".to_owned()),
                ("by".to_owned(), "INVALID_DURATION".to_owned()),
                ("mode".to_owned(), "MODE_REQUIRED".to_owned()),
            ]
        );
    }
}
