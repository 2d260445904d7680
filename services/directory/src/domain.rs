//! Users as the directory knows them, and the rules for registering one. No I/O here.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations};
use uuid::Uuid;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest email address (RFC 5321's limit).
pub const MAX_EMAIL_BYTES: usize = 320;
/// Time zone of a user who did not name one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    /// Lower-cased, so uniqueness is case-insensitive.
    pub email: String,
    pub display_name: String,
    /// IANA name, from the tz database every Phoenix service shares.
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
    pub fn parse(email: &str, display_name: &str, time_zone: &str) -> Result<Self, Refusal> {
        let mut violations = Violations::new();
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            violations.add("email", "REQUIRED", "is required");
        } else {
            violations.check(
                is_plausible_email(&email),
                "email",
                "INVALID_EMAIL",
                "must look like name@example.com",
            );
        }
        let display_name = violations.text("display_name", display_name, MAX_DISPLAY_NAME_CHARS);
        let time_zone = match time_zone.trim() {
            "" => DEFAULT_TIME_ZONE,
            named => named,
        };
        violations.time_zone("time_zone", time_zone);
        violations.finish()?;
        Ok(Self {
            email,
            display_name,
            time_zone: time_zone.to_owned(),
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
        && email.len() <= MAX_EMAIL_BYTES
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

    /// The fields a rejected registration names, in order, with their reasons.
    fn invalid_fields(email: &str, display_name: &str, time_zone: &str) -> Vec<(String, String)> {
        let refusal = NewUser::parse(email, display_name, time_zone).expect_err("invalid");
        refusal
            .violations
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
            .collect()
    }

    #[test]
    fn every_invalid_field_is_reported() {
        assert_eq!(
            invalid_fields("not-an-email", "", "Mars/Olympus"),
            pairs(&[
                ("email", "INVALID_EMAIL"),
                ("display_name", "REQUIRED"),
                ("time_zone", "INVALID_TIME_ZONE")
            ])
        );
    }

    #[test]
    fn control_characters_are_refused_before_they_reach_the_database() {
        assert_eq!(
            invalid_fields("a\u{0}@b.com", "A\u{0}", "UTC\u{0}"),
            pairs(&[
                ("email", "INVALID_EMAIL"),
                ("display_name", "CONTROL_CHARACTER"),
                ("time_zone", "INVALID_TIME_ZONE")
            ])
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
