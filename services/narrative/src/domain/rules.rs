//! Composite requirements and extended rewards (seed 001 §4.1): what they may hold, and what a
//! requirement check concludes from what this context knows about a user.
//!
//! A requirement is either *known here* (fragments the user unlocked, experiences the user
//! completed) or an *external fact* (VIP, level, items, achievements), which this context
//! cannot see and answers for the coordinator to resolve. A VIP-exclusive fragment needs the
//! VIP fact whether or not its requirements say so.

use std::collections::HashSet;

use phoenix_runtime::Violations;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most entries in any list of a requirement or reward.
pub const MAX_LIST: usize = 50;
/// Largest item quantity and besitos amount.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
/// Highest level a requirement may name.
pub const MAX_LEVEL: i32 = 10_000;
/// Longest id of another context (item, achievement, mission).
pub const MAX_EXTERNAL_ID_CHARS: usize = 64;

/// A quantity of an item of another context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemAmount {
    pub item_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Requirements {
    pub vip_required: bool,
    /// 0: none.
    pub min_level: i32,
    pub required_items: Vec<ItemAmount>,
    pub required_achievements: Vec<String>,
    pub required_experiences: Vec<Uuid>,
    pub required_fragments: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rewards {
    pub besitos: i64,
    pub items: Vec<ItemAmount>,
    pub unlock_fragments: Vec<Uuid>,
    pub unlock_experiences: Vec<Uuid>,
    pub achievements: Vec<String>,
}

/// An id of another context: 1 to 64 printable ASCII characters without spaces.
pub fn external_id(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(
            field,
            "REQUIRED",
            "is required: an id of 1 to 64 characters",
        );
    } else if value.chars().count() > MAX_EXTERNAL_ID_CHARS
        || !value.chars().all(|c| c.is_ascii_graphic())
    {
        v.add(
            field,
            "INVALID_EXTERNAL_ID",
            format!(
                "must be 1 to {MAX_EXTERNAL_ID_CHARS} printable ASCII characters without spaces, got {}",
                phoenix_runtime::quote(value)
            ),
        );
    }
}

fn list_length<T>(v: &mut Violations, field: &str, list: &[T]) -> bool {
    v.check(
        list.len() <= MAX_LIST,
        field,
        "TOO_MANY_ENTRIES",
        "must hold at most 50 entries",
    )
}

fn unique<T: Eq + std::hash::Hash>(v: &mut Violations, field: &str, list: &[T]) {
    let mut seen = HashSet::new();
    for (i, entry) in list.iter().enumerate() {
        if !seen.insert(entry) {
            v.add(
                format!("{field}[{i}]"),
                "DUPLICATE_ENTRY",
                "is listed twice",
            );
        }
    }
}

fn items(v: &mut Violations, field: &str, items: &[ItemAmount]) {
    if !list_length(v, field, items) {
        return;
    }
    for (i, item) in items.iter().enumerate() {
        external_id(v, &format!("{field}[{i}].item_id"), &item.item_id);
        if !(1..=MAX_AMOUNT).contains(&item.quantity) {
            v.add(
                format!("{field}[{i}].quantity"),
                if item.quantity < 0 {
                    "NEGATIVE_AMOUNT"
                } else {
                    "INVALID_AMOUNT"
                },
                format!("must be between 1 and {MAX_AMOUNT}, got {}", item.quantity),
            );
        }
    }
    let ids: Vec<&str> = items.iter().map(|i| i.item_id.as_str()).collect();
    unique(v, field, &ids);
}

fn ids<T: Eq + std::hash::Hash>(v: &mut Violations, field: &str, list: &[T]) {
    if list_length(v, field, list) {
        unique(v, field, list);
    }
}

fn external_ids(v: &mut Violations, field: &str, list: &[String]) {
    if list_length(v, field, list) {
        for (i, id) in list.iter().enumerate() {
            external_id(v, &format!("{field}[{i}]"), id);
        }
        unique(v, field, list);
    }
}

impl Requirements {
    /// Records every bad field under `prefix` (e.g. `fragment.requirements`).
    pub fn check(&self, v: &mut Violations, prefix: &str) {
        if !(0..=MAX_LEVEL).contains(&self.min_level) {
            v.add(
                format!("{prefix}.min_level"),
                if self.min_level < 0 {
                    "NEGATIVE_AMOUNT"
                } else {
                    "OUT_OF_RANGE"
                },
                format!(
                    "must be between 0 (none) and {MAX_LEVEL}, got {}",
                    self.min_level
                ),
            );
        }
        items(v, &format!("{prefix}.required_items"), &self.required_items);
        external_ids(
            v,
            &format!("{prefix}.required_achievement_ids"),
            &self.required_achievements,
        );
        ids(
            v,
            &format!("{prefix}.required_experience_ids"),
            &self.required_experiences,
        );
        ids(
            v,
            &format!("{prefix}.required_fragment_ids"),
            &self.required_fragments,
        );
    }
}

impl Rewards {
    /// Records every bad field under `prefix` (e.g. `decision.rewards`).
    pub fn check(&self, v: &mut Violations, prefix: &str) {
        if !(0..=MAX_AMOUNT).contains(&self.besitos) {
            v.add(
                format!("{prefix}.besitos"),
                if self.besitos < 0 {
                    "NEGATIVE_AMOUNT"
                } else {
                    "OUT_OF_RANGE"
                },
                format!("must be between 0 and {MAX_AMOUNT}, got {}", self.besitos),
            );
        }
        items(v, &format!("{prefix}.items"), &self.items);
        ids(
            v,
            &format!("{prefix}.unlock_fragment_ids"),
            &self.unlock_fragments,
        );
        ids(
            v,
            &format!("{prefix}.unlock_experience_ids"),
            &self.unlock_experiences,
        );
        external_ids(v, &format!("{prefix}.achievement_ids"), &self.achievements);
    }

    /// Both rewards together: besitos and item quantities added, lists joined without repeats
    /// (in order: this one's first).
    pub fn plus(&self, other: &Rewards) -> Rewards {
        let mut sum = self.clone();
        sum.besitos = sum.besitos.saturating_add(other.besitos);
        for item in &other.items {
            match sum.items.iter_mut().find(|i| i.item_id == item.item_id) {
                Some(existing) => {
                    existing.quantity = existing.quantity.saturating_add(item.quantity)
                }
                None => sum.items.push(item.clone()),
            }
        }
        join(&mut sum.unlock_fragments, &other.unlock_fragments);
        join(&mut sum.unlock_experiences, &other.unlock_experiences);
        join(&mut sum.achievements, &other.achievements);
        sum
    }

    pub fn is_empty(&self) -> bool {
        *self == Rewards::default()
    }
}

fn join<T: PartialEq + Clone>(into: &mut Vec<T>, more: &[T]) {
    for value in more {
        if !into.contains(value) {
            into.push(value.clone());
        }
    }
}

/// A requirement this context cannot check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExternalFact {
    Vip,
    MinLevel(i32),
    Item(ItemAmount),
    Achievement(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckStatus {
    /// Every requirement holds.
    Met,
    /// What is known here holds; the external facts decide.
    NeedsExternalFacts,
    /// A requirement known here does not hold.
    NotMet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementCheck {
    pub status: CheckStatus,
    pub missing_fragments: Vec<Uuid>,
    pub missing_experiences: Vec<Uuid>,
    pub external: Vec<ExternalFact>,
}

impl RequirementCheck {
    /// Whether nothing known here stands in the way.
    pub fn known_met(&self) -> bool {
        self.status != CheckStatus::NotMet
    }
}

/// What this context knows of one user, as far as a requirement check needs it.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub unlocked_fragments: HashSet<Uuid>,
    pub completed_experiences: HashSet<Uuid>,
}

/// Evaluates `requirements` (of a fragment that is `vip_exclusive` or not) for a user of whom
/// `known` is known.
pub fn evaluate(
    requirements: &Requirements,
    vip_exclusive: bool,
    known: &Known,
) -> RequirementCheck {
    let missing_fragments: Vec<Uuid> = requirements
        .required_fragments
        .iter()
        .filter(|id| !known.unlocked_fragments.contains(id))
        .copied()
        .collect();
    let missing_experiences: Vec<Uuid> = requirements
        .required_experiences
        .iter()
        .filter(|id| !known.completed_experiences.contains(id))
        .copied()
        .collect();
    let mut external = Vec::new();
    if requirements.vip_required || vip_exclusive {
        external.push(ExternalFact::Vip);
    }
    if requirements.min_level > 0 {
        external.push(ExternalFact::MinLevel(requirements.min_level));
    }
    external.extend(
        requirements
            .required_items
            .iter()
            .cloned()
            .map(ExternalFact::Item),
    );
    external.extend(
        requirements
            .required_achievements
            .iter()
            .cloned()
            .map(ExternalFact::Achievement),
    );
    let status = if !missing_fragments.is_empty() || !missing_experiences.is_empty() {
        CheckStatus::NotMet
    } else if !external.is_empty() {
        CheckStatus::NeedsExternalFacts
    } else {
        CheckStatus::Met
    };
    RequirementCheck {
        status,
        missing_fragments,
        missing_experiences,
        external,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(v: Violations) -> Vec<(String, String)> {
        v.finish()
            .err()
            .map(|r| {
                r.violations
                    .into_iter()
                    .map(|v| (v.field, v.reason))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn item(id: &str, quantity: i64) -> ItemAmount {
        ItemAmount {
            item_id: id.into(),
            quantity,
        }
    }

    #[test]
    fn nothing_required_is_met_and_vip_exclusive_needs_the_vip_fact() {
        let known = Known::default();
        let none = evaluate(&Requirements::default(), false, &known);
        assert_eq!(none.status, CheckStatus::Met);
        let vip = evaluate(&Requirements::default(), true, &known);
        assert_eq!(vip.status, CheckStatus::NeedsExternalFacts);
        assert_eq!(vip.external, [ExternalFact::Vip]);
    }

    #[test]
    fn known_requirements_decide_before_external_facts() {
        let (a, b, e) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let requirements = Requirements {
            vip_required: true,
            min_level: 5,
            required_items: vec![item("sword", 1)],
            required_achievements: vec!["first-kiss".into()],
            required_experiences: vec![e],
            required_fragments: vec![a, b],
        };
        let mut known = Known::default();
        known.unlocked_fragments.insert(a);
        let check = evaluate(&requirements, false, &known);
        assert_eq!(check.status, CheckStatus::NotMet);
        assert_eq!(check.missing_fragments, [b]);
        assert_eq!(check.missing_experiences, [e]);
        assert_eq!(
            check.external,
            [
                ExternalFact::Vip,
                ExternalFact::MinLevel(5),
                ExternalFact::Item(item("sword", 1)),
                ExternalFact::Achievement("first-kiss".into()),
            ]
        );
        known.unlocked_fragments.insert(b);
        known.completed_experiences.insert(e);
        let check = evaluate(&requirements, false, &known);
        assert_eq!(check.status, CheckStatus::NeedsExternalFacts);
        assert!(check.missing_fragments.is_empty() && check.missing_experiences.is_empty());
        let only_known = Requirements {
            required_fragments: vec![a],
            ..Requirements::default()
        };
        assert_eq!(
            evaluate(&only_known, false, &known).status,
            CheckStatus::Met
        );
    }

    #[test]
    fn negative_amounts_and_bad_ids_are_refused_field_by_field() {
        let id = Uuid::now_v7();
        let rewards = Rewards {
            besitos: -5,
            items: vec![item("gem", 0), item("gem", -2), item("has space", 1)],
            unlock_fragments: vec![id, id],
            unlock_experiences: vec![],
            achievements: vec![String::new()],
        };
        let mut v = Violations::new();
        rewards.check(&mut v, "rewards");
        assert_eq!(
            reasons(v),
            [
                ("rewards.besitos".to_owned(), "NEGATIVE_AMOUNT".to_owned()),
                (
                    "rewards.items[0].quantity".to_owned(),
                    "INVALID_AMOUNT".to_owned()
                ),
                (
                    "rewards.items[1].quantity".to_owned(),
                    "NEGATIVE_AMOUNT".to_owned()
                ),
                (
                    "rewards.items[2].item_id".to_owned(),
                    "INVALID_EXTERNAL_ID".to_owned()
                ),
                ("rewards.items[1]".to_owned(), "DUPLICATE_ENTRY".to_owned()),
                (
                    "rewards.unlock_fragment_ids[1]".to_owned(),
                    "DUPLICATE_ENTRY".to_owned()
                ),
                (
                    "rewards.achievement_ids[0]".to_owned(),
                    "REQUIRED".to_owned()
                ),
            ]
        );
        let requirements = Requirements {
            min_level: -1,
            required_fragments: vec![id; 51],
            ..Requirements::default()
        };
        let mut v = Violations::new();
        requirements.check(&mut v, "r");
        assert_eq!(
            reasons(v),
            [
                ("r.min_level".to_owned(), "NEGATIVE_AMOUNT".to_owned()),
                (
                    "r.required_fragment_ids".to_owned(),
                    "TOO_MANY_ENTRIES".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn rewards_add_up_without_repeating_entries() {
        let f = Uuid::now_v7();
        let a = Rewards {
            besitos: 10,
            items: vec![item("gem", 1)],
            unlock_fragments: vec![f],
            ..Rewards::default()
        };
        let b = Rewards {
            besitos: 5,
            items: vec![item("gem", 2), item("key", 1)],
            unlock_fragments: vec![f],
            achievements: vec!["brave".into()],
            ..Rewards::default()
        };
        let sum = a.plus(&b);
        assert_eq!(sum.besitos, 15);
        assert_eq!(sum.items, [item("gem", 3), item("key", 1)]);
        assert_eq!(sum.unlock_fragments, [f]);
        assert_eq!(sum.achievements, ["brave"]);
        assert!(Rewards::default().is_empty() && !sum.is_empty());
    }
}
