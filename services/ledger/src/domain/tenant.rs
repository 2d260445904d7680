//! Tenants: the root every other record of the ledger belongs to (the seed's `iam.tenants`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Refusal;

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
    pub fn parse(slug: &str, name: &str) -> Result<Self, Vec<Refusal>> {
        let mut refusals = Vec::new();
        let slug_ok = (1..=63).contains(&slug.len())
            && slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            refusals.push(Refusal::invalid(
                "slug",
                "INVALID_SLUG",
                "must be 1-63 lower-case letters, digits or dashes, not starting with a dash (e.g. acme-games)",
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            refusals.push(Refusal::invalid(
                "name",
                "INVALID_NAME",
                "is required: 1-200 characters without control characters",
            ));
        }
        if refusals.is_empty() {
            Ok(Self {
                slug: slug.to_owned(),
                name: name.to_owned(),
            })
        } else {
            Err(refusals)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_words_with_dashes() {
        assert!(NewTenant::parse("acme-games", "Acme").is_ok());
        for bad in ["", "-acme", "Acme", "acme games", &"a".repeat(64)] {
            assert!(NewTenant::parse(bad, "Acme").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_bad_field_is_reported() {
        let refusals = NewTenant::parse("", " ").expect_err("both bad");
        let fields: Vec<_> = refusals.iter().filter_map(|r| r.field.as_deref()).collect();
        assert_eq!(fields, ["slug", "name"]);
    }
}
