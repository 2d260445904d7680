//! The bus's rules as plain Rust: consumer group names, type patterns and how they match, event
//! types, the line a group's deliveries wait in, and the redelivery backoff.
//!
//! **Patterns.** A pattern is an exact event type (`coordinator.decision_taken`,
//! `phoenix.goals.v1.TaskCompleted`) or a prefix ending in `*` (`commerce.*`, `phoenix.*`, `*`).
//! Types and patterns use ASCII letters, digits, `_`, `-` and `.`, with no empty segment between
//! dots. A pattern matches an event when it matches its envelope type or its catalogue name.
//!
//! **The line.** A group's outstanding deliveries are taken by priority (highest first), then
//! in the order they reached the bus. Within one priority an aggregate's events go out in
//! order: while one of its events is leased to a member (or waits out a backoff), the later ones
//! of the same aggregate and priority wait, so a consumer that acknowledges before it takes the
//! next never sees them out of order. A dead letter leaves the line (later events go on);
//! replayed, it joins the line again.

use std::collections::HashSet;
use std::time::Duration;

use phoenix_runtime::error::{Violations, quote};

/// Longest consumer group name.
pub const MAX_GROUP_NAME: usize = 64;
/// Longest pattern or event type.
pub const MAX_TYPE_LENGTH: usize = 200;
/// Patterns a group may have.
pub const MAX_PATTERNS: usize = 32;

/// A valid consumer group name (`[a-z0-9][a-z0-9._-]{0,63}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    /// The name in `value`, or a violation of `field` saying what is wrong with it.
    pub fn parse(violations: &mut Violations, field: &str, value: &str) -> Self {
        let problem = if value.is_empty() {
            Some(("REQUIRED", "is required: a consumer group name".to_owned()))
        } else if value.len() > MAX_GROUP_NAME {
            Some((
                "INVALID_CONSUMER_GROUP",
                format!(
                    "must be at most {MAX_GROUP_NAME} characters, got {}",
                    value.len()
                ),
            ))
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            Some((
                "INVALID_CONSUMER_GROUP",
                format!(
                    "{}: only lowercase letters, digits, '.', '_' and '-' are allowed",
                    quote(value)
                ),
            ))
        } else if !value.as_bytes()[0].is_ascii_alphanumeric() {
            Some((
                "INVALID_CONSUMER_GROUP",
                format!("{}: must start with a letter or a digit", quote(value)),
            ))
        } else {
            None
        };
        if let Some((reason, description)) = problem {
            violations.add(field, reason, description);
        }
        Self(value.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is wrong with an event type or pattern, if anything.
fn type_problem(value: &str, wildcard: bool) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".into());
    }
    if value.len() > MAX_TYPE_LENGTH {
        return Some(format!(
            "must be at most {MAX_TYPE_LENGTH} characters, got {}",
            value.len()
        ));
    }
    let body = match value.strip_suffix('*') {
        Some(prefix) if wildcard => prefix,
        _ => value,
    };
    if let Some(bad) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.".contains(*c)))
    {
        return Some(if bad == '*' {
            format!(
                "{}: '*' is only allowed as the last character",
                quote(value)
            )
        } else {
            format!(
                "{}: {bad:?} is not allowed (letters, digits, '_', '-', '.'{})",
                quote(value),
                if wildcard { " and a final '*'" } else { "" }
            )
        });
    }
    // `commerce.*` leaves "commerce." whose last segment is the wildcard's; `*` leaves "".
    let segments: Vec<&str> = body.split('.').collect();
    let last = segments.len() - 1;
    let empty = segments
        .iter()
        .enumerate()
        .any(|(i, segment)| segment.is_empty() && !(i == last && body.len() < value.len()));
    if empty {
        return Some(format!(
            "{}: a '.' must sit between two non-empty names",
            quote(value)
        ));
    }
    None
}

/// Checks the `type` of a published event.
pub fn check_event_type(violations: &mut Violations, field: &str, value: &str) {
    if let Some(problem) = type_problem(value, false) {
        let reason = if value.is_empty() {
            "REQUIRED"
        } else {
            "INVALID_EVENT_TYPE"
        };
        violations.add(field, reason, problem);
    }
}

/// A group's type patterns: as given (sorted, without repeats) and as SQL `LIKE` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    pub given: Vec<String>,
    pub like: Vec<String>,
}

impl Patterns {
    /// The patterns of `values` (field `field`, each `field[i]`), every problem recorded.
    pub fn parse(violations: &mut Violations, field: &str, values: &[String]) -> Self {
        if values.is_empty() {
            violations.add(
                field,
                "REQUIRED",
                "give at least one event type pattern, e.g. \"commerce.*\" or \"*\"",
            );
        } else if values.len() > MAX_PATTERNS {
            violations.add(
                field,
                "TOO_MANY_PATTERNS",
                format!("at most {MAX_PATTERNS} patterns, got {}", values.len()),
            );
        }
        let mut seen = HashSet::new();
        for (i, value) in values.iter().enumerate() {
            if let Some(problem) = type_problem(value, true) {
                violations.add(format!("{field}[{i}]"), "INVALID_PATTERN", problem);
            } else if !seen.insert(value.as_str()) {
                violations.add(
                    format!("{field}[{i}]"),
                    "DUPLICATE_PATTERN",
                    format!("{} is given twice", quote(value)),
                );
            }
        }
        let mut given: Vec<String> = seen.into_iter().map(str::to_owned).collect();
        given.sort();
        let like = given.iter().map(|p| like_pattern(p)).collect();
        Self { given, like }
    }

    /// Whether `event_type` (or its catalogue name) matches one of the patterns.
    pub fn matches(&self, event_type: &str, catalog: Option<&str>) -> bool {
        let one = |name: &str| {
            self.given.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == p,
            })
        };
        one(event_type) || catalog.is_some_and(one)
    }
}

/// A valid pattern as a `LIKE` pattern (`\` escapes; `_` is the only special character the
/// pattern alphabet has).
fn like_pattern(pattern: &str) -> String {
    let (body, wildcard) = match pattern.strip_suffix('*') {
        Some(prefix) => (prefix, true),
        None => (pattern, false),
    };
    let mut like = body.replace('_', "\\_");
    if wildcard {
        like.push('%');
    }
    like
}

/// The key that orders an aggregate's events: tenant, type and id.
pub fn aggregate_key(tenant: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{tenant}/{aggregate_type}/{aggregate_id}")
}

/// A delivery of the line as the lease pass sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub bus_seq: i64,
    pub priority: i16,
    pub aggregate_key: String,
    /// Ready and visible now: it may be handed out.
    pub available: bool,
}

/// Which of `line` (in line order: priority descending, then bus order) to hand out now, at most
/// `limit`: the available ones whose aggregate has no earlier event of the same priority that
/// is leased or waiting out a backoff (a run of one aggregate's available events goes out
/// together, in order).
pub fn take_from_line(line: &[Waiting], limit: usize) -> Vec<i64> {
    let mut blocked: HashSet<(i16, &str)> = HashSet::new();
    let mut taken = Vec::new();
    for waiting in line {
        if taken.len() >= limit {
            break;
        }
        let key = (waiting.priority, waiting.aggregate_key.as_str());
        if !waiting.available {
            blocked.insert(key);
        } else if !blocked.contains(&key) {
            taken.push(waiting.bus_seq);
        }
    }
    taken
}

/// How long a failed delivery waits before it is delivered again: 100 ms doubled per failed
/// attempt, at most 30 s.
pub fn redelivery_delay(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_millis(100)
        .saturating_mul(2_u32.saturating_pow(exponent))
        .min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(values: &[&str]) -> Vec<(String, String)> {
        let mut violations = Violations::new();
        let owned: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        Patterns::parse(&mut violations, "patterns", &owned);
        match violations.finish() {
            Ok(()) => Vec::new(),
            Err(refusal) => refusal
                .violations
                .into_iter()
                .map(|v| (v.field, v.reason))
                .collect(),
        }
    }

    #[test]
    fn patterns_are_exact_types_or_prefixes() {
        assert!(
            reasons(&["*", "commerce.*", "phoenix.goals.v1.TaskCompleted", "a-b_c"]).is_empty()
        );
        for bad in [
            "",
            "com*merce",
            "commerce..x",
            ".x",
            "x.",
            "a b",
            "*.x",
            "x.**",
        ] {
            assert_eq!(
                reasons(&[bad]),
                vec![("patterns[0]".to_owned(), "INVALID_PATTERN".to_owned())],
                "{bad:?}"
            );
        }
        assert_eq!(
            reasons(&["a", "a"]),
            vec![("patterns[1]".to_owned(), "DUPLICATE_PATTERN".to_owned())]
        );
        assert_eq!(reasons(&[])[0].1, "REQUIRED");
    }

    #[test]
    fn matching_and_like() {
        let mut violations = Violations::new();
        let patterns = Patterns::parse(
            &mut violations,
            "p",
            &["commerce.*".into(), "goal_x".into()],
        );
        assert!(patterns.matches("commerce.purchase_completed", None));
        assert!(patterns.matches("phoenix.x", Some("commerce.item_viewed")));
        assert!(!patterns.matches("goalXx", None));
        assert!(patterns.matches("goal_x", None));
        assert_eq!(patterns.like, vec!["commerce.%", "goal\\_x"]);
    }

    #[test]
    fn group_names() {
        for (value, reason) in [
            ("", Some("REQUIRED")),
            ("Analytics", Some("INVALID_CONSUMER_GROUP")),
            ("-x", Some("INVALID_CONSUMER_GROUP")),
            ("analytics.v1_writer-2", None),
        ] {
            let mut violations = Violations::new();
            GroupName::parse(&mut violations, "consumer_group", value);
            let got = violations
                .finish()
                .err()
                .map(|r| r.violations[0].reason.clone());
            assert_eq!(got.as_deref(), reason, "{value:?}");
        }
    }

    #[test]
    fn the_line_keeps_an_aggregates_order_within_a_priority() {
        let w = |bus_seq, priority, key: &str, available| Waiting {
            bus_seq,
            priority,
            aggregate_key: key.into(),
            available,
        };
        let line = [
            w(5, 3, "a", true),
            w(1, 2, "a", false), // leased: a's later NORMAL events wait
            w(2, 2, "a", true),
            w(3, 2, "b", true),
            w(4, 2, "b", true),
        ];
        assert_eq!(take_from_line(&line, 10), vec![5, 3, 4]);
        assert_eq!(take_from_line(&line, 2), vec![5, 3]);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(redelivery_delay(1), Duration::from_millis(100));
        assert_eq!(redelivery_delay(3), Duration::from_millis(400));
        assert_eq!(redelivery_delay(50), Duration::from_secs(30));
    }
}
