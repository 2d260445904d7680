//! Users as the directory knows them, and the rules for registering one. No I/O here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::DirectoryError;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest IANA zone name accepted (the longest real one has 32 characters).
pub const MAX_TIME_ZONE_BYTES: usize = 64;
/// Time zone of a user who did not name one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    /// Lower-cased, so uniqueness is case-insensitive.
    pub email: String,
    pub display_name: String,
    /// IANA name; checked against the database's time zone table when registering.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

/// A registration that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub time_zone: String,
}

impl NewUser {
    /// Validates every field at once, so the caller sees all problems in one answer.
    pub fn parse(email: &str, display_name: &str, time_zone: &str) -> Result<Self, DirectoryError> {
        let mut violations = phoenix_runtime::Violations::new();
        let email = email.trim().to_lowercase();
        violations.check(!email.is_empty(), "email", "is required");
        violations.check(
            email.is_empty() || is_plausible_email(&email),
            "email",
            "must look like name@example.com",
        );
        let display_name = display_name.trim().to_owned();
        violations.check(!display_name.is_empty(), "display_name", "is required");
        violations.check(
            display_name.chars().count() <= MAX_DISPLAY_NAME_CHARS,
            "display_name",
            "must be at most 200 characters",
        );
        violations.check(
            !display_name.chars().any(char::is_control),
            "display_name",
            "must not contain control characters",
        );
        let time_zone = if time_zone.trim().is_empty() {
            DEFAULT_TIME_ZONE.to_owned()
        } else {
            time_zone.trim().to_owned()
        };
        violations.check(
            time_zone.len() <= MAX_TIME_ZONE_BYTES
                && time_zone.chars().all(|c| c.is_ascii_graphic()),
            "time_zone",
            "must be an IANA time zone name such as Europe/Madrid",
        );
        violations
            .into_result(crate::error::DOMAIN)
            .map_err(DirectoryError::Invalid)?;
        Ok(Self {
            email,
            display_name,
            time_zone,
        })
    }
}

/// One `@`, something on each side, a dot in the domain, no spaces: enough to catch typos
/// without rejecting real addresses.
fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.len() <= 320
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_registration_is_normalized() {
        let user = NewUser::parse("  Ada@Example.COM ", " Ada ", "").expect("valid");
        assert_eq!(
            user,
            NewUser {
                email: "ada@example.com".into(),
                display_name: "Ada".into(),
                time_zone: "UTC".into()
            }
        );
    }

    /// The fields a rejected registration names, in order.
    fn invalid_fields(email: &str, display_name: &str, time_zone: &str) -> Vec<String> {
        match NewUser::parse(email, display_name, time_zone) {
            Err(DirectoryError::Invalid(error)) => {
                error.violations().iter().map(|v| v.field.clone()).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_invalid_field_is_reported() {
        assert_eq!(
            invalid_fields("not-an-email", "", ""),
            ["email", "display_name"]
        );
    }

    #[test]
    fn control_characters_are_refused_before_they_reach_the_database() {
        assert_eq!(
            invalid_fields("a\u{0}@b.com", "A\u{0}", "UTC\u{0}"),
            ["email", "display_name", "time_zone"]
        );
    }

    #[test]
    fn emails_need_a_domain_with_a_dot() {
        for bad in ["a@b", "@b.com", "a@.com", "a b@c.com", "a@b@c.com"] {
            assert!(!is_plausible_email(bad), "{bad} should be rejected");
        }
        assert!(is_plausible_email("a.b+c@d.example"));
    }
}
