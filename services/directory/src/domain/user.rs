//! Users as the directory knows them (seed 002's fields and seed 001's), and the rules for
//! registering and updating one.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{VipStatus, hundredths, metadata};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest email address (RFC 5321's limit).
pub const MAX_EMAIL_BYTES: usize = 320;
/// Longest archetype name, in characters (seed 001's `String(50)`).
pub const MAX_ARCHETYPE_CHARS: usize = 50;
/// Time zone of a user who did not name one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// Scores are 0.00 to 100.00.
pub const MAX_SCORE: i64 = 10_000;
/// Archetype confidence is 0.00 to 1.00.
pub const MAX_CONFIDENCE: i64 = 100;

/// The fields of a user that a caller writes: at registration, and by path in an update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// Lower-cased, so uniqueness is case-insensitive.
    pub email: Option<String>,
    pub display_name: String,
    /// IANA name, from the tz database every Phoenix service shares.
    pub time_zone: String,
    /// Lower-cased, `[a-z0-9_]{3,32}`.
    pub username: Option<String>,
    pub telegram_id: Option<i64>,
    pub superuser: bool,
    pub metadata: Map<String, Value>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub archetype_primary: Option<String>,
    pub archetype_secondary: Option<String>,
    /// Hundredths: 0..=100.
    pub archetype_confidence: Option<i16>,
    /// Hundredths: 0..=10000.
    pub conversion_score: Option<i16>,
    /// Hundredths: 0..=10000.
    pub churn_risk_score: Option<i16>,
    pub lifetime_value_minor: i64,
    pub last_engagement_at: Option<DateTime<Utc>>,
    pub engagement_streak: i32,
}

/// What a caller sent for the [`Profile`] fields, as plain values (the API decodes timestamps
/// and structs; empty strings and zeros mean "none").
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub email: String,
    pub display_name: String,
    pub time_zone: String,
    pub username: String,
    pub telegram_id: i64,
    pub superuser: bool,
    pub metadata: Map<String, Value>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub archetype_primary: String,
    pub archetype_secondary: String,
    pub archetype_confidence: Option<f64>,
    pub conversion_score: Option<f64>,
    pub churn_risk_score: Option<f64>,
    pub lifetime_value_minor: i64,
    pub last_engagement_at: Option<DateTime<Utc>>,
    pub engagement_streak: i32,
}

/// The paths an update may name, in the order a registration validates them.
pub const WRITABLE: &[&str] = &[
    "email",
    "display_name",
    "time_zone",
    "username",
    "telegram_id",
    "superuser",
    "metadata",
    "last_login_time",
    "archetype_primary",
    "archetype_secondary",
    "archetype_confidence",
    "conversion_score",
    "churn_risk_score",
    "lifetime_value_minor",
    "last_engagement_time",
    "engagement_streak",
];

/// The fields of a user no update may name: the server keeps them.
pub const READ_ONLY: &[&str] = &[
    "id",
    "create_time",
    "update_time",
    "active",
    "deactivate_time",
    "vip_trial_used",
    "vip_trial_end_time",
    "archetype_update_time",
    "vip_status",
];

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub profile: Profile,
    pub active: bool,
    pub archetype_updated_at: Option<DateTime<Utc>>,
    pub vip_trial_used: bool,
    pub vip_trial_ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Version of the user's event stream.
    pub version: i64,
    /// The VIP status at the instant the user was read.
    pub vip_status: VipStatus,
}

/// A registration that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub profile: Profile,
}

impl NewUser {
    /// Validates every field at once, so the caller sees all problems in one answer.
    pub fn parse(input: &ProfileInput) -> Result<Self, Refusal> {
        let paths: Vec<String> = WRITABLE.iter().map(|p| (*p).to_owned()).collect();
        let profile = Profile::default().with(input, &paths, "")?;
        Ok(Self { profile })
    }
}

impl Profile {
    /// This profile with the fields named by `paths` taken from `input`, every one validated
    /// (violations are named `{prefix}{path}`), and the cross-field rules checked on the
    /// result.
    pub fn with(
        &self,
        input: &ProfileInput,
        paths: &[String],
        prefix: &str,
    ) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let mut next = self.clone();
        // Whether the result has a Telegram id decides whether an empty email is allowed.
        let has_telegram = if paths.iter().any(|p| p == "telegram_id") {
            input.telegram_id != 0
        } else {
            self.telegram_id.is_some()
        };
        for path in paths {
            let field = format!("{prefix}{path}");
            next.set(&mut v, &field, path, input, has_telegram);
        }
        if next.email.is_none() && next.telegram_id.is_none() && v.is_empty() {
            // Only an update that removes the Telegram id of a user without email gets here.
            v.add(
                format!("{prefix}telegram_id"),
                "REQUIRED",
                "is required: a user has an email, a Telegram id, or both",
            );
        }
        v.finish()?;
        Ok(next)
    }

    /// The values of the fields named by `paths` alone, so an update's bad values are refused
    /// with its bad paths in one answer; the rule that spans fields is checked on the loaded
    /// user by [`Profile::with`].
    pub fn check_paths(
        input: &ProfileInput,
        paths: &[String],
        prefix: &str,
    ) -> Result<(), Refusal> {
        let reachable = Self {
            email: Some(String::new()),
            telegram_id: Some(1),
            ..Self::default()
        };
        reachable.with(input, paths, prefix).map(|_| ())
    }

    fn set(
        &mut self,
        v: &mut Violations,
        field: &str,
        path: &str,
        input: &ProfileInput,
        has_telegram: bool,
    ) {
        match path {
            "email" => self.email = email(v, field, &input.email, has_telegram),
            "display_name" => {
                self.display_name = v.text(field, &input.display_name, MAX_DISPLAY_NAME_CHARS);
            }
            "time_zone" => {
                let zone = match input.time_zone.trim() {
                    "" => DEFAULT_TIME_ZONE,
                    named => named,
                };
                v.time_zone(field, zone);
                zone.clone_into(&mut self.time_zone);
            }
            "username" => self.username = username(v, field, &input.username),
            "telegram_id" => self.telegram_id = telegram_id(v, field, input.telegram_id),
            "superuser" => self.superuser = input.superuser,
            "metadata" => self.metadata = metadata(v, field, input.metadata.clone()),
            "last_login_time" => self.last_login_at = input.last_login_at,
            "archetype_primary" => {
                self.archetype_primary = archetype(v, field, &input.archetype_primary);
            }
            "archetype_secondary" => {
                self.archetype_secondary = archetype(v, field, &input.archetype_secondary);
            }
            "archetype_confidence" => {
                self.archetype_confidence =
                    score(v, field, input.archetype_confidence, MAX_CONFIDENCE);
            }
            "conversion_score" => {
                self.conversion_score = score(v, field, input.conversion_score, MAX_SCORE);
            }
            "churn_risk_score" => {
                self.churn_risk_score = score(v, field, input.churn_risk_score, MAX_SCORE);
            }
            "lifetime_value_minor" => {
                self.lifetime_value_minor =
                    v.range(field, input.lifetime_value_minor, 0..=i64::MAX, None);
            }
            "last_engagement_time" => self.last_engagement_at = input.last_engagement_at,
            "engagement_streak" => {
                self.engagement_streak =
                    v.range(field, input.engagement_streak, 0..=i32::MAX, None);
            }
            _ => v.add(field, "UNKNOWN_FIELD", "is not a user field"),
        }
    }

    /// Whether an archetype field differs from `other`'s (the server then stamps
    /// `archetype_updated_at`).
    pub fn archetype_changed(&self, other: &Self) -> bool {
        self.archetype_primary != other.archetype_primary
            || self.archetype_secondary != other.archetype_secondary
            || self.archetype_confidence != other.archetype_confidence
    }
}

fn email(v: &mut Violations, field: &str, value: &str, has_telegram: bool) -> Option<String> {
    let email = value.trim().to_lowercase();
    if email.is_empty() {
        if !has_telegram {
            v.add(field, "REQUIRED", "is required unless telegram_id is given");
        }
        return None;
    }
    v.check(
        is_plausible_email(&email),
        field,
        "INVALID_EMAIL",
        "must look like name@example.com",
    );
    Some(email)
}

fn username(v: &mut Violations, field: &str, value: &str) -> Option<String> {
    let name = value.trim().to_lowercase();
    if name.is_empty() {
        return None;
    }
    let valid = (3..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    v.check(
        valid,
        field,
        "INVALID_USERNAME",
        "must be 3 to 32 letters, digits or underscores",
    );
    Some(name)
}

fn telegram_id(v: &mut Violations, field: &str, value: i64) -> Option<i64> {
    if value == 0 {
        return None;
    }
    v.check(
        value > 0,
        field,
        "INVALID_TELEGRAM_ID",
        "must be a positive Telegram user id (0 for none)",
    );
    Some(value)
}

fn archetype(v: &mut Violations, field: &str, value: &str) -> Option<String> {
    let name = v.optional_text(field, value, MAX_ARCHETYPE_CHARS);
    (!name.is_empty()).then_some(name)
}

fn score(v: &mut Violations, field: &str, value: Option<f64>, max: i64) -> Option<i16> {
    let value = value?;
    // In 0..=max (at most 10,000), so it fits.
    i16::try_from(hundredths(v, field, value, max)).ok()
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

    fn input(email: &str, display_name: &str, time_zone: &str) -> ProfileInput {
        ProfileInput {
            email: email.into(),
            display_name: display_name.into(),
            time_zone: time_zone.into(),
            ..ProfileInput::default()
        }
    }

    #[test]
    fn a_valid_registration_is_normalized() {
        let mut raw = input("  Ada@Example.COM ", " Ada ", "");
        raw.username = " Ada_L ".into();
        raw.conversion_score = Some(55.5);
        let user = NewUser::parse(&raw).expect("valid");
        assert_eq!(user.profile.email.as_deref(), Some("ada@example.com"));
        assert_eq!(user.profile.display_name, "Ada");
        assert_eq!(user.profile.time_zone, "UTC");
        assert_eq!(user.profile.username.as_deref(), Some("ada_l"));
        assert_eq!(user.profile.conversion_score, Some(5550));
    }

    /// The fields a rejected registration names, in order, with their reasons.
    fn invalid_fields(raw: &ProfileInput) -> Vec<(String, String)> {
        let refusal = NewUser::parse(raw).expect_err("invalid");
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
        let mut raw = input("not-an-email", "", "Mars/Olympus");
        raw.username = "a!".into();
        raw.telegram_id = -5;
        raw.churn_risk_score = Some(100.5);
        raw.archetype_confidence = Some(1.5);
        raw.lifetime_value_minor = -1;
        assert_eq!(
            invalid_fields(&raw),
            pairs(&[
                ("email", "INVALID_EMAIL"),
                ("display_name", "REQUIRED"),
                ("time_zone", "INVALID_TIME_ZONE"),
                ("username", "INVALID_USERNAME"),
                ("telegram_id", "INVALID_TELEGRAM_ID"),
                ("archetype_confidence", "OUT_OF_RANGE"),
                ("churn_risk_score", "OUT_OF_RANGE"),
                ("lifetime_value_minor", "OUT_OF_RANGE"),
            ])
        );
    }

    #[test]
    fn a_telegram_user_needs_no_email_but_someone_needs_one_or_the_other() {
        let mut raw = input("", "Bot user", "");
        raw.telegram_id = 42;
        assert_eq!(
            NewUser::parse(&raw).expect("valid").profile.telegram_id,
            Some(42)
        );
        assert_eq!(
            invalid_fields(&input("", "Nobody", "")),
            pairs(&[("email", "REQUIRED")])
        );
    }

    #[test]
    fn an_update_checks_only_its_paths_and_the_result() {
        let base = NewUser::parse(&input("a@b.com", "A", ""))
            .expect("valid")
            .profile;
        let raw = input("", "", "");
        let refusal = base
            .with(&raw, &["email".to_owned()], "user.")
            .expect_err("no way to reach the user");
        assert_eq!(refusal.violations[0].field, "user.email");
        assert_eq!(refusal.violations[0].reason, "REQUIRED");
        let mut raw = input("", "", "");
        raw.conversion_score = Some(10.0);
        let next = base
            .with(&raw, &["conversion_score".to_owned()], "user.")
            .expect("valid");
        assert_eq!(next.conversion_score, Some(1000));
        assert_eq!(next.display_name, "A");
    }

    #[test]
    fn control_characters_are_refused_before_they_reach_the_database() {
        assert_eq!(
            invalid_fields(&input("a\u{0}@b.com", "A\u{0}", "UTC\u{0}")),
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
