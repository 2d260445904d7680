//! The catalog boards are built from: missions per slot, badges, effects (amulets and auras) and
//! bosses. Admins upsert it; a default catalog is loaded on first start.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::board::{ProgressUnit, Reward, SlotKey};

// What the catalog tables hold (migration 0002), so the API refuses what they would: names of
// missions, badges, effects and bosses of 1 to 200 characters, codes of 1 to 100 (reward item
// codes too, as badge and boss codes), no NUL in any text or JSON string (PostgreSQL's text and
// jsonb cannot hold one), a target id that no other mission has, each badge once per mission.

/// Longest name of a mission, badge, effect or boss, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest code of a badge, a boss or a reward item, in characters.
pub const MAX_CODE_CHARS: usize = 100;
/// Most targets, badges and reward items one mission (or boss) has. The tables number them
/// in a smallint, but a smaller bound keeps the whole catalog within one GetCatalog answer.
pub const MAX_LIST_LEN: usize = 100;

/// How hard a mission is; it only informs people and analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Low,
    Medium,
    High,
    Epic,
}

impl Difficulty {
    /// The name in the catalog JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Low => "low",
            Difficulty::Medium => "medium",
            Difficulty::High => "high",
            Difficulty::Epic => "epic",
        }
    }
}

/// One goal task a mission is about (a plain id of the goals context, never a foreign key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MissionTarget {
    pub target_id: Uuid,
    pub task_id: Uuid,
    pub name: String,
    pub tag: String,
    pub sort_order: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mission {
    pub mission_id: Uuid,
    pub slot_key: SlotKey,
    pub name: String,
    pub summary: String,
    pub requirements: String,
    pub objective: String,
    pub difficulty: Difficulty,
    /// Local days a run has to reach its target; past them the run fails.
    pub duration_days: i32,
    /// What "done" means: `progress_target` of `progress_unit`.
    pub progress_target: i32,
    pub progress_unit: ProgressUnit,
    pub targets: Vec<MissionTarget>,
    pub reward: Reward,
    /// Extra badges the mission is tagged with (the seed's mission_badges).
    pub badge_ids: Vec<Uuid>,
    pub metadata: serde_json::Value,
    /// Retired missions are never offered again; running ones finish.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Badge {
    pub badge_id: Uuid,
    pub code: String,
    pub name: String,
    pub description: String,
    pub artwork_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectKind {
    Amulet,
    Aura,
}

impl EffectKind {
    /// The name in the catalog JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectKind::Amulet => "amulet",
            EffectKind::Aura => "aura",
        }
    }
}

/// An effect a board can hold for a while. An effect whose payload has `"protectsDay": true` is
/// consumed by a day close instead of a petal (a streak freeze).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectDefinition {
    pub effect_id: Uuid,
    pub kind: EffectKind,
    pub name: String,
    pub description: String,
    pub payload: serde_json::Value,
    /// None: active until consumed.
    pub duration_days: Option<i32>,
}

impl EffectDefinition {
    pub fn protects_day(&self) -> bool {
        self.payload.get("protectsDay") == Some(&serde_json::Value::Bool(true))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Boss {
    pub boss_id: Uuid,
    pub code: String,
    pub name: String,
    pub description: String,
    /// Phase 1's shield; progress on the linked task takes it down to 0.
    pub shield_max: i16,
    pub reward: Reward,
    pub metadata: serde_json::Value,
}

/// The whole catalog, as the rules read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub missions: Vec<Mission>,
    pub badges: Vec<Badge>,
    pub effects: Vec<EffectDefinition>,
    pub bosses: Vec<Boss>,
}

impl Catalog {
    pub fn mission(&self, id: Uuid) -> Option<&Mission> {
        self.missions.iter().find(|m| m.mission_id == id)
    }

    pub fn effect(&self, id: Uuid) -> Option<&EffectDefinition> {
        self.effects.iter().find(|e| e.effect_id == id)
    }

    pub fn boss(&self, id: Uuid) -> Option<&Boss> {
        self.bosses.iter().find(|b| b.boss_id == id)
    }

    pub fn badge(&self, id: Uuid) -> Option<&Badge> {
        self.badges.iter().find(|b| b.badge_id == id)
    }

    /// Active missions that can be offered in `slot`, in a stable order.
    pub fn offerable(&self, slot: SlotKey) -> impl Iterator<Item = &Mission> {
        self.missions
            .iter()
            .filter(move |m| m.active && m.slot_key == slot)
    }
}
