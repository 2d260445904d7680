//! Composite requirements (seed 001's `_validate_composite_requirements`), as plain Rust: the
//! facts gathered from every context go in, the missing requirements with their suggestions
//! come out. No gRPC here; `gather` in [`super::facts`] collects the facts.
//!
//! Who knows what: the narrative knows the fragments unlocked and the experiences completed
//! (its check lists the ones missing); the directory knows VIP access; the ledger knows the XP
//! balance and the items held; missions knows the level curve and the badges claims granted
//! (seed 001's achievements).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A kind of requirement, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequirementKind {
    Vip,
    Level,
    Item,
    Achievement,
    Experience,
    Fragment,
}

/// One requirement the user does not meet, with seed 001's suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub kind: RequirementKind,
    /// The item, achievement, experience or fragment; empty for VIP and level.
    pub id: String,
    pub required: i64,
    pub current: i64,
    pub suggestion: String,
}

/// What a fragment requires, as the narrative answered it (its own facts already judged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Required {
    pub vip: bool,
    pub min_level: i32,
    /// Item code → quantity.
    pub items: BTreeMap<String, i64>,
    pub achievements: Vec<String>,
    /// What the narrative found missing among what it knows.
    pub missing_experiences: Vec<String>,
    pub missing_fragments: Vec<String>,
}

impl Required {
    /// Whether any fact of another context must be read.
    pub fn needs_vip(&self) -> bool {
        self.vip
    }

    pub fn needs_level(&self) -> bool {
        self.min_level > 1
    }

    pub fn needs_items(&self) -> bool {
        !self.items.is_empty()
    }

    pub fn needs_achievements(&self) -> bool {
        !self.achievements.is_empty()
    }
}

/// One step of the missions level curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelStep {
    pub level: i32,
    pub min_xp: i64,
}

/// The facts of the user gathered from the other contexts; `None`: not read (not required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub vip: Option<bool>,
    /// XP balance and the level curve.
    pub xp: Option<(i64, Vec<LevelStep>)>,
    /// Item code → quantity held.
    pub holdings: Option<BTreeMap<String, i64>>,
    /// Badge ids the user's claims granted.
    pub badges: Option<Vec<String>>,
}

/// The level an XP balance reaches on `curve` (1 when the curve is empty or starts above it).
pub fn level_of(xp: i64, curve: &[LevelStep]) -> i32 {
    curve
        .iter()
        .filter(|step| step.min_xp <= xp)
        .map(|step| step.level)
        .max()
        .unwrap_or(1)
}

/// Every requirement `facts` do not meet, in a stable order: VIP, level, items, achievements,
/// experiences, fragments. A fact that was not read counts as not met (its requirement could
/// not be confirmed).
pub fn missing(required: &Required, facts: &Facts) -> Vec<Missing> {
    let mut found = Vec::new();
    if required.vip && facts.vip != Some(true) {
        found.push(Missing {
            kind: RequirementKind::Vip,
            id: String::new(),
            required: 1,
            current: 0,
            suggestion: "become VIP: subscribe to a VIP plan, or start the free trial if you \
                         have not used it"
                .to_owned(),
        });
    }
    if required.needs_level() {
        let (xp, curve) = facts.xp.clone().unwrap_or((0, Vec::new()));
        let level = level_of(xp, &curve);
        if level < required.min_level {
            let needed = curve
                .iter()
                .find(|step| step.level == required.min_level)
                .map(|step| step.min_xp);
            let suggestion = match needed {
                Some(min_xp) => format!(
                    "earn {} more XP (completing missions) to reach level {}",
                    min_xp - xp,
                    required.min_level
                ),
                None => format!(
                    "reach level {} (the level curve has no such level yet)",
                    required.min_level
                ),
            };
            found.push(Missing {
                kind: RequirementKind::Level,
                id: String::new(),
                required: i64::from(required.min_level),
                current: i64::from(level),
                suggestion,
            });
        }
    }
    let held = facts.holdings.clone().unwrap_or_default();
    for (item, &quantity) in &required.items {
        let have = held.get(item).copied().unwrap_or(0);
        if have < quantity {
            found.push(Missing {
                kind: RequirementKind::Item,
                id: item.clone(),
                required: quantity,
                current: have,
                suggestion: format!(
                    "get {} more of item {item} (from the shop or as a mission reward)",
                    quantity - have
                ),
            });
        }
    }
    let badges = facts.badges.clone().unwrap_or_default();
    for achievement in &required.achievements {
        if !badges.contains(achievement) {
            found.push(Missing {
                kind: RequirementKind::Achievement,
                id: achievement.clone(),
                required: 1,
                current: 0,
                suggestion: format!(
                    "earn achievement {achievement}: claim a mission whose reward grants it"
                ),
            });
        }
    }
    for experience in &required.missing_experiences {
        found.push(Missing {
            kind: RequirementKind::Experience,
            id: experience.clone(),
            required: 1,
            current: 0,
            suggestion: format!("complete experience {experience} first"),
        });
    }
    for fragment in &required.missing_fragments {
        found.push(Missing {
            kind: RequirementKind::Fragment,
            id: fragment.clone(),
            required: 1,
            current: 0,
            suggestion: format!(
                "unlock fragment {fragment} first (take the decision that leads to it)"
            ),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> Vec<LevelStep> {
        [(1, 0), (2, 100), (3, 300)]
            .into_iter()
            .map(|(level, min_xp)| LevelStep { level, min_xp })
            .collect()
    }

    #[test]
    fn nothing_required_is_nothing_missing() {
        assert!(missing(&Required::default(), &Facts::default()).is_empty());
    }

    #[test]
    fn each_unmet_requirement_is_listed_once_with_a_suggestion() {
        let required = Required {
            vip: true,
            min_level: 3,
            items: BTreeMap::from([("key".to_owned(), 2), ("rose".to_owned(), 1)]),
            achievements: vec!["badge-a".into(), "badge-b".into()],
            missing_experiences: vec!["exp".into()],
            missing_fragments: vec!["frag".into()],
        };
        let facts = Facts {
            vip: Some(false),
            xp: Some((180, curve())),
            holdings: Some(BTreeMap::from([
                ("key".to_owned(), 1),
                ("rose".to_owned(), 1),
            ])),
            badges: Some(vec!["badge-a".into()]),
        };
        let found = missing(&required, &facts);
        let kinds: Vec<_> = found.iter().map(|m| (m.kind, m.id.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (RequirementKind::Vip, ""),
                (RequirementKind::Level, ""),
                (RequirementKind::Item, "key"),
                (RequirementKind::Achievement, "badge-b"),
                (RequirementKind::Experience, "exp"),
                (RequirementKind::Fragment, "frag"),
            ]
        );
        assert_eq!((found[1].required, found[1].current), (3, 2));
        assert!(
            found[1].suggestion.contains("earn 120 more XP"),
            "{}",
            found[1].suggestion
        );
        assert_eq!((found[2].required, found[2].current), (2, 1));
        assert!(found.iter().all(|m| !m.suggestion.is_empty()));
    }

    #[test]
    fn met_requirements_are_not_listed() {
        let required = Required {
            vip: true,
            min_level: 2,
            items: BTreeMap::from([("key".to_owned(), 1)]),
            achievements: vec!["badge-a".into()],
            ..Required::default()
        };
        let facts = Facts {
            vip: Some(true),
            xp: Some((100, curve())),
            holdings: Some(BTreeMap::from([("key".to_owned(), 3)])),
            badges: Some(vec!["badge-a".into()]),
        };
        assert!(missing(&required, &facts).is_empty());
        assert_eq!(level_of(99, &curve()), 1);
        assert_eq!(level_of(5_000, &curve()), 3);
    }
}
