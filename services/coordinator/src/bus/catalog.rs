//! The event catalogue of seed 001 (section 3.2): every type's name, payload message, default
//! priority and producer. This table is the source of the README's catalogue table.
//!
//! A catalogue type is carried either by a message of `phoenix.events.v1` (`catalog.proto`),
//! with the seed's name in `Event.type`, or by a message a context already emits, with that
//! message's full name in `Event.type`; the bus then also knows the event by its catalogue name
//! ([`catalog_name`]), so a subscriber's patterns may use either. The narrative's
//! `ExperienceChanged` and `ReactionChanged` carry several catalogue types, told apart by their
//! `change` field.

use phoenix_runtime::stream::Priority;

/// One type of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogType {
    /// The seed's name, e.g. `coordinator.decision_taken`.
    pub name: &'static str,
    /// Full protobuf name of the payload message.
    pub payload: &'static str,
    /// Priority when the producer does not give one.
    pub priority: Priority,
    /// Who emits it.
    pub emitted_by: &'static str,
    /// For a payload that carries several catalogue types: its `change` value for this one.
    pub change: Option<&'static str>,
}

const fn own(
    name: &'static str,
    payload: &'static str,
    priority: Priority,
    emitted_by: &'static str,
) -> CatalogType {
    CatalogType {
        name,
        payload,
        priority,
        emitted_by,
        change: None,
    }
}

const fn changed(
    name: &'static str,
    payload: &'static str,
    change: &'static str,
    priority: Priority,
    emitted_by: &'static str,
) -> CatalogType {
    let mut entry = own(name, payload, priority, emitted_by);
    entry.change = Some(change);
    entry
}

use Priority::{Critical, High, Low, Normal};

const NARRATIVE: &str = "narrative (its stream)";
const DIRECTORY: &str = "directory (its stream)";
const NOT_YET: &str = "not emitted yet";
const EXPERIENCE: &str = "phoenix.narrative.v1.ExperienceChanged";

/// The whole catalogue, in the seed's order.
pub const CATALOG: &[CatalogType] = &[
    own(
        "gamification.besitos_earned",
        "phoenix.events.v1.GamificationBesitosEarned",
        High,
        NOT_YET,
    ),
    own(
        "gamification.besitos_spent",
        "phoenix.events.v1.GamificationBesitosSpent",
        High,
        NOT_YET,
    ),
    own(
        "narrative.fragment_visited",
        "phoenix.narrative.v1.FragmentVisited",
        Normal,
        NARRATIVE,
    ),
    own(
        "narrative.decision_taken",
        "phoenix.narrative.v1.DecisionTaken",
        High,
        NARRATIVE,
    ),
    own(
        "narrative.content_unlocked",
        "phoenix.narrative.v1.ContentUnlocked",
        High,
        NARRATIVE,
    ),
    own(
        "narrative.level_completed",
        "phoenix.narrative.v1.LevelCompleted",
        High,
        NARRATIVE,
    ),
    own(
        "gamification.mission_started",
        "phoenix.events.v1.GamificationMissionStarted",
        Normal,
        NOT_YET,
    ),
    own(
        "gamification.mission_completed",
        "phoenix.events.v1.GamificationMissionCompleted",
        High,
        "coordinator (ClaimMissionReward)",
    ),
    own(
        "gamification.achievement_unlocked",
        "phoenix.events.v1.GamificationAchievementUnlocked",
        High,
        NOT_YET,
    ),
    own(
        "gamification.item_acquired",
        "phoenix.events.v1.GamificationItemAcquired",
        High,
        NOT_YET,
    ),
    changed(
        "gamification.reaction_registered",
        "phoenix.narrative.v1.ReactionChanged",
        "registered",
        Normal,
        NARRATIVE,
    ),
    own(
        "commerce.item_viewed",
        "phoenix.events.v1.CommerceItemViewed",
        Low,
        "callers (Publish)",
    ),
    own(
        "commerce.cart_updated",
        "phoenix.events.v1.CommerceCartUpdated",
        Low,
        "callers (Publish)",
    ),
    own(
        "commerce.purchase_initiated",
        "phoenix.events.v1.CommercePurchaseInitiated",
        Normal,
        NOT_YET,
    ),
    own(
        "commerce.purchase_completed",
        "phoenix.events.v1.CommercePurchaseCompleted",
        Critical,
        "coordinator (Purchase)",
    ),
    own(
        "commerce.purchase_failed",
        "phoenix.events.v1.CommercePurchaseFailed",
        High,
        "coordinator (Purchase)",
    ),
    own(
        "commerce.vip_subscribed",
        "phoenix.events.v1.CommerceVipSubscribed",
        Critical,
        "coordinator (SubscribeVip)",
    ),
    own(
        "commerce.vip_renewed",
        "phoenix.events.v1.CommerceVipRenewed",
        Critical,
        NOT_YET,
    ),
    own(
        "commerce.vip_cancelled",
        "phoenix.events.v1.CommerceVipCancelled",
        High,
        NOT_YET,
    ),
    changed(
        "experience.unlocked",
        EXPERIENCE,
        "unlocked",
        High,
        NARRATIVE,
    ),
    changed(
        "experience.started",
        EXPERIENCE,
        "started",
        Normal,
        NARRATIVE,
    ),
    changed(
        "experience.component_completed",
        EXPERIENCE,
        "component_completed",
        Normal,
        NARRATIVE,
    ),
    changed(
        "experience.completed",
        EXPERIENCE,
        "completed",
        High,
        NARRATIVE,
    ),
    changed(
        "experience.abandoned",
        EXPERIENCE,
        "abandoned",
        Low,
        NARRATIVE,
    ),
    own(
        "admin.user_joined_channel",
        "phoenix.directory.v1.UserJoinedChannel",
        Normal,
        DIRECTORY,
    ),
    own(
        "admin.user_left_channel",
        "phoenix.directory.v1.UserLeftChannel",
        Normal,
        DIRECTORY,
    ),
    own(
        "admin.vip_status_changed",
        "phoenix.directory.v1.VipStatusChanged",
        Critical,
        DIRECTORY,
    ),
    own(
        "admin.content_published",
        "phoenix.events.v1.AdminContentPublished",
        Normal,
        "callers (Publish)",
    ),
    own(
        "coordinator.decision_taken",
        "phoenix.events.v1.CoordinatorDecisionTaken",
        High,
        "coordinator (TakeDecision)",
    ),
    own(
        "coordinator.content_reacted",
        "phoenix.events.v1.CoordinatorContentReacted",
        Normal,
        "coordinator (ReactToContent)",
    ),
    own(
        "coordinator.purchase_completed",
        "phoenix.events.v1.CoordinatorPurchaseCompleted",
        Critical,
        NOT_YET,
    ),
    own(
        "coordinator.access_denied",
        "phoenix.events.v1.CoordinatorAccessDenied",
        Normal,
        "coordinator (AccessVipNarrative)",
    ),
    own(
        "coordinator.requirements_failed",
        "phoenix.events.v1.CoordinatorRequirementsFailed",
        Normal,
        "coordinator (TakeDecision)",
    ),
    own(
        "analytics.vip_content_accessed",
        "phoenix.events.v1.AnalyticsVipContentAccessed",
        Low,
        "coordinator (AccessVipNarrative)",
    ),
    own(
        "analytics.conversion_opportunity",
        "phoenix.events.v1.AnalyticsConversionOpportunity",
        Normal,
        "coordinator (AccessVipNarrative)",
    ),
    own(
        "analytics.user_churn_risk",
        "phoenix.events.v1.AnalyticsUserChurnRisk",
        Normal,
        NOT_YET,
    ),
];

/// The catalogue type named `name` (a seed name such as `coordinator.decision_taken`).
pub fn by_name(name: &str) -> Option<&'static CatalogType> {
    CATALOG.iter().find(|entry| entry.name == name)
}

/// The default priority of a catalogue type (Normal for a type outside the catalogue).
pub fn default_priority(name: &str) -> Priority {
    by_name(name).map_or(Priority::Normal, |entry| entry.priority)
}

/// The catalogue name of an event whose envelope type is `event_type` and payload `payload`:
/// the type itself when it is a seed name, the seed name a context's own message stands for
/// (for `ExperienceChanged`/`ReactionChanged`, by the payload's `change`), or `None`.
pub fn catalog_name(event_type: &str, payload: &[u8]) -> Option<&'static str> {
    if let Some(entry) = by_name(event_type) {
        return Some(entry.name);
    }
    let mut candidates = CATALOG
        .iter()
        .filter(|entry| entry.payload == event_type)
        .peekable();
    candidates.peek()?;
    let change = candidates
        .clone()
        .any(|entry| entry.change.is_some())
        .then(|| change_of(event_type, payload))
        .flatten();
    candidates
        .find(|entry| entry.change.is_none() || entry.change == change.as_deref())
        .map(|entry| entry.name)
}

/// The `change` field of the narrative's multi-type payloads.
fn change_of(event_type: &str, payload: &[u8]) -> Option<String> {
    use phoenix_proto::narrative::v1 as narrative;
    use prost::Message;
    match event_type {
        "phoenix.narrative.v1.ExperienceChanged" => narrative::ExperienceChanged::decode(payload)
            .ok()
            .map(|e| e.change),
        "phoenix.narrative.v1.ReactionChanged" => narrative::ReactionChanged::decode(payload)
            .ok()
            .map(|e| e.change),
        _ => None,
    }
}

/// The user an event is about, read from its payload: field 1 of every catalogue message and of
/// the contexts' messages listed in the catalogue (the narrative's decision and reaction carry
/// it one level down), `None` when the event names none.
pub fn user_of(event_type: &str, catalog: Option<&str>, payload: &[u8]) -> Option<String> {
    use phoenix_proto::narrative::v1 as narrative;
    use prost::Message;
    if is_json(payload) {
        // An emitter that has no typed message yet writes JSON with a `user_id` member.
        let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
        let user = value.get("user_id")?.as_str()?;
        return (!user.is_empty()).then(|| user.to_owned());
    }
    let user = match event_type {
        "phoenix.narrative.v1.DecisionTaken" => {
            narrative::DecisionTaken::decode(payload)
                .ok()?
                .decision?
                .user_id
        }
        "phoenix.narrative.v1.ReactionChanged" => {
            narrative::ReactionChanged::decode(payload)
                .ok()?
                .reaction?
                .user_id
        }
        _ if catalog.is_some() => UserField::decode(payload).ok()?.user_id,
        _ => return None,
    };
    (!user.is_empty()).then_some(user)
}

/// Whether a payload is a JSON object rather than a protobuf message (no catalogue message
/// starts with `{`, which would be field 15 as a group).
pub fn is_json(payload: &[u8]) -> bool {
    payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Field 1 of a catalogue payload, whatever its message (prost skips the other fields).
#[derive(Clone, PartialEq, prost::Message)]
struct UserField {
    #[prost(string, tag = "1")]
    user_id: String,
}

/// The catalogue as the Markdown table of the README.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| type | payload message | default priority | emitted by |\n|---|---|---|---|\n",
    );
    for entry in CATALOG {
        let payload = match entry.change {
            Some(change) => format!("`{}` (`change = \"{change}\"`)", entry.payload),
            None => format!("`{}`", entry.payload),
        };
        let priority = match entry.priority {
            Priority::Low => "LOW",
            Priority::Normal => "NORMAL",
            Priority::High => "HIGH",
            Priority::Critical => "CRITICAL",
        };
        table.push_str(&format!(
            "| `{}` | {payload} | {priority} | {} |\n",
            entry.name, entry.emitted_by
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of catalog.proto is in the table, and every payload of the table exists.
    #[test]
    fn the_table_and_the_contracts_agree() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(phoenix_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set");
        let mut messages = std::collections::HashSet::new();
        let mut catalog_messages = Vec::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                let name = format!("{package}.{}", message.name());
                if file.name().ends_with("events/v1/catalog.proto")
                    && message.name() != "MissingRequirement"
                {
                    catalog_messages.push(name.clone());
                }
                messages.insert(name);
            }
        }
        for entry in CATALOG {
            assert!(
                messages.contains(entry.payload),
                "{} names no message",
                entry.payload
            );
        }
        for message in catalog_messages {
            assert!(
                CATALOG.iter().any(|entry| entry.payload == message),
                "{message} is not in the catalogue table"
            );
        }
        let names: std::collections::HashSet<_> = CATALOG.iter().map(|e| e.name).collect();
        assert_eq!(names.len(), CATALOG.len(), "a type is listed twice");
    }

    /// Both READMEs show this table (regenerate: `PHOENIX_PRINT_CATALOG=1 cargo test -p
    /// phoenix-coordinator --lib catalog -- --nocapture`).
    #[test]
    fn the_readme_shows_the_table() {
        let table = markdown_table();
        if std::env::var_os("PHOENIX_PRINT_CATALOG").is_some() {
            println!("{table}");
        }
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&table),
            "services/coordinator/README.md lacks the current catalogue table"
        );
        let main = include_str!("../../../../README.md");
        assert!(
            main.contains(&table),
            "README.md lacks the current catalogue table"
        );
    }

    fn encoded_user(user: &str) -> Vec<u8> {
        use prost::Message;
        phoenix_proto::events::v1::CoordinatorDecisionTaken {
            user_id: user.into(),
            fragment_id: "f".into(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn context_messages_are_known_by_their_catalogue_name() {
        use phoenix_proto::narrative::v1 as narrative;
        use prost::Message;
        let started = narrative::ExperienceChanged {
            change: "started".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            catalog_name("phoenix.narrative.v1.ExperienceChanged", &started),
            Some("experience.started")
        );
        assert_eq!(
            catalog_name("phoenix.directory.v1.VipStatusChanged", &[]),
            Some("admin.vip_status_changed")
        );
        assert_eq!(catalog_name("phoenix.goals.v1.TaskCompleted", &[]), None);
        assert_eq!(
            default_priority("commerce.purchase_completed"),
            Priority::Critical
        );
        assert_eq!(
            user_of(
                "coordinator.access_denied",
                Some("coordinator.access_denied"),
                br#" {"user_id":"u1"}"#
            ),
            Some("u1".to_owned())
        );
        let typed = crate::bus::catalog::tests::encoded_user("u2");
        assert_eq!(
            user_of(
                "coordinator.decision_taken",
                Some("coordinator.decision_taken"),
                &typed
            ),
            Some("u2".to_owned())
        );
        assert!(!is_json(&typed));
    }
}
