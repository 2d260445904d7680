//! `phoenix import directory <users.ndjson>`: the legacy bot's users (seed 001), one JSON object
//! per line, imported once per Telegram id.
//!
//! A line is imported whole or not at all. A line that cannot be (not UTF-8, not JSON, no
//! Telegram id or a null one, a used trial without its end, a value out of range, an email or
//! username another user has) is quarantined with its line number, the field path and the
//! rule it broke (at least one reason per line), and the import goes on. Fields this schema has
//! no column for are kept verbatim on the user (`legacy_fields`). A user whose Telegram id is
//! already registered is left as it is, so a second run of the same file changes nothing.
//!
//! Known fields: `telegram_id` (required), `first_name`, `last_name`, `username`, `email`,
//! `time_zone`, `archetype_primary`, `archetype_secondary`, `archetype_confidence` (0–1),
//! `archetype_updated_at`, `conversion_score`, `churn_risk_score` (0–100), `lifetime_value`
//! (major units, two decimals), `vip_trial_used`, `vip_trial_end_date`,
//! `last_engagement_date`, `engagement_streak`. Times are RFC 3339, or ISO 8601 without an
//! offset (UTC).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::{Directory, ImportedUser};
use crate::domain::{NewUser, ProfileInput};

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The NDJSON export of the legacy users.
    pub file: PathBuf,
    /// Where the quarantine report goes (one JSON object per rejected line); default
    /// `<file>.quarantine.ndjson`.
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
}

/// One rejected line: where, which field, which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub line: usize,
    pub field: String,
    pub rule: String,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub lines: usize,
    pub imported: usize,
    /// Lines whose Telegram id was already registered.
    pub unchanged: usize,
    /// Lines rejected (each may have several entries in `quarantine`).
    pub rejected: usize,
    pub quarantine: Vec<Quarantined>,
}

impl ImportSummary {
    pub fn line(&self) -> String {
        format!(
            "directory-import lines={} imported={} unchanged={} quarantined={}",
            self.lines, self.imported, self.unchanged, self.rejected
        )
    }
}

const KNOWN: &[&str] = &[
    "telegram_id",
    "first_name",
    "last_name",
    "username",
    "email",
    "time_zone",
    "archetype_primary",
    "archetype_secondary",
    "archetype_confidence",
    "archetype_updated_at",
    "conversion_score",
    "churn_risk_score",
    "lifetime_value",
    "vip_trial_used",
    "vip_trial_end_date",
    "last_engagement_date",
    "engagement_streak",
];

/// Imports `path`, calling `progress(lines_done, lines_total)` as it goes, and writes the
/// quarantine report to `quarantine_path`.
pub async fn run(
    directory: &Directory,
    path: &Path,
    quarantine_path: &Path,
    progress: impl Fn(u64, u64),
) -> anyhow::Result<ImportSummary> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let lines = split_lines(&bytes);
    let total = lines.len() as u64;
    let mut summary = ImportSummary::default();
    for (index, raw) in lines.into_iter().enumerate() {
        let number = index + 1;
        progress(number as u64, total);
        if raw.trim_ascii().is_empty() {
            continue;
        }
        summary.lines += 1;
        // A line that is not UTF-8 is rejected alone: the lines after it are still read.
        let parsed = std::str::from_utf8(raw).map_err(|e| {
            vec![(
                String::new(),
                "INVALID_UTF8".to_owned(),
                format!("the line is not UTF-8 text: {e}"),
            )]
        });
        let rejected = match parsed.and_then(parse_line) {
            Err(reasons) => reasons,
            Ok(user) => match directory.import_user(&user).await {
                Ok(Some(_)) => {
                    summary.imported += 1;
                    continue;
                }
                Ok(None) => {
                    summary.unchanged += 1;
                    continue;
                }
                Err(error) => match error.refusal() {
                    // A rule of the directory said no (a taken email or username).
                    Some(refusal) => vec![(
                        refusal.field().unwrap_or("").to_owned(),
                        refusal.reason.clone(),
                        refusal.message.clone(),
                    )],
                    // The database or the service failed: stop, the report so far is kept.
                    None => {
                        write_report(quarantine_path, &summary.quarantine)?;
                        return Err(anyhow::anyhow!("line {number}: {error}"));
                    }
                },
            },
        };
        summary.rejected += 1;
        summary.quarantine.extend(
            rejected
                .into_iter()
                .map(|(field, rule, message)| Quarantined {
                    line: number,
                    field,
                    rule,
                    message,
                }),
        );
    }
    write_report(quarantine_path, &summary.quarantine)?;
    Ok(summary)
}

/// The file's lines as bytes, without their `\n` or `\r\n` (and no empty line after a final
/// newline), so one line that is not UTF-8 does not stop the others from being read.
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect()
}

fn write_report(path: &Path, quarantine: &[Quarantined]) -> anyhow::Result<()> {
    let mut text = String::new();
    for entry in quarantine {
        text.push_str(&serde_json::to_string(entry)?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// (field path, rule, message) of each reason a line cannot be imported.
type Reasons = Vec<(String, String, String)>;

/// One line as a user to import, or every reason it cannot be.
pub fn parse_line(text: &str) -> Result<ImportedUser, Reasons> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| vec![(String::new(), "INVALID_JSON".to_owned(), e.to_string())])?;
    let Value::Object(record) = value else {
        return Err(vec![(
            String::new(),
            "NOT_AN_OBJECT".to_owned(),
            "each line must be a JSON object".to_owned(),
        )]);
    };
    let mut reasons = Reasons::new();
    let mut bad = |field: &str, rule: &str, message: String| {
        reasons.push((field.to_owned(), rule.to_owned(), message));
    };
    let telegram_id = match integer(&record, "telegram_id", &mut bad) {
        Some(id) if id <= 0 => {
            bad(
                "telegram_id",
                "INVALID_TELEGRAM_ID",
                format!("must be a positive Telegram user id, got {id}"),
            );
            None
        }
        id => id,
    };
    // A null Telegram id is a missing one.
    if matches!(record.get("telegram_id"), None | Some(Value::Null)) {
        bad(
            "telegram_id",
            "REQUIRED",
            "is required: the user's Telegram id".into(),
        );
    }
    let first = string(&record, "first_name", &mut bad);
    let last = string(&record, "last_name", &mut bad);
    let username = string(&record, "username", &mut bad);
    let name = format!("{first} {last}").trim().to_owned();
    // The display name is made of the first and last names, or else the username: its
    // violations are named after the field that broke the rule.
    let name_field = if name.is_empty() {
        "username"
    } else if first.trim().chars().any(char::is_control) {
        "first_name"
    } else if last.trim().chars().any(char::is_control)
        || last.trim().chars().count() > first.trim().chars().count()
    {
        "last_name"
    } else {
        "first_name"
    };
    let display_name = match (name.is_empty(), username.is_empty(), telegram_id) {
        (false, _, _) => name,
        (true, false, _) => username.clone(),
        (true, true, id) => format!("Telegram user {}", id.unwrap_or_default()),
    };
    let lifetime_value_minor = match record.get("lifetime_value") {
        None | Some(Value::Null) => 0,
        Some(value) => match decimal_minor(value) {
            Some(minor) => minor,
            None => {
                bad(
                    "lifetime_value",
                    "INVALID_AMOUNT",
                    "must be an amount with at most two decimals".into(),
                );
                0
            }
        },
    };
    let trial_used = match record.get("vip_trial_used") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(used)) => *used,
        Some(_) => {
            bad(
                "vip_trial_used",
                "NOT_A_BOOLEAN",
                "must be true or false".into(),
            );
            false
        }
    };
    let trial_end = time(&record, "vip_trial_end_date", &mut bad);
    // A used trial is never imported as unused: without its end (missing or null) the line
    // is quarantined. (An end that does not parse was already told so.)
    if trial_used && matches!(record.get("vip_trial_end_date"), None | Some(Value::Null)) {
        bad(
            "vip_trial_end_date",
            "TRIAL_END_REQUIRED",
            "is required when vip_trial_used is true".into(),
        );
    }
    let input = ProfileInput {
        email: string(&record, "email", &mut bad),
        display_name,
        time_zone: string(&record, "time_zone", &mut bad),
        username,
        telegram_id: telegram_id.unwrap_or_default(),
        archetype_primary: string(&record, "archetype_primary", &mut bad),
        archetype_secondary: string(&record, "archetype_secondary", &mut bad),
        archetype_confidence: number(&record, "archetype_confidence", &mut bad),
        conversion_score: number(&record, "conversion_score", &mut bad),
        churn_risk_score: number(&record, "churn_risk_score", &mut bad),
        lifetime_value_minor,
        last_engagement_at: time(&record, "last_engagement_date", &mut bad),
        engagement_streak: integer(&record, "engagement_streak", &mut bad)
            .map_or(0, |n| i32::try_from(n).unwrap_or(-1)),
        ..ProfileInput::default()
    };
    let archetype_updated_at = time(&record, "archetype_updated_at", &mut bad);
    let new = NewUser::parse(&input);
    if let Err(refusal) = &new {
        for violation in &refusal.violations {
            // A line without a Telegram id was already told so; "or an email" adds nothing.
            if violation.field == "email" && violation.reason == "REQUIRED" && telegram_id.is_none()
            {
                continue;
            }
            let field = match violation.field.as_str() {
                "display_name" => name_field,
                "last_engagement_time" => "last_engagement_date",
                other => other,
            };
            bad(field, &violation.reason, violation.description.clone());
        }
    }
    match new {
        Ok(new) if reasons.is_empty() => Ok(ImportedUser {
            new,
            legacy_fields: record
                .into_iter()
                .filter(|(key, _)| !KNOWN.contains(&key.as_str()))
                .collect(),
            trial_ends_at: trial_end.filter(|_| trial_used),
            archetype_updated_at,
        }),
        // Never a rejected line without a reason.
        Ok(_) => Err(reasons),
        Err(refusal) if reasons.is_empty() => Err(vec![(
            refusal.field().unwrap_or("").to_owned(),
            refusal.reason.clone(),
            refusal.message.clone(),
        )]),
        Err(_) => Err(reasons),
    }
}

type Bad<'a> = dyn FnMut(&str, &str, String) + 'a;

fn string(record: &Map<String, Value>, field: &str, bad: &mut Bad<'_>) -> String {
    match record.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            bad(field, "NOT_A_STRING", "must be a string".into());
            String::new()
        }
    }
}

fn number(record: &Map<String, Value>, field: &str, bad: &mut Bad<'_>) -> Option<f64> {
    match record.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().parse::<f64>().is_ok() => s.trim().parse().ok(),
        Some(_) => {
            bad(field, "NOT_A_NUMBER", "must be a number".into());
            None
        }
    }
}

fn integer(record: &Map<String, Value>, field: &str, bad: &mut Bad<'_>) -> Option<i64> {
    match record.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
        Some(_) => {
            bad(field, "NOT_AN_INTEGER", "must be a whole number".into());
            None
        }
    }
}

fn time(record: &Map<String, Value>, field: &str, bad: &mut Bad<'_>) -> Option<DateTime<Utc>> {
    match record.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let parsed = DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                        .iter()
                        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                        .map(|t| t.and_utc())
                })
                .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)));
            if parsed.is_none() {
                bad(
                    field,
                    "INVALID_TIMESTAMP",
                    "must be an RFC 3339 time".into(),
                );
            }
            parsed
        }
        Some(_) => {
            bad(
                field,
                "INVALID_TIMESTAMP",
                "must be an RFC 3339 time".into(),
            );
            None
        }
    }
}

/// An amount in major units (`12.5`, `"12.50"`) as minor units, exactly; `None` for anything
/// negative, with more than two decimals, or too large.
fn decimal_minor(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if fraction.len() > 2
        || whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_line_becomes_a_user_with_its_unknown_fields_kept() {
        let user = parse_line(
            r#"{"telegram_id": 123, "first_name": "Ana", "last_name": "Ruiz", "username": "ana_r",
                "conversion_score": "55.50", "lifetime_value": 12.5, "vip_trial_used": true,
                "vip_trial_end_date": "2025-10-08T12:00:00", "besitos": 40}"#,
        )
        .expect("valid");
        let p = &user.new.profile;
        assert_eq!(p.display_name, "Ana Ruiz");
        assert_eq!(p.telegram_id, Some(123));
        assert_eq!(p.conversion_score, Some(5550));
        assert_eq!(p.lifetime_value_minor, 1250);
        assert!(user.trial_ends_at.is_some());
        assert_eq!(user.legacy_fields.get("besitos"), Some(&Value::from(40)));
    }

    #[test]
    fn every_reason_of_a_bad_line_is_named_by_field_and_rule() {
        let reasons = parse_line(
            r#"{"first_name": "X", "churn_risk_score": 120, "lifetime_value": "1.234",
                "last_engagement_date": "yesterday"}"#,
        )
        .expect_err("invalid");
        let rules: Vec<_> = reasons
            .iter()
            .map(|(f, r, _)| (f.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            rules,
            [
                ("telegram_id", "REQUIRED"),
                ("lifetime_value", "INVALID_AMOUNT"),
                ("last_engagement_date", "INVALID_TIMESTAMP"),
                ("churn_risk_score", "OUT_OF_RANGE"),
            ]
        );
        assert_eq!(
            parse_line("not json").expect_err("bad")[0].1,
            "INVALID_JSON"
        );
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(decimal_minor(&Value::from(0.1)), Some(10));
        assert_eq!(decimal_minor(&Value::from("19.99")), Some(1999));
        assert_eq!(decimal_minor(&Value::from(-1)), None);
        assert_eq!(decimal_minor(&Value::from("1.001")), None);
    }

    fn rules(text: &str) -> Vec<(String, String)> {
        let reasons = parse_line(text).expect_err("rejected");
        assert!(!reasons.is_empty(), "a rejected line has a reason");
        reasons.into_iter().map(|(f, r, _)| (f, r)).collect()
    }

    fn one(field: &str, rule: &str) -> Vec<(String, String)> {
        vec![(field.to_owned(), rule.to_owned())]
    }

    #[test]
    fn a_null_or_non_positive_telegram_id_is_named() {
        assert_eq!(
            rules(r#"{"telegram_id": null, "first_name": "A"}"#),
            one("telegram_id", "REQUIRED")
        );
        for id in ["0", "-3"] {
            assert_eq!(
                rules(&format!(r#"{{"telegram_id": {id}, "first_name": "A"}}"#)),
                one("telegram_id", "INVALID_TELEGRAM_ID")
            );
        }
    }

    #[test]
    fn display_name_violations_name_the_field_they_came_from() {
        let long = "x".repeat(250);
        assert_eq!(
            rules(&format!(
                r#"{{"telegram_id": 1, "first_name": "A", "last_name": "{long}"}}"#
            )),
            one("last_name", "TOO_LONG")
        );
        assert_eq!(
            rules(&format!(r#"{{"telegram_id": 1, "first_name": "{long}"}}"#)),
            one("first_name", "TOO_LONG")
        );
        assert_eq!(
            rules(r#"{"telegram_id": 1, "first_name": "Ana", "last_name": "R\u0007z"}"#),
            one("last_name", "CONTROL_CHARACTER")
        );
    }

    #[test]
    fn a_used_trial_is_never_imported_as_unused() {
        assert_eq!(
            rules(r#"{"telegram_id": 1, "vip_trial_used": true, "vip_trial_end_date": null}"#),
            one("vip_trial_end_date", "TRIAL_END_REQUIRED")
        );
        assert_eq!(
            rules(r#"{"telegram_id": 1, "vip_trial_used": "true"}"#),
            one("vip_trial_used", "NOT_A_BOOLEAN")
        );
        let unused = parse_line(r#"{"telegram_id": 1, "vip_trial_used": null}"#).expect("ok");
        assert!(unused.trial_ends_at.is_none());
    }

    #[test]
    fn lines_are_split_as_bytes() {
        assert_eq!(
            split_lines(b"a\r\n\xff\nb\n"),
            [&b"a"[..], &b"\xff"[..], &b"b"[..]]
        );
        assert!(split_lines(b"").is_empty());
    }
}
