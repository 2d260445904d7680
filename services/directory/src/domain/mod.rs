//! The directory's types and rules as plain Rust: no I/O, no clock reads (the time is passed
//! in), refusals returned as values.
//!
//! Conventions every module here shares:
//! - Scores and percentages are kept exactly, as integer hundredths (`Hundredths`): 12.34 is
//!   1234. The API takes and gives them as decimals with at most two places.
//! - Text is trimmed; emails and usernames are lower-cased, so uniqueness is case-insensitive.
//! - A VIP membership's status is what its last change left, *read at an instant*: a trial or
//!   membership whose end has come reads EXPIRED at that instant, with no job to run first
//!   (`vip::Membership::status_at`).
//! - Updates name their fields with a field mask; a rule that spans fields (a user is reachable
//!   by email or Telegram id) is checked on the result.

pub mod channel;
pub mod course;
pub mod user;
pub mod vip;

pub use channel::Channel;
pub use course::{Course, CourseInput, CourseStatus};
pub use user::{NewUser, Profile, ProfileInput, User};
pub use vip::{Membership, VipChange, VipStatus};

use phoenix_runtime::Violations;

/// Longest metadata object accepted, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Reads a decimal with at most two places in `range` as hundredths (12.34 → 1234).
pub fn hundredths(
    violations: &mut Violations,
    field: &str,
    value: f64,
    max_hundredths: i64,
) -> i64 {
    violations.hundredths(field, value, max_hundredths)
}

/// A hundredths value as the decimal the API shows.
pub fn decimal(hundredths: i64) -> f64 {
    hundredths as f64 / 100.0
}

/// A metadata object: at most [`MAX_METADATA_BYTES`] serialized, no NUL anywhere (PostgreSQL's
/// jsonb cannot hold one).
pub fn metadata(
    violations: &mut Violations,
    field: &str,
    value: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    violations.json_object(field, value, MAX_METADATA_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(violations: Violations) -> Vec<String> {
        violations
            .finish()
            .err()
            .map(|r| r.violations.into_iter().map(|v| v.reason).collect())
            .unwrap_or_default()
    }

    #[test]
    fn hundredths_are_exact_and_bounded() {
        let mut v = Violations::new();
        assert_eq!(hundredths(&mut v, "s", 12.34, 10_000), 1234);
        assert_eq!(hundredths(&mut v, "s", 100.0, 10_000), 10_000);
        assert_eq!(hundredths(&mut v, "s", 0.29, 10_000), 29);
        assert!(v.is_empty());
        let mut v = Violations::new();
        hundredths(&mut v, "s", 100.01, 10_000);
        hundredths(&mut v, "s", -0.01, 10_000);
        hundredths(&mut v, "s", f64::NAN, 10_000);
        hundredths(&mut v, "s", 1.234, 10_000);
        assert_eq!(
            reasons(v),
            [
                "OUT_OF_RANGE",
                "OUT_OF_RANGE",
                "OUT_OF_RANGE",
                "TOO_MANY_DECIMALS"
            ]
        );
    }

    #[test]
    fn metadata_refuses_nul_and_size() {
        let mut v = Violations::new();
        let nul = serde_json::json!({"a": "x\u{0}"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        metadata(&mut v, "metadata", nul);
        let big = serde_json::json!({"a": "x".repeat(MAX_METADATA_BYTES)})
            .as_object()
            .cloned()
            .unwrap_or_default();
        metadata(&mut v, "metadata", big);
        assert_eq!(reasons(v), ["CONTROL_CHARACTER", "TOO_LARGE"]);
    }
}
