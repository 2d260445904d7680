//! Tenants: the root every other record of the ledger belongs to (the seed's `iam.tenants`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use phoenix_runtime::Violations;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A tenant to create, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
}

impl NewTenant {
    /// Checks both fields into `violations`; the value is only meaningful once they pass.
    pub fn parse(slug: &str, name: &str, violations: &mut Violations) -> Self {
        let slug_ok = (1..=63).contains(&slug.len())
            && slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        violations.check(
            slug_ok,
            "slug",
            "INVALID_SLUG",
            "must be 1-63 lower-case letters, digits or dashes, not starting with a dash (e.g. acme-games)",
        );
        let name = name.trim();
        violations.check(
            !(name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control)),
            "name",
            "INVALID_NAME",
            "is required: 1-200 characters without control characters",
        );
        Self {
            slug: slug.to_owned(),
            name: name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_runtime::Refusal;

    fn parse(slug: &str, name: &str) -> Result<NewTenant, Refusal> {
        let mut violations = Violations::new();
        let tenant = NewTenant::parse(slug, name, &mut violations);
        violations.finish().map(|()| tenant)
    }

    #[test]
    fn slugs_are_lower_case_words_with_dashes() {
        assert!(parse("acme-games", "Acme").is_ok());
        for bad in ["", "-acme", "Acme", "acme games", &"a".repeat(64)] {
            assert!(parse(bad, "Acme").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_bad_field_is_reported() {
        let refusal = parse("", " ").expect_err("both bad");
        let fields: Vec<_> = refusal
            .violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["slug", "name"]);
    }
}
