//! CatalogService: read the catalog, upsert its parts (admins only when authentication is on).

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::catalog_service_server::CatalogService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Fields, Missions, require_admin};
use crate::domain::board::ProgressUnit;
use crate::domain::board::{Reward, SlotKey};
use crate::domain::catalog::{Badge, Boss, EffectDefinition, Mission, MissionTarget};
use crate::domain::catalog::{Difficulty, EffectKind};
use crate::proto;
use crate::store::catalog as store;

const MAX_TEXT: usize = 2_000;

impl Fields {
    /// An id that may be empty (a new record gets a fresh one).
    fn optional_uuid(&mut self, field: &str, value: &str) -> Uuid {
        if value.is_empty() {
            Uuid::now_v7()
        } else {
            self.uuid(field, value)
        }
    }

    fn text(&mut self, field: &str, value: &str, required: bool) -> String {
        let value = value.trim();
        if required && value.is_empty() {
            self.add(field, "is required");
        } else if value.chars().count() > MAX_TEXT {
            self.add(field, "must be at most 2,000 characters");
        }
        value.to_owned()
    }

    fn json_object(&mut self, field: &str, value: &str) -> serde_json::Value {
        if value.trim().is_empty() {
            return serde_json::json!({});
        }
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(json) if json.is_object() => json,
            _ => {
                self.add(field, "must be a JSON object");
                serde_json::json!({})
            }
        }
    }

    fn reward(&mut self, field: &str, reward: Option<&pb::Reward>) -> Reward {
        let Some(reward) = reward else {
            return Reward::default();
        };
        self.check(
            reward.xp >= 0,
            &format!("{field}.xp"),
            "must not be negative",
        );
        self.check(
            reward.currency >= 0,
            &format!("{field}.currency"),
            "must not be negative",
        );
        for (i, item) in reward.items.iter().enumerate() {
            self.check(
                !item.code.trim().is_empty(),
                &format!("{field}.items[{i}].code"),
                "is required",
            );
            self.check(
                item.quantity > 0,
                &format!("{field}.items[{i}].quantity"),
                "must be positive",
            );
        }
        let mut optional = |name: &str, value: &str| {
            (!value.is_empty()).then(|| self.uuid(&format!("{field}.{name}"), value))
        };
        Reward {
            xp: reward.xp,
            currency: reward.currency,
            items: reward.items.iter().map(proto::reward_item).collect(),
            badge_id: optional("badge_id", &reward.badge_id),
            aura_id: optional("aura_id", &reward.aura_id),
        }
    }
}

fn mission(fields: &mut Fields, mission: &pb::Mission) -> Mission {
    let slot_key = proto::slot_key_from(mission.slot_key).unwrap_or_else(|| {
        fields.add("mission.slot_key", "must be a slot (main, hunt or skill)");
        SlotKey::Main
    });
    let difficulty = proto::difficulty_from(mission.difficulty).unwrap_or_else(|| {
        fields.add("mission.difficulty", "must be low, medium, high or epic");
        Difficulty::Low
    });
    let progress_unit = proto::progress_unit_from(mission.progress_unit).unwrap_or_else(|| {
        fields.add(
            "mission.progress_unit",
            "must be tasks, sessions, minutes or points",
        );
        ProgressUnit::Tasks
    });
    fields.check(
        (1..=365).contains(&mission.duration_days),
        "mission.duration_days",
        "must be between 1 and 365",
    );
    fields.check(
        mission.progress_target > 0,
        "mission.progress_target",
        "must be positive",
    );
    let targets = mission
        .targets
        .iter()
        .enumerate()
        .map(|(i, target)| MissionTarget {
            target_id: fields.optional_uuid(
                &format!("mission.targets[{i}].target_id"),
                &target.target_id,
            ),
            task_id: fields.uuid(&format!("mission.targets[{i}].task_id"), &target.task_id),
            name: fields.text(&format!("mission.targets[{i}].name"), &target.name, true),
            tag: fields.text(&format!("mission.targets[{i}].tag"), &target.tag, false),
            sort_order: i16::try_from(target.sort_order).unwrap_or_else(|_| {
                fields.add(
                    &format!("mission.targets[{i}].sort_order"),
                    "must fit in 16 bits",
                );
                0
            }),
        })
        .collect();
    Mission {
        mission_id: fields.optional_uuid("mission.mission_id", &mission.mission_id),
        slot_key,
        name: fields.text("mission.name", &mission.name, true),
        summary: fields.text("mission.summary", &mission.summary, false),
        requirements: fields.text("mission.requirements", &mission.requirements, false),
        objective: fields.text("mission.objective", &mission.objective, false),
        difficulty,
        duration_days: mission.duration_days,
        progress_target: mission.progress_target,
        progress_unit,
        targets,
        reward: fields.reward("mission.reward", mission.reward.as_ref()),
        badge_ids: mission
            .badge_ids
            .iter()
            .enumerate()
            .map(|(i, id)| fields.uuid(&format!("mission.badge_ids[{i}]"), id))
            .collect(),
        metadata: fields.json_object("mission.metadata_json", &mission.metadata_json),
        active: mission.active,
    }
}

#[tonic::async_trait]
impl CatalogService for Missions {
    async fn get_catalog(
        &self,
        _request: Request<pb::GetCatalogRequest>,
    ) -> Result<Response<pb::GetCatalogResponse>, Status> {
        let catalog = self.catalog.reload().await?;
        Ok(Response::new(proto::catalog(&catalog)))
    }

    async fn upsert_mission(
        &self,
        request: Request<pb::UpsertMissionRequest>,
    ) -> Result<Response<pb::UpsertMissionResponse>, Status> {
        require_admin(&request)?;
        let mut fields = Fields::default();
        let given = request.get_ref().mission.clone().unwrap_or_default();
        fields.check(
            request.get_ref().mission.is_some(),
            "mission",
            "is required",
        );
        let mission = mission(&mut fields, &given);
        fields.done()?;
        // An upsert into an empty database comes after the default catalog, not instead of it.
        self.catalog.get().await?;
        let stored = store::upsert_mission(&self.pool, &mission).await?;
        self.catalog.reload().await?;
        Ok(Response::new(pb::UpsertMissionResponse {
            mission: Some(proto::mission(&stored)),
        }))
    }

    async fn upsert_badge(
        &self,
        request: Request<pb::UpsertBadgeRequest>,
    ) -> Result<Response<pb::UpsertBadgeResponse>, Status> {
        require_admin(&request)?;
        let mut fields = Fields::default();
        let given = request.get_ref().badge.clone().unwrap_or_default();
        fields.check(request.get_ref().badge.is_some(), "badge", "is required");
        let badge = Badge {
            badge_id: fields.optional_uuid("badge.badge_id", &given.badge_id),
            code: fields.text("badge.code", &given.code, true),
            name: fields.text("badge.name", &given.name, true),
            description: fields.text("badge.description", &given.description, false),
            artwork_url: (!given.artwork_url.trim().is_empty())
                .then(|| fields.text("badge.artwork_url", &given.artwork_url, false)),
        };
        fields.done()?;
        // An upsert into an empty database comes after the default catalog, not instead of it.
        self.catalog.get().await?;
        let stored = store::upsert_badge(&self.pool, &badge).await?;
        self.catalog.reload().await?;
        Ok(Response::new(pb::UpsertBadgeResponse {
            badge: Some(proto::badge(&stored)),
        }))
    }

    async fn upsert_effect(
        &self,
        request: Request<pb::UpsertEffectRequest>,
    ) -> Result<Response<pb::UpsertEffectResponse>, Status> {
        require_admin(&request)?;
        let mut fields = Fields::default();
        let given = request.get_ref().effect.clone().unwrap_or_default();
        fields.check(request.get_ref().effect.is_some(), "effect", "is required");
        let kind = proto::effect_kind_from(given.kind).unwrap_or_else(|| {
            fields.add("effect.kind", "must be amulet or aura");
            EffectKind::Amulet
        });
        fields.check(
            (0..=365).contains(&given.duration_days),
            "effect.duration_days",
            "must be between 0 (until consumed) and 365",
        );
        let effect = EffectDefinition {
            effect_id: fields.optional_uuid("effect.effect_id", &given.effect_id),
            kind,
            name: fields.text("effect.name", &given.name, true),
            description: fields.text("effect.description", &given.description, false),
            payload: fields.json_object("effect.payload_json", &given.payload_json),
            duration_days: (given.duration_days > 0).then_some(given.duration_days),
        };
        fields.done()?;
        // An upsert into an empty database comes after the default catalog, not instead of it.
        self.catalog.get().await?;
        let stored = store::upsert_effect(&self.pool, &effect).await?;
        self.catalog.reload().await?;
        Ok(Response::new(pb::UpsertEffectResponse {
            effect: Some(proto::effect_definition(&stored)),
        }))
    }

    async fn upsert_boss(
        &self,
        request: Request<pb::UpsertBossRequest>,
    ) -> Result<Response<pb::UpsertBossResponse>, Status> {
        require_admin(&request)?;
        let mut fields = Fields::default();
        let given = request.get_ref().boss.clone().unwrap_or_default();
        fields.check(request.get_ref().boss.is_some(), "boss", "is required");
        fields.check(
            (1..=10_000).contains(&given.shield_max),
            "boss.shield_max",
            "must be between 1 and 10,000",
        );
        let boss = Boss {
            boss_id: fields.optional_uuid("boss.boss_id", &given.boss_id),
            code: fields.text("boss.code", &given.code, true),
            name: fields.text("boss.name", &given.name, true),
            description: fields.text("boss.description", &given.description, false),
            shield_max: i16::try_from(given.shield_max).unwrap_or(1),
            reward: fields.reward("boss.reward", given.reward.as_ref()),
            metadata: fields.json_object("boss.metadata_json", &given.metadata_json),
        };
        fields.done()?;
        // An upsert into an empty database comes after the default catalog, not instead of it.
        self.catalog.get().await?;
        let stored = store::upsert_boss(&self.pool, &boss).await?;
        self.catalog.reload().await?;
        Ok(Response::new(pb::UpsertBossResponse {
            boss: Some(proto::boss(&stored)),
        }))
    }
}
