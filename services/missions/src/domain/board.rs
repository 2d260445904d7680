//! One user's board in one season: three slots, their runs, the boss run, effects, claims and
//! communications.
//!
//! These types are also the legacy JSON store's format (camelCase, as the TypeScript service
//! wrote it): the FILE repository keeps a [`Store`] in one file and the `missions_v2_state`
//! snapshot holds one [`Board`] per row. Changing a field here changes both formats, so every
//! field is mirrored by a column of the relational tables (see the migrations) and the weekly
//! audit compares the two.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// The three slots of every board, in board order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotKey {
    Main,
    Hunt,
    Skill,
}

impl SlotKey {
    pub const ALL: [SlotKey; 3] = [SlotKey::Main, SlotKey::Hunt, SlotKey::Skill];

    /// Where the slot is on a board: its place in [`SlotKey::ALL`].
    pub fn index(self) -> usize {
        match self {
            SlotKey::Main => 0,
            SlotKey::Hunt => 1,
            SlotKey::Skill => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SlotKey::Main => "main",
            SlotKey::Hunt => "hunt",
            SlotKey::Skill => "skill",
        }
    }
}

/// idle → active → succeeded | failed; succeeded → claimed; claimed | failed → cooldown → idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    Idle,
    Active,
    Succeeded,
    Failed,
    Cooldown,
    Claimed,
}

impl SlotState {
    /// The name in the JSON store and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Idle => "idle",
            SlotState::Active => "active",
            SlotState::Succeeded => "succeeded",
            SlotState::Failed => "failed",
            SlotState::Cooldown => "cooldown",
            SlotState::Claimed => "claimed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Active,
    Succeeded,
    Failed,
    Claimed,
}

impl RunStatus {
    /// The name in the JSON store and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Active => "active",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Claimed => "claimed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressUnit {
    Tasks,
    Sessions,
    Minutes,
    Points,
}

impl ProgressUnit {
    /// The name in the JSON store and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressUnit::Tasks => "tasks",
            ProgressUnit::Sessions => "sessions",
            ProgressUnit::Minutes => "minutes",
            ProgressUnit::Points => "points",
        }
    }
}

/// How a closed local day ended for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayOutcome {
    /// A heartbeat arrived that day.
    Kept,
    /// No heartbeat, but a protecting effect was consumed: petals unchanged.
    Protected,
    /// No heartbeat and no protection: one petal lost.
    PetalLost,
}

impl DayOutcome {
    /// The name in the JSON store and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DayOutcome::Kept => "kept",
            DayOutcome::Protected => "protected",
            DayOutcome::PetalLost => "petal_lost",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommunicationKind {
    Daily,
    Weekly,
    System,
}

impl CommunicationKind {
    /// The name in the JSON store and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CommunicationKind::Daily => "daily",
            CommunicationKind::Weekly => "weekly",
            CommunicationKind::System => "system",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimSource {
    Mission,
    Boss,
}

impl ClaimSource {
    /// The name in the JSON store and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimSource::Mission => "mission",
            ClaimSource::Boss => "boss",
        }
    }
}

/// The board of `user_id` in `season_id`; users are external ids (no users table here).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardKey {
    pub user_id: Uuid,
    pub season_id: String,
}

/// An item granted by a reward, e.g. `{"code": "potion", "quantity": 2}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardItem {
    pub code: String,
    pub quantity: i32,
}

/// What a claim grants. Currency is in the ledger's minor units; the grant itself is the
/// coordinator's business, this service records what was won exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reward {
    pub xp: i32,
    pub currency: i32,
    pub items: Vec<RewardItem>,
    pub badge_id: Option<Uuid>,
    /// An aura effect granted to the board on claim.
    pub aura_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    pub board_id: Uuid,
    pub user_id: Uuid,
    pub season_id: String,
    /// The user's IANA time zone; it decides when each of the user's days starts and ends.
    pub time_zone: Tz,
    pub generated_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Always main, hunt, skill, in that order: the type holds three and reading a board checks
    /// the order, so every slot key finds its slot.
    #[serde(deserialize_with = "slots_in_board_order")]
    pub slots: [Slot; 3],
    /// Every run of the season, oldest first.
    pub runs: Vec<Run>,
    pub boss: Option<BossRun>,
    pub effects: Vec<EffectInstance>,
    /// Claims of mission runs and of the boss, oldest first.
    pub claims: Vec<Claim>,
    /// Oldest first.
    pub communications: Vec<Communication>,
    /// Last local week (its Monday) a weekly summary was written for.
    pub last_weekly_summary: Option<NaiveDate>,
    /// Fields of a legacy store's board that this format does not define (`legacyFlags`…),
    /// kept as they were and written back on export: an import loses nothing.
    #[serde(flatten)]
    pub legacy_fields: LegacyFields,
}

/// What [`Board::each_instant_mut`] calls: the instant's path (built on demand) and the instant.
pub type InstantVisitor<'a> = dyn FnMut(&dyn Fn() -> String, &mut DateTime<Utc>) + 'a;

/// Fields a legacy store wrote that the format does not define, by name, kept verbatim.
pub type LegacyFields = serde_json::Map<String, serde_json::Value>;

/// Longest season id, in bytes.
pub const MAX_SEASON_BYTES: usize = 64;

/// The one rule for season ids, which the API and the importers both apply: 1–64 letters,
/// digits, '-', '_' or '.'. The reason and the message when `value` breaks it.
pub fn season_id_violation(value: &str) -> Option<(&'static str, &'static str)> {
    if value.is_empty() {
        return Some(("REQUIRED", "is required: a season id such as 2026-S4"));
    }
    let valid = value.len() <= MAX_SEASON_BYTES
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!valid).then_some((
        "INVALID_SEASON",
        "must be 1–64 characters: letters, digits, '-', '_' or '.'",
    ))
}

impl Board {
    pub fn key(&self) -> BoardKey {
        BoardKey {
            user_id: self.user_id,
            season_id: self.season_id.clone(),
        }
    }

    pub fn slot(&self, key: SlotKey) -> &Slot {
        &self.slots[key.index()]
    }

    pub fn slot_mut(&mut self, key: SlotKey) -> &mut Slot {
        &mut self.slots[key.index()]
    }

    pub fn run(&self, run_id: Uuid) -> Option<&Run> {
        self.runs.iter().find(|r| r.run_id == run_id)
    }

    pub fn run_mut(&mut self, run_id: Uuid) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.run_id == run_id)
    }

    /// Calls `visit` with every instant the board holds (of the optional ones, those set) and
    /// a way to name it in the store format (`runs[0].selectedAt`), built only when asked: the
    /// one list of a board's instants, which the database's precision is applied to and checked
    /// against.
    pub fn each_instant_mut(&mut self, visit: &mut InstantVisitor<'_>) {
        fn set(
            visit: &mut InstantVisitor<'_>,
            path: &dyn Fn() -> String,
            at: &mut Option<DateTime<Utc>>,
        ) {
            if let Some(at) = at {
                visit(path, at);
            }
        }
        visit(&|| "generatedAt".into(), &mut self.generated_at);
        visit(&|| "updatedAt".into(), &mut self.updated_at);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let at = |field: &str| format!("slots[{i}].{field}");
            set(visit, &|| at("cooldownUntil"), &mut slot.cooldown_until);
            set(visit, &|| at("rerollUsedAt"), &mut slot.reroll_used_at);
            set(visit, &|| at("rerollResetAt"), &mut slot.reroll_reset_at);
        }
        for (i, run) in self.runs.iter_mut().enumerate() {
            let at = |field: &str| format!("runs[{i}].{field}");
            visit(&|| at("selectedAt"), &mut run.selected_at);
            visit(&|| at("updatedAt"), &mut run.updated_at);
            visit(&|| at("expiresAt"), &mut run.expires_at);
            set(visit, &|| at("cooldownUntil"), &mut run.cooldown_until);
            set(visit, &|| at("completionAt"), &mut run.completion_at);
            set(visit, &|| at("failureAt"), &mut run.failure_at);
            visit(&|| at("progress.updatedAt"), &mut run.progress.updated_at);
            for (h, heartbeat) in run.heartbeats.iter_mut().enumerate() {
                visit(
                    &|| at(&format!("heartbeats[{h}].createdAt")),
                    &mut heartbeat.created_at,
                );
            }
            for (d, day) in run.days.iter_mut().enumerate() {
                visit(&|| at(&format!("days[{d}].closedAt")), &mut day.closed_at);
            }
        }
        if let Some(boss) = &mut self.boss {
            set(visit, &|| "boss.linkedAt".into(), &mut boss.linked_at);
            set(
                visit,
                &|| "boss.phase2SubmittedAt".into(),
                &mut boss.phase2_submitted_at,
            );
            set(visit, &|| "boss.completedAt".into(), &mut boss.completed_at);
        }
        for (i, effect) in self.effects.iter_mut().enumerate() {
            let at = |field: &str| format!("effects[{i}].{field}");
            visit(&|| at("activeFrom"), &mut effect.active_from);
            set(visit, &|| at("activeUntil"), &mut effect.active_until);
            set(visit, &|| at("consumedAt"), &mut effect.consumed_at);
        }
        for (i, claim) in self.claims.iter_mut().enumerate() {
            visit(&|| format!("claims[{i}].claimedAt"), &mut claim.claimed_at);
        }
        for (i, communication) in self.communications.iter_mut().enumerate() {
            visit(
                &|| format!("communications[{i}].createdAt"),
                &mut communication.created_at,
            );
        }
    }
}

/// A board's slots as a store holds them: exactly main, hunt and skill, in that order.
fn slots_in_board_order<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[Slot; 3], D::Error> {
    let slots = Vec::<Slot>::deserialize(deserializer)?;
    let keys: Vec<SlotKey> = slots.iter().map(|slot| slot.slot_key).collect();
    if keys != SlotKey::ALL {
        let found: Vec<&str> = keys.iter().map(|key| key.as_str()).collect();
        return Err(serde::de::Error::custom(format!(
            "slots must be main, hunt, skill in that order, found [{}]",
            found.join(", ")
        )));
    }
    <[Slot; 3]>::try_from(slots)
        .map_err(|_| serde::de::Error::custom("a board has exactly three slots"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub slot_id: Uuid,
    pub slot_key: SlotKey,
    pub state: SlotState,
    /// The mission on offer (idle) or running (active and after).
    pub mission_id: Uuid,
    /// The run the slot is on (active, succeeded, failed, claimed, cooldown); None when idle.
    pub run_id: Option<Uuid>,
    pub petals_total: i16,
    pub petals_remaining: i16,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub reroll_remaining: i16,
    pub reroll_used_at: Option<DateTime<Utc>>,
    /// When the reroll budget comes back.
    pub reroll_reset_at: Option<DateTime<Utc>>,
    /// Which offer the slot is on: 0 for a new board, +1 at each new offer (reroll, back to
    /// idle); the offer is `offerable(slot)[offers % n]`, so the sequence is deterministic.
    pub offers: i32,
    /// Fields of a legacy store's slot that the format does not define (`legacyColor`…).
    #[serde(flatten)]
    pub legacy_fields: LegacyFields,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub current: i32,
    pub target: i32,
    pub unit: ProgressUnit,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: Uuid,
    pub slot_key: SlotKey,
    pub mission_id: Uuid,
    pub status: RunStatus,
    pub selected_at: DateTime<Utc>,
    /// The user's local date when the run started, in the zone in force then: the first day
    /// the run closes, wherever the user moves later. None for a run started before start
    /// dates were kept (its first day is `selected_at`'s date in the board's zone); such runs
    /// leave it out of the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
    /// End of the mission's last local day; an active run past it fails.
    pub expires_at: DateTime<Utc>,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub completion_at: Option<DateTime<Utc>>,
    pub failure_at: Option<DateTime<Utc>>,
    pub claim_id: Option<Uuid>,
    /// What claiming the run grants, copied from the mission when the run started: the terms
    /// of a run do not change with the catalog. None for a run started before rewards were
    /// kept on runs (its claim grants the catalog's reward); such runs leave it out of the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<Reward>,
    pub progress: Progress,
    /// At most one per local date (also UNIQUE (run_id, heartbeat_date) in SQL).
    pub heartbeats: Vec<Heartbeat>,
    /// Every closed local day, in date order; each date at most once (UNIQUE in SQL).
    pub days: Vec<DayClose>,
}

impl Run {
    /// The last local date that was closed for this run.
    pub fn last_closed_date(&self) -> Option<NaiveDate> {
        // The latest, not the last: a legacy store may list days out of order.
        self.days.iter().map(|d| d.date).max()
    }

    pub fn heartbeat_on(&self, date: NaiveDate) -> Option<&Heartbeat> {
        self.heartbeats.iter().find(|h| h.date == date)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub heartbeat_id: Uuid,
    /// The user's local date when it arrived.
    pub date: NaiveDate,
    pub petals_before: i16,
    pub petals_after: i16,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayClose {
    pub date: NaiveDate,
    pub outcome: DayOutcome,
    /// The protecting effect consumed, for a protected day.
    pub effect_instance_id: Option<Uuid>,
    pub petals_after: i16,
    pub closed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BossRun {
    pub boss_run_id: Uuid,
    pub boss_id: Uuid,
    /// 1: the shield is up; 2: the shield is down and a proof completes the boss.
    pub phase: i16,
    pub shield_current: i16,
    pub shield_max: i16,
    pub linked_task_id: Option<Uuid>,
    pub linked_at: Option<DateTime<Utc>>,
    pub phase2_ready: bool,
    pub phase2_proof: Option<String>,
    pub phase2_submitted_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub claim_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectInstance {
    pub effect_instance_id: Uuid,
    pub effect_id: Uuid,
    pub active_from: DateTime<Utc>,
    /// None: active until consumed.
    pub active_until: Option<DateTime<Utc>>,
    pub consumed_at: Option<DateTime<Utc>>,
    /// Copied from the catalog when granted, so a later catalog edit does not change what the
    /// user holds.
    pub protects_day: bool,
    pub payload_override: serde_json::Value,
}

impl EffectInstance {
    pub fn is_active_at(&self, at: DateTime<Utc>) -> bool {
        self.consumed_at.is_none()
            && self.active_from <= at
            && self.active_until.is_none_or(|until| at < until)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub claim_id: Uuid,
    /// The mission run or the boss run claimed (UNIQUE in SQL: one claim per run).
    pub run_id: Uuid,
    pub source: ClaimSource,
    pub claimed_at: DateTime<Utc>,
    pub reward: Reward,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Communication {
    pub communication_id: Uuid,
    pub kind: CommunicationKind,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// The legacy JSON store (`missions_v2_store.json`): every board, as the FILE repository keeps
/// them and as `export` writes them back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    /// Format version; this code reads and writes 1.
    pub version: u32,
    pub boards: Vec<Board>,
}

impl Store {
    pub const VERSION: u32 = 1;
}
