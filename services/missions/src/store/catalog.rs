//! The catalog in SQL: missions (with targets, reward and badges), badges, effects and bosses.
//!
//! Reads build each item as the JSON document of its Rust type in SQL (like the board
//! documents), so the catalog's enums are spelled in one place, their serde names. Every list
//! is in id order: `Catalog::offerable` picks offers by index, so the order must be the same on
//! every replica and across restarts (admin ids are v7, time-ordered: new missions come last).
//!
//! Validation of what admins send is the API's job (`domain::catalog` says what the tables
//! hold); the tables' CHECKs back it. What only the database can know (a code or a target id
//! already taken, a badge or effect that does not exist) comes back as a refusal that names the
//! field.

use std::collections::HashMap;

use phoenix_runtime::{Error, FieldViolation, quote};
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::catalog::{Badge, Boss, Catalog, EffectDefinition, Mission};
use crate::domain::{Refusal, RefusalKind};

/// The catalog a new installation starts with (see `catalog/default.json`).
const DEFAULT_CATALOG: &str = include_str!("../../catalog/default.json");

/// The whole catalog, as of one moment (one read-only snapshot).
pub async fn load(pool: &PgPool) -> Result<Catalog, Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let catalog = Catalog {
        missions: missions(&mut transaction, None).await?,
        badges: badges(&mut transaction, None).await?,
        effects: effects(&mut transaction, None).await?,
        bosses: bosses(&mut transaction, None).await?,
    };
    transaction.commit().await?;
    Ok(catalog)
}

/// Creates or replaces the mission (its targets and badges are replaced as a whole); returns
/// it as stored.
pub async fn upsert_mission(pool: &PgPool, mission: &Mission) -> Result<Mission, Error> {
    let mut transaction = pool.begin().await?;
    write_mission(&mut transaction, mission).await?;
    let stored = one(
        missions(&mut transaction, Some(mission.mission_id)).await?,
        "mission",
    )?;
    transaction.commit().await?;
    Ok(stored)
}

/// Creates or replaces the badge; returns it as stored.
pub async fn upsert_badge(pool: &PgPool, badge: &Badge) -> Result<Badge, Error> {
    let mut transaction = pool.begin().await?;
    write_badge(&mut transaction, badge).await?;
    let stored = one(
        badges(&mut transaction, Some(badge.badge_id)).await?,
        "badge",
    )?;
    transaction.commit().await?;
    Ok(stored)
}

/// Creates or replaces the effect definition (effects already granted keep what they got);
/// returns it as stored.
pub async fn upsert_effect(
    pool: &PgPool,
    effect: &EffectDefinition,
) -> Result<EffectDefinition, Error> {
    let mut transaction = pool.begin().await?;
    write_effect(&mut transaction, effect).await?;
    let stored = one(
        effects(&mut transaction, Some(effect.effect_id)).await?,
        "effect",
    )?;
    transaction.commit().await?;
    Ok(stored)
}

/// Creates or replaces the boss; returns it as stored.
pub async fn upsert_boss(pool: &PgPool, boss: &Boss) -> Result<Boss, Error> {
    let mut transaction = pool.begin().await?;
    write_boss(&mut transaction, boss).await?;
    let stored = one(bosses(&mut transaction, Some(boss.boss_id)).await?, "boss")?;
    transaction.commit().await?;
    Ok(stored)
}

/// Loads the default catalog when the catalog is empty; true when it did. Replicas starting
/// together take turns on an advisory lock, so the catalog is loaded once.
pub async fn ensure_default(pool: &PgPool) -> Result<bool, Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('missions_v2_catalog/default', 0))")
        .execute(&mut *transaction)
        .await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM missions_v2_missions)")
        .fetch_one(&mut *transaction)
        .await?;
    if !empty {
        return Ok(false);
    }
    // The store tests load it, so it reads; if it did not, the invariant says which file.
    let catalog: Catalog = serde_json::from_str(DEFAULT_CATALOG).map_err(|error| {
        Error::invariant(
            "DEFAULT_CATALOG_READS",
            format!("catalog/default.json is not a catalog: {error}"),
        )
    })?;
    // Badges and effects first: missions and bosses reward them.
    for badge in &catalog.badges {
        write_badge(&mut transaction, badge).await?;
    }
    for effect in &catalog.effects {
        write_effect(&mut transaction, effect).await?;
    }
    for boss in &catalog.bosses {
        write_boss(&mut transaction, boss).await?;
    }
    for mission in &catalog.missions {
        write_mission(&mut transaction, mission).await?;
    }
    transaction.commit().await?;
    tracing::info!(
        missions = catalog.missions.len(),
        badges = catalog.badges.len(),
        effects = catalog.effects.len(),
        bosses = catalog.bosses.len(),
        "loaded the default missions catalog"
    );
    Ok(true)
}

/// The item just written, read back in the same transaction: it is there.
fn one<T>(mut items: Vec<T>, what: &str) -> Result<T, Error> {
    items.pop().ok_or_else(|| {
        Error::invariant(
            "UPSERT_READS_BACK",
            format!("the {what} written in this transaction does not read back"),
        )
    })
}

async fn documents<T: DeserializeOwned + Send + Unpin + 'static>(
    connection: &mut PgConnection,
    query: &'static str,
    only: Option<Uuid>,
) -> Result<Vec<T>, Error> {
    let documents: Vec<Json<T>> = sqlx::query_scalar(query)
        .bind(only)
        .fetch_all(connection)
        .await?;
    Ok(documents.into_iter().map(|Json(item)| item).collect())
}

async fn missions(
    connection: &mut PgConnection,
    only: Option<Uuid>,
) -> Result<Vec<Mission>, Error> {
    documents(
        connection,
        "SELECT jsonb_build_object(
             'missionId', m.mission_id,
             'slotKey', m.slot_key,
             'name', m.name,
             'summary', m.summary,
             'requirements', m.requirements,
             'objective', m.objective,
             'difficulty', m.difficulty,
             'durationDays', m.duration_days,
             'progressTarget', m.progress_target,
             'progressUnit', m.progress_unit,
             'targets', coalesce((
                 SELECT jsonb_agg(jsonb_build_object(
                            'targetId', t.target_id,
                            'taskId', t.task_id,
                            'name', t.name,
                            'tag', t.tag,
                            'sortOrder', t.sort_order)
                          ORDER BY t.position)
                 FROM missions_v2_mission_targets t WHERE t.mission_id = m.mission_id), '[]'),
             'reward', jsonb_build_object(
                 'xp', r.xp,
                 'currency', r.currency,
                 'items', r.items,
                 'badgeId', r.reward_badge,
                 'auraId', r.reward_aura),
             'badgeIds', coalesce((
                 SELECT jsonb_agg(mb.badge_id ORDER BY mb.position)
                 FROM missions_v2_mission_badges mb WHERE mb.mission_id = m.mission_id), '[]'),
             'metadata', m.metadata,
             'active', m.active)
         FROM missions_v2_missions m
         JOIN missions_v2_mission_rewards r ON r.mission_id = m.mission_id
         WHERE $1::uuid IS NULL OR m.mission_id = $1
         ORDER BY m.mission_id",
        only,
    )
    .await
}

async fn badges(connection: &mut PgConnection, only: Option<Uuid>) -> Result<Vec<Badge>, Error> {
    documents(
        connection,
        "SELECT jsonb_build_object(
             'badgeId', badge_id,
             'code', code,
             'name', name,
             'description', description,
             'artworkUrl', artwork_url)
         FROM missions_v2_badges
         WHERE $1::uuid IS NULL OR badge_id = $1
         ORDER BY badge_id",
        only,
    )
    .await
}

async fn effects(
    connection: &mut PgConnection,
    only: Option<Uuid>,
) -> Result<Vec<EffectDefinition>, Error> {
    documents(
        connection,
        "SELECT jsonb_build_object(
             'effectId', effect_id,
             'kind', type,
             'name', name,
             'description', description,
             'payload', payload,
             'durationDays', duration_days)
         FROM missions_v2_effect_catalog
         WHERE $1::uuid IS NULL OR effect_id = $1
         ORDER BY effect_id",
        only,
    )
    .await
}

async fn bosses(connection: &mut PgConnection, only: Option<Uuid>) -> Result<Vec<Boss>, Error> {
    documents(
        connection,
        "SELECT jsonb_build_object(
             'bossId', boss_id,
             'code', code,
             'name', name,
             'description', description,
             'shieldMax', shield_max,
             'reward', jsonb_build_object(
                 'xp', reward_xp,
                 'currency', reward_currency,
                 'items', reward_items,
                 'badgeId', reward_badge,
                 'auraId', reward_aura),
             'metadata', metadata)
         FROM missions_v2_bosses
         WHERE $1::uuid IS NULL OR boss_id = $1
         ORDER BY boss_id",
        only,
    )
    .await
}

async fn write_mission(connection: &mut PgConnection, mission: &Mission) -> Result<(), Error> {
    let refused = |error| refusal(error, "mission", None);
    sqlx::query(
        "INSERT INTO missions_v2_missions (mission_id, slot_key, name, summary, requirements,
                                           objective, difficulty, duration_days, progress_target,
                                           progress_unit, metadata, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (mission_id) DO UPDATE
         SET slot_key = EXCLUDED.slot_key, name = EXCLUDED.name, summary = EXCLUDED.summary,
             requirements = EXCLUDED.requirements, objective = EXCLUDED.objective,
             difficulty = EXCLUDED.difficulty, duration_days = EXCLUDED.duration_days,
             progress_target = EXCLUDED.progress_target, progress_unit = EXCLUDED.progress_unit,
             metadata = EXCLUDED.metadata, active = EXCLUDED.active, updated_at = now()",
    )
    .bind(mission.mission_id)
    .bind(mission.slot_key.as_str())
    .bind(&mission.name)
    .bind(&mission.summary)
    .bind(&mission.requirements)
    .bind(&mission.objective)
    .bind(mission.difficulty.as_str())
    .bind(mission.duration_days)
    .bind(mission.progress_target)
    .bind(mission.progress_unit.as_str())
    .bind(&mission.metadata)
    .bind(mission.active)
    .execute(&mut *connection)
    .await
    .map_err(refused)?;
    let reward = &mission.reward;
    sqlx::query(
        "INSERT INTO missions_v2_mission_rewards (mission_id, xp, currency, items, reward_badge,
                                                  reward_aura)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (mission_id) DO UPDATE
         SET xp = EXCLUDED.xp, currency = EXCLUDED.currency, items = EXCLUDED.items,
             reward_badge = EXCLUDED.reward_badge, reward_aura = EXCLUDED.reward_aura",
    )
    .bind(mission.mission_id)
    .bind(reward.xp)
    .bind(reward.currency)
    .bind(Json(&reward.items))
    .bind(reward.badge_id)
    .bind(reward.aura_id)
    .execute(&mut *connection)
    .await
    .map_err(refused)?;
    write_targets(connection, mission).await?;
    sqlx::query("DELETE FROM missions_v2_mission_badges WHERE mission_id = $1")
        .bind(mission.mission_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO missions_v2_mission_badges (mission_id, badge_id, position)
         SELECT $1, b.badge_id, b.position - 1
         FROM UNNEST($2::uuid[]) WITH ORDINALITY AS b(badge_id, position)",
    )
    .bind(mission.mission_id)
    .bind(&mission.badge_ids)
    .execute(&mut *connection)
    .await
    .map_err(refused)?;
    Ok(())
}

/// Replaces the mission's targets. Target ids are unique across missions: an id another
/// mission has is refused (ALREADY_EXISTS `TARGET_ID_TAKEN`, naming each such target and its
/// mission) and the caller's transaction, left uncommitted, writes nothing. `ON CONFLICT DO
/// NOTHING` finds them in the insert itself, so a concurrent upsert taking the same id is
/// refused the same way.
async fn write_targets(connection: &mut PgConnection, mission: &Mission) -> Result<(), Error> {
    sqlx::query("DELETE FROM missions_v2_mission_targets WHERE mission_id = $1")
        .bind(mission.mission_id)
        .execute(&mut *connection)
        .await?;
    let targets = &mission.targets;
    let ids: Vec<Uuid> = targets.iter().map(|t| t.target_id).collect();
    let written: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO missions_v2_mission_targets (target_id, mission_id, position, task_id, name,
                                                  tag, sort_order)
         SELECT t.target_id, $1, t.position - 1, t.task_id, t.name, t.tag, t.sort_order
         FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int2[])
              WITH ORDINALITY AS t(target_id, task_id, name, tag, sort_order, position)
         ON CONFLICT (target_id) DO NOTHING
         RETURNING target_id",
    )
    .bind(mission.mission_id)
    .bind(&ids)
    .bind(targets.iter().map(|t| t.task_id).collect::<Vec<_>>())
    .bind(targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
    .bind(targets.iter().map(|t| t.tag.as_str()).collect::<Vec<_>>())
    .bind(targets.iter().map(|t| t.sort_order).collect::<Vec<_>>())
    .fetch_all(&mut *connection)
    .await
    .map_err(|error| refusal(error, "mission", None))?;
    if written.len() == ids.len() {
        return Ok(());
    }
    let owners: HashMap<Uuid, Uuid> = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT target_id, mission_id FROM missions_v2_mission_targets WHERE target_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await?
    .into_iter()
    .collect();
    let taken = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !written.contains(id))
        .map(|(index, id)| (index, *id, owners.get(id).copied()));
    Err(targets_taken(taken).into())
}

/// The refusal of targets whose ids other missions have: (index, id, owning mission).
fn targets_taken(taken: impl Iterator<Item = (usize, Uuid, Option<Uuid>)>) -> Refusal {
    let mut refusal = Refusal::already_exists(
        "TARGET_ID_TAKEN",
        "another mission has a target with this id; leave target_id empty for a new one",
    );
    for (index, id, owner) in taken {
        let owner_named = owner.map_or_else(String::new, |owner| format!(" ({owner})"));
        refusal.violations.push(FieldViolation::new(
            format!("mission.targets[{index}].target_id"),
            "TARGET_ID_TAKEN",
            format!("{id} is a target of another mission{owner_named}"),
        ));
        if let Some(owner) = owner.filter(|_| refusal.fact("mission_id").is_none()) {
            refusal = refusal.with("mission_id", owner);
        }
    }
    refusal
}

async fn write_badge(connection: &mut PgConnection, badge: &Badge) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO missions_v2_badges (badge_id, code, name, description, artwork_url)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (badge_id) DO UPDATE
         SET code = EXCLUDED.code, name = EXCLUDED.name, description = EXCLUDED.description,
             artwork_url = EXCLUDED.artwork_url",
    )
    .bind(badge.badge_id)
    .bind(&badge.code)
    .bind(&badge.name)
    .bind(&badge.description)
    .bind(&badge.artwork_url)
    .execute(connection)
    .await
    .map_err(|error| refusal(error, "badge", Some(&badge.code)))?;
    Ok(())
}

async fn write_effect(
    connection: &mut PgConnection,
    effect: &EffectDefinition,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO missions_v2_effect_catalog (effect_id, type, name, description, payload,
                                                 duration_days)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (effect_id) DO UPDATE
         SET type = EXCLUDED.type, name = EXCLUDED.name, description = EXCLUDED.description,
             payload = EXCLUDED.payload, duration_days = EXCLUDED.duration_days",
    )
    .bind(effect.effect_id)
    .bind(effect.kind.as_str())
    .bind(&effect.name)
    .bind(&effect.description)
    .bind(&effect.payload)
    .bind(effect.duration_days)
    .execute(connection)
    .await
    .map_err(|error| refusal(error, "effect", None))?;
    Ok(())
}

async fn write_boss(connection: &mut PgConnection, boss: &Boss) -> Result<(), Error> {
    let reward = &boss.reward;
    sqlx::query(
        "INSERT INTO missions_v2_bosses (boss_id, code, name, description, shield_max, reward_xp,
                                         reward_currency, reward_items, reward_badge,
                                         reward_aura, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (boss_id) DO UPDATE
         SET code = EXCLUDED.code, name = EXCLUDED.name, description = EXCLUDED.description,
             shield_max = EXCLUDED.shield_max, reward_xp = EXCLUDED.reward_xp,
             reward_currency = EXCLUDED.reward_currency, reward_items = EXCLUDED.reward_items,
             reward_badge = EXCLUDED.reward_badge, reward_aura = EXCLUDED.reward_aura,
             metadata = EXCLUDED.metadata",
    )
    .bind(boss.boss_id)
    .bind(&boss.code)
    .bind(&boss.name)
    .bind(&boss.description)
    .bind(boss.shield_max)
    .bind(reward.xp)
    .bind(reward.currency)
    .bind(Json(&reward.items))
    .bind(reward.badge_id)
    .bind(reward.aura_id)
    .bind(&boss.metadata)
    .execute(connection)
    .await
    .map_err(|error| refusal(error, "boss", Some(&boss.code)))?;
    Ok(())
}

/// What only the database can tell about an upsert of `item`, as a refusal naming the field:
/// its `code` is another item's (ALREADY_EXISTS), or its reward or badge list names a badge or
/// effect the catalog does not have (INVALID_ARGUMENT); and, should validation ever miss a
/// rule of the tables, a value they refuse (INVALID_ARGUMENT `CATALOG_CONSTRAINT`). Anything
/// else stays a database error.
fn refusal(error: sqlx::Error, item: &str, code: Option<&str>) -> Error {
    let Some(database) = error.as_database_error() else {
        return error.into();
    };
    let constraint = database.constraint().unwrap_or_default();
    let refusal = match (database.code().as_deref(), code) {
        (Some("23505"), Some(code)) if constraint.ends_with("_code_key") => Refusal::new(
            RefusalKind::AlreadyExists,
            &format!("{}_CODE_TAKEN", item.to_uppercase()),
            format!("another {item} already has code {}", quote(code)),
        )
        .at(format!("{item}.code"))
        .with("code", code),
        (Some("23503"), _) => {
            let (field, reason, what) = if constraint.ends_with("reward_aura_fkey") {
                ("reward.aura_id", "UNKNOWN_EFFECT", "effect")
            } else if constraint.ends_with("reward_badge_fkey") {
                ("reward.badge_id", "UNKNOWN_BADGE", "badge")
            } else {
                ("badge_ids", "UNKNOWN_BADGE", "badge")
            };
            Refusal::invalid(
                &format!("{item}.{field}"),
                reason,
                format!("the catalog has no such {what}; upsert it first"),
            )
        }
        // A value the tables refuse that validation let through (a CHECK, a value out of a
        // column's range, a NUL): the request's, since every value written is, but a gap in
        // validation to close, hence the warning.
        (Some(sqlstate), _) if sqlstate == "23514" || sqlstate.starts_with("22") => {
            tracing::warn!(%error, item, "the catalog tables refused what validation accepted");
            Refusal::invalid(
                item,
                "CATALOG_CONSTRAINT",
                format!(
                    "the catalog cannot hold this {item}: {}",
                    database.message()
                ),
            )
        }
        _ => return error.into(),
    };
    refusal.into()
}
