//! CatalogService: read the catalog, upsert its parts (admins only when authentication is on).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::catalog_service_server::CatalogService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{proto, require_admin};
use crate::app::Missions;
use crate::domain::board::{ProgressUnit, Reward, RewardItem, SlotKey};
use crate::domain::catalog::{
    Badge, Boss, Difficulty, EffectDefinition, EffectKind, MAX_CODE_CHARS, MAX_LIST_LEN,
    MAX_NAME_CHARS, Mission, MissionTarget,
};
use crate::domain::json_holds_nul;
use crate::domain::levels::{Level, MAX_LEVEL_NAME_CHARS, curve_violations};

/// Longest free text (a summary, a description, a target's name), in characters.
const MAX_TEXT: usize = 2_000;

/// An id that may be empty: a new record gets a fresh one.
fn id_or_new(violations: &mut Violations, field: &str, value: &str) -> Uuid {
    if value.is_empty() {
        Uuid::now_v7()
    } else {
        violations.uuid(field, value)
    }
}

/// Trimmed text of at most `max_chars` characters, without NUL or other control characters
/// than line breaks and tabs.
fn text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    max_chars: usize,
    required: bool,
) -> String {
    violations.free_text(field, value, max_chars, required)
}

/// A JSON object (empty text: `{}`) that jsonb can hold: no `\u0000` in any string or key.
fn json_object(violations: &mut Violations, field: &str, value: &str) -> serde_json::Value {
    if value.trim().is_empty() {
        return serde_json::json!({});
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(json) if json.is_object() => {
            violations.check(
                !json_holds_nul(&json),
                field,
                "NUL_CHARACTER",
                "must not hold \\u0000 in any string or key: PostgreSQL's jsonb cannot",
            );
            json
        }
        _ => {
            violations.add(field, "INVALID_JSON", "must be a JSON object");
            serde_json::json!({})
        }
    }
}

/// `items` when there are at most [`MAX_LIST_LEN`]; else a TOO_MANY violation and none, so the
/// elements of a list refused whole are not checked one by one.
fn bounded<'a, T>(violations: &mut Violations, field: &str, items: &'a [T]) -> &'a [T] {
    if items.len() <= MAX_LIST_LEN {
        return items;
    }
    violations.add(
        field,
        "TOO_MANY",
        format!(
            "must have at most {MAX_LIST_LEN} elements, got {}",
            items.len()
        ),
    );
    &[]
}

/// Refuses every id of a list that repeats an earlier one (`field(i)` names element `i`): the
/// tables key a mission's badges and every target by id.
fn unique(violations: &mut Violations, ids: &[Uuid], field: impl Fn(usize) -> String) {
    let mut first = HashMap::new();
    for (index, id) in ids.iter().enumerate() {
        // A nil id stands in for a bad one, already refused.
        if id.is_nil() {
            continue;
        }
        match first.entry(*id) {
            Entry::Occupied(earlier) => violations.add(
                field(index),
                "DUPLICATE_ID",
                format!("repeats {}; each id may appear once", field(*earlier.get())),
            ),
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
    }
}

/// A protobuf enum the domain reads through `from` (None: UNSPECIFIED or unknown).
fn choice<T>(
    violations: &mut Violations,
    field: &str,
    value: i32,
    from: fn(i32) -> Option<T>,
    choices: &str,
) -> Option<T> {
    let chosen = from(value);
    if chosen.is_none() {
        let reason = if value == 0 {
            "REQUIRED"
        } else {
            "INVALID_ENUM"
        };
        violations.add(field, reason, format!("must be {choices}"));
    }
    chosen
}

fn not_negative(violations: &mut Violations, field: String, value: i32) {
    violations.check(value >= 0, &field, "NEGATIVE", "must not be negative");
}

fn reward(violations: &mut Violations, field: &str, reward: Option<&pb::Reward>) -> Reward {
    let Some(reward) = reward else {
        return Reward::default();
    };
    not_negative(violations, format!("{field}.xp"), reward.xp);
    not_negative(violations, format!("{field}.currency"), reward.currency);
    let items = bounded(violations, &format!("{field}.items"), &reward.items)
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |name: &str| format!("{field}.items[{i}].{name}");
            violations.check(
                item.quantity > 0,
                &at("quantity"),
                "INVALID_QUANTITY",
                "must be positive",
            );
            RewardItem {
                code: text(violations, &at("code"), &item.code, MAX_CODE_CHARS, true),
                quantity: item.quantity,
            }
        })
        .collect();
    let badge_id = violations.optional_uuid(&format!("{field}.badge_id"), &reward.badge_id);
    let aura_id = violations.optional_uuid(&format!("{field}.aura_id"), &reward.aura_id);
    Reward {
        xp: reward.xp,
        currency: reward.currency,
        items,
        badge_id,
        aura_id,
    }
}

fn mission(violations: &mut Violations, mission: &pb::Mission) -> Mission {
    let slot_key = choice(
        violations,
        "mission.slot_key",
        mission.slot_key,
        proto::slot_key_from,
        "a slot (main, hunt or skill)",
    )
    .unwrap_or(SlotKey::Main);
    let difficulty = choice(
        violations,
        "mission.difficulty",
        mission.difficulty,
        proto::difficulty_from,
        "low, medium, high or epic",
    )
    .unwrap_or(Difficulty::Low);
    let progress_unit = choice(
        violations,
        "mission.progress_unit",
        mission.progress_unit,
        proto::progress_unit_from,
        "tasks, sessions, minutes or points",
    )
    .unwrap_or(ProgressUnit::Tasks);
    violations.range(
        "mission.duration_days",
        mission.duration_days,
        1..=365,
        Some("INVALID_DURATION"),
    );
    violations.check(
        mission.progress_target > 0,
        "mission.progress_target",
        "INVALID_TARGET",
        "must be positive",
    );
    let targets: Vec<MissionTarget> = bounded(violations, "mission.targets", &mission.targets)
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let at = |name: &str| format!("mission.targets[{i}].{name}");
            MissionTarget {
                target_id: id_or_new(violations, &at("target_id"), &target.target_id),
                task_id: violations.uuid(&at("task_id"), &target.task_id),
                name: text(violations, &at("name"), &target.name, MAX_TEXT, true),
                tag: text(violations, &at("tag"), &target.tag, MAX_TEXT, false),
                sort_order: i16::try_from(target.sort_order).unwrap_or_else(|_| {
                    violations.add(at("sort_order"), "OUT_OF_RANGE", "must fit in 16 bits");
                    0
                }),
            }
        })
        .collect();
    let ids: Vec<Uuid> = targets.iter().map(|t| t.target_id).collect();
    unique(violations, &ids, |i| {
        format!("mission.targets[{i}].target_id")
    });
    let badge_ids: Vec<Uuid> = bounded(violations, "mission.badge_ids", &mission.badge_ids)
        .iter()
        .enumerate()
        .map(|(i, id)| violations.uuid(&format!("mission.badge_ids[{i}]"), id))
        .collect();
    unique(violations, &badge_ids, |i| {
        format!("mission.badge_ids[{i}]")
    });
    Mission {
        mission_id: id_or_new(violations, "mission.mission_id", &mission.mission_id),
        slot_key,
        name: text(
            violations,
            "mission.name",
            &mission.name,
            MAX_NAME_CHARS,
            true,
        ),
        summary: text(
            violations,
            "mission.summary",
            &mission.summary,
            MAX_TEXT,
            false,
        ),
        requirements: text(
            violations,
            "mission.requirements",
            &mission.requirements,
            MAX_TEXT,
            false,
        ),
        objective: text(
            violations,
            "mission.objective",
            &mission.objective,
            MAX_TEXT,
            false,
        ),
        difficulty,
        duration_days: mission.duration_days,
        progress_target: mission.progress_target,
        progress_unit,
        targets,
        reward: reward(violations, "mission.reward", mission.reward.as_ref()),
        badge_ids,
        metadata: json_object(violations, "mission.metadata_json", &mission.metadata_json),
        active: mission.active,
    }
}

/// The message of an upsert, or a REQUIRED violation when it is missing.
fn required<T: Clone + Default>(violations: &mut Violations, field: &str, given: Option<&T>) -> T {
    if given.is_none() {
        violations.add(field, "REQUIRED", "is required");
    }
    given.cloned().unwrap_or_default()
}

#[tonic::async_trait]
impl CatalogService for Missions {
    async fn get_catalog(
        &self,
        _request: Request<pb::GetCatalogRequest>,
    ) -> Result<Response<pb::GetCatalogResponse>, Status> {
        let catalog = self.current_catalog().await?;
        Ok(Response::new(proto::catalog(&catalog)))
    }

    async fn upsert_mission(
        &self,
        request: Request<pb::UpsertMissionRequest>,
    ) -> Result<Response<pb::UpsertMissionResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let given = required(
            &mut violations,
            "mission",
            request.get_ref().mission.as_ref(),
        );
        let mission = mission(&mut violations, &given);
        violations.finish()?;
        let stored = self.upsert_mission(&mission).await?;
        Ok(Response::new(pb::UpsertMissionResponse {
            mission: Some(proto::mission(&stored)),
        }))
    }

    async fn upsert_badge(
        &self,
        request: Request<pb::UpsertBadgeRequest>,
    ) -> Result<Response<pb::UpsertBadgeResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let given = required(&mut violations, "badge", request.get_ref().badge.as_ref());
        let v = &mut violations;
        let badge = Badge {
            badge_id: id_or_new(v, "badge.badge_id", &given.badge_id),
            code: text(v, "badge.code", &given.code, MAX_CODE_CHARS, true),
            name: text(v, "badge.name", &given.name, MAX_NAME_CHARS, true),
            description: text(v, "badge.description", &given.description, MAX_TEXT, false),
            artwork_url: (!given.artwork_url.trim().is_empty())
                .then(|| text(v, "badge.artwork_url", &given.artwork_url, MAX_TEXT, false)),
        };
        violations.finish()?;
        let stored = self.upsert_badge(&badge).await?;
        Ok(Response::new(pb::UpsertBadgeResponse {
            badge: Some(proto::badge(&stored)),
        }))
    }

    async fn upsert_effect(
        &self,
        request: Request<pb::UpsertEffectRequest>,
    ) -> Result<Response<pb::UpsertEffectResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let given = required(&mut violations, "effect", request.get_ref().effect.as_ref());
        let v = &mut violations;
        let kind = choice(
            v,
            "effect.kind",
            given.kind,
            proto::effect_kind_from,
            "amulet or aura",
        );
        v.range(
            "effect.duration_days",
            given.duration_days,
            0..=365,
            Some("INVALID_DURATION"),
        );
        let effect = EffectDefinition {
            effect_id: id_or_new(v, "effect.effect_id", &given.effect_id),
            kind: kind.unwrap_or(EffectKind::Amulet),
            name: text(v, "effect.name", &given.name, MAX_NAME_CHARS, true),
            description: text(v, "effect.description", &given.description, MAX_TEXT, false),
            payload: json_object(v, "effect.payload_json", &given.payload_json),
            duration_days: (given.duration_days > 0).then_some(given.duration_days),
        };
        violations.finish()?;
        let stored = self.upsert_effect(&effect).await?;
        Ok(Response::new(pb::UpsertEffectResponse {
            effect: Some(proto::effect_definition(&stored)),
        }))
    }

    async fn upsert_boss(
        &self,
        request: Request<pb::UpsertBossRequest>,
    ) -> Result<Response<pb::UpsertBossResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let given = required(&mut violations, "boss", request.get_ref().boss.as_ref());
        let v = &mut violations;
        v.range(
            "boss.shield_max",
            given.shield_max,
            1..=10_000,
            Some("INVALID_SHIELD"),
        );
        let boss = Boss {
            boss_id: id_or_new(v, "boss.boss_id", &given.boss_id),
            code: text(v, "boss.code", &given.code, MAX_CODE_CHARS, true),
            name: text(v, "boss.name", &given.name, MAX_NAME_CHARS, true),
            description: text(v, "boss.description", &given.description, MAX_TEXT, false),
            shield_max: i16::try_from(given.shield_max).unwrap_or(1),
            reward: reward(v, "boss.reward", given.reward.as_ref()),
            metadata: json_object(v, "boss.metadata_json", &given.metadata_json),
        };
        violations.finish()?;
        let stored = self.upsert_boss(&boss).await?;
        Ok(Response::new(pb::UpsertBossResponse {
            boss: Some(proto::boss(&stored)),
        }))
    }

    async fn get_level_curve(
        &self,
        _request: Request<pb::GetLevelCurveRequest>,
    ) -> Result<Response<pb::GetLevelCurveResponse>, Status> {
        let levels = self.level_curve().await?;
        Ok(Response::new(pb::GetLevelCurveResponse {
            levels: levels.iter().map(proto::level).collect(),
        }))
    }

    async fn set_level_curve(
        &self,
        request: Request<pb::SetLevelCurveRequest>,
    ) -> Result<Response<pb::SetLevelCurveResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let given = &request.get_ref().levels;
        if given.is_empty() {
            violations.add("levels", "REQUIRED", "at least level 1 is required");
        }
        let given = bounded(&mut violations, "levels", given);
        let levels: Vec<Level> = given
            .iter()
            .enumerate()
            .map(|(i, level)| Level {
                level: level.level,
                min_xp: level.min_xp,
                name: text(
                    &mut violations,
                    &format!("levels[{i}].name"),
                    &level.name,
                    MAX_LEVEL_NAME_CHARS,
                    false,
                ),
            })
            .collect();
        for found in curve_violations(&levels) {
            violations.add(
                format!("levels[{}].{}", found.index, found.field),
                found.reason,
                found.message,
            );
        }
        violations.finish()?;
        let stored = self.set_level_curve(&levels).await?;
        Ok(Response::new(pb::SetLevelCurveResponse {
            levels: stored.iter().map(proto::level).collect(),
        }))
    }

    async fn resolve_level(
        &self,
        request: Request<pb::ResolveLevelRequest>,
    ) -> Result<Response<pb::ResolveLevelResponse>, Status> {
        let xp = request.get_ref().xp;
        let mut violations = Violations::new();
        if xp < 0 {
            violations.add("xp", "NEGATIVE_XP", "must be 0 or more");
        }
        violations.finish()?;
        let (level, next) = self.resolve_level(xp).await?;
        Ok(Response::new(pb::ResolveLevelResponse {
            level: Some(proto::level(&level)),
            next_level: next.as_ref().map(proto::level),
        }))
    }
}
