//! The catalog: `fragments`, `decisions`, `experiences` with `experience_components`, and
//! `reaction_rewards`.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{from_json, json, unreadable};
use crate::domain::{
    ContentKind, ContentRef, Decision, Experience, Fragment, FragmentInput, FragmentProgress,
    Known, Metrics, ReactionReward, Target,
};

const FRAGMENT_COLUMNS: &str = "id, title, content, preview, vip_exclusive, experience_id,
    experience_sequence, requirements, rewards, completes_level, view_count, visitor_count,
    completion_count, time_spent_ms, created_at, updated_at";

fn fragment(row: &PgRow) -> Result<Fragment, Error> {
    let experience_id: Option<Uuid> = row.try_get("experience_id")?;
    let sequence: Option<i32> = row.try_get("experience_sequence")?;
    Ok(Fragment {
        input: FragmentInput {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            content: row.try_get("content")?,
            preview: row.try_get("preview")?,
            vip_exclusive: row.try_get("vip_exclusive")?,
            experience: experience_id.zip(sequence),
            requirements: from_json("fragments.requirements", row.try_get("requirements")?)?,
            rewards: from_json("fragments.rewards", row.try_get("rewards")?)?,
            completes_level: row.try_get("completes_level")?,
        },
        metrics: Metrics {
            view_count: row.try_get("view_count")?,
            visitor_count: row.try_get("visitor_count")?,
            completion_count: row.try_get("completion_count")?,
            time_spent_ms: row.try_get("time_spent_ms")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Serializes catalog changes: a cycle check reads the links other writers could be changing.
pub async fn lock(connection: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('narrative.catalog'))")
        .execute(connection)
        .await?;
    Ok(())
}

/// Creates or replaces a fragment (its metrics are kept); true when created.
pub async fn upsert_fragment(
    connection: &mut PgConnection,
    input: &FragmentInput,
    now: DateTime<Utc>,
) -> Result<(Fragment, bool), Error> {
    let sql = format!(
        "INSERT INTO fragments (id, title, content, preview, vip_exclusive, experience_id,
             experience_sequence, requirements, rewards, completes_level, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, content = EXCLUDED.content,
             preview = EXCLUDED.preview, vip_exclusive = EXCLUDED.vip_exclusive,
             experience_id = EXCLUDED.experience_id,
             experience_sequence = EXCLUDED.experience_sequence,
             requirements = EXCLUDED.requirements, rewards = EXCLUDED.rewards,
             completes_level = EXCLUDED.completes_level, updated_at = EXCLUDED.updated_at
         RETURNING {FRAGMENT_COLUMNS}, (xmax = 0) AS created"
    );
    let row = sqlx::query(&sql)
        .bind(input.id)
        .bind(&input.title)
        .bind(&input.content)
        .bind(&input.preview)
        .bind(input.vip_exclusive)
        .bind(input.experience.map(|(id, _)| id))
        .bind(input.experience.map(|(_, sequence)| sequence))
        .bind(json(&input.requirements)?)
        .bind(json(&input.rewards)?)
        .bind(input.completes_level)
        .bind(now)
        .fetch_one(connection)
        .await?;
    Ok((fragment(&row)?, row.try_get("created")?))
}

pub async fn fragment_by_id(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Fragment>, Error> {
    let sql = format!("SELECT {FRAGMENT_COLUMNS} FROM fragments WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(fragment).transpose()
}

fn decision(row: &PgRow) -> Result<Decision, Error> {
    Ok(Decision {
        id: row.try_get("id")?,
        fragment_id: row.try_get("fragment_id")?,
        label: row.try_get("label")?,
        next_fragment: row.try_get("next_fragment_id")?,
        rewards: from_json("decisions.rewards", row.try_get("rewards")?)?,
        position: row.try_get("position")?,
    })
}

const DECISION_COLUMNS: &str = "id, fragment_id, label, next_fragment_id, rewards, position";

/// The fragment's decisions, in position order.
pub async fn decisions_of(
    executor: impl sqlx::PgExecutor<'_>,
    fragment_id: Uuid,
) -> Result<Vec<Decision>, Error> {
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM decisions WHERE fragment_id = $1 ORDER BY position, id"
    );
    let rows = sqlx::query(&sql)
        .bind(fragment_id)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decision).collect()
}

/// A fragment and one decision, in one round trip: the fragment when it exists, and the
/// decision when it exists (of whichever fragment). With `lock_user`, the same statement locks
/// that user's state (creating it at version 0) and answers its version.
pub async fn fragment_and_decision(
    executor: impl sqlx::PgExecutor<'_>,
    fragment_id: Uuid,
    decision_id: Uuid,
    lock_user: Option<(Uuid, DateTime<Utc>)>,
) -> Result<(Option<Fragment>, Option<Decision>, i64), Error> {
    let sql = format!(
        "WITH s AS (
             INSERT INTO user_states (user_id, version, last_activity_at)
             SELECT $3, 0, $4 WHERE $3::uuid IS NOT NULL
             ON CONFLICT (user_id) DO UPDATE SET version = user_states.version
             RETURNING version)
         SELECT f.*, d.id AS d_id, d.fragment_id AS d_fragment_id, d.label AS d_label,
                d.next_fragment_id AS d_next, d.rewards AS d_rewards, d.position AS d_position,
                coalesce((SELECT version FROM s), 0) AS user_version
         FROM (SELECT 1) AS one
         LEFT JOIN (SELECT {FRAGMENT_COLUMNS} FROM fragments WHERE id = $1) f ON true
         LEFT JOIN decisions d ON d.id = $2"
    );
    let row = sqlx::query(&sql)
        .bind(fragment_id)
        .bind(decision_id)
        .bind(lock_user.map(|(user, _)| user))
        .bind(lock_user.map(|(_, now)| now))
        .fetch_one(executor)
        .await?;
    let found = match row.try_get::<Option<Uuid>, _>("id")? {
        Some(_) => Some(fragment(&row)?),
        None => None,
    };
    let decision = match row.try_get::<Option<Uuid>, _>("d_id")? {
        Some(id) => Some(Decision {
            id,
            fragment_id: row.try_get("d_fragment_id")?,
            label: row.try_get("d_label")?,
            next_fragment: row.try_get("d_next")?,
            rewards: from_json("decisions.rewards", row.try_get("d_rewards")?)?,
            position: row.try_get("d_position")?,
        }),
        None => None,
    };
    Ok((found, decision, row.try_get("user_version")?))
}

/// A fragment as one user sees it, in one round trip: the fragment, its decisions in position
/// order, the user's progress on it, and which of its required fragments the user unlocked
/// and required experiences the user completed. `None` when there is no such fragment.
pub async fn fragment_for_user(
    executor: impl sqlx::PgExecutor<'_>,
    fragment_id: Uuid,
    user_id: Uuid,
) -> Result<Option<(Fragment, Vec<Decision>, FragmentProgress, Known)>, Error> {
    let sql = format!(
        "SELECT f.*,
             (SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id,
                          'fragment_id', d.fragment_id, 'label', d.label,
                          'next_fragment', d.next_fragment_id, 'rewards', d.rewards,
                          'position', d.position) ORDER BY d.position, d.id), '[]')
              FROM decisions d WHERE d.fragment_id = f.id) AS decisions,
             p.unlocked_at AS p_unlocked_at, coalesce(p.visit_count, 0) AS p_visit_count,
             coalesce(p.time_spent_ms, 0) AS p_time_spent_ms, p.first_visit_at AS p_first,
             p.last_visit_at AS p_last, u.decision_id AS u_decision, u.taken_at AS u_taken,
             ARRAY(SELECT q.fragment_id FROM fragment_progress q
                   WHERE q.user_id = $2 AND q.unlocked_at IS NOT NULL
                     AND q.fragment_id IN (SELECT r::uuid FROM jsonb_array_elements_text(
                         f.requirements->'required_fragments') AS r)) AS unlocked,
             ARRAY(SELECT e.experience_id FROM experience_progress e
                   WHERE e.user_id = $2 AND e.status = 'completed'
                     AND e.experience_id IN (SELECT r::uuid FROM jsonb_array_elements_text(
                         f.requirements->'required_experiences') AS r)) AS completed
         FROM (SELECT {FRAGMENT_COLUMNS} FROM fragments WHERE id = $1) f
         LEFT JOIN fragment_progress p ON p.user_id = $2 AND p.fragment_id = f.id
         LEFT JOIN user_decisions u ON u.user_id = $2 AND u.fragment_id = f.id"
    );
    let Some(row) = sqlx::query(&sql)
        .bind(fragment_id)
        .bind(user_id)
        .fetch_optional(executor)
        .await?
    else {
        return Ok(None);
    };
    let decision: Option<Uuid> = row.try_get("u_decision")?;
    let taken: Option<DateTime<Utc>> = row.try_get("u_taken")?;
    let progress = FragmentProgress {
        fragment_id,
        unlocked_at: row.try_get("p_unlocked_at")?,
        visit_count: row.try_get("p_visit_count")?,
        time_spent_ms: row.try_get("p_time_spent_ms")?,
        first_visit_at: row.try_get("p_first")?,
        last_visit_at: row.try_get("p_last")?,
        decision: decision.zip(taken),
    };
    let known = Known {
        unlocked_fragments: row
            .try_get::<Vec<Uuid>, _>("unlocked")?
            .into_iter()
            .collect(),
        completed_experiences: row
            .try_get::<Vec<Uuid>, _>("completed")?
            .into_iter()
            .collect(),
    };
    Ok(Some((
        fragment(&row)?,
        from_json("decisions", row.try_get("decisions")?)?,
        progress,
        known,
    )))
}

pub async fn decision_by_id(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Decision>, Error> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(decision).transpose()
}

/// Creates or replaces a decision; true when created.
pub async fn upsert_decision(connection: &mut PgConnection, d: &Decision) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "INSERT INTO decisions (id, fragment_id, label, next_fragment_id, rewards, position)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET fragment_id = EXCLUDED.fragment_id,
             label = EXCLUDED.label, next_fragment_id = EXCLUDED.next_fragment_id,
             rewards = EXCLUDED.rewards, position = EXCLUDED.position
         RETURNING (xmax = 0)",
    )
    .bind(d.id)
    .bind(d.fragment_id)
    .bind(&d.label)
    .bind(d.next_fragment)
    .bind(json(&d.rewards)?)
    .bind(d.position)
    .fetch_one(connection)
    .await?)
}

/// Every next-fragment link reachable from `start`, leaving out decision `except` (the one
/// being replaced): what a cycle check needs.
pub async fn links_reachable_from(
    connection: &mut PgConnection,
    start: Uuid,
    except: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    Ok(sqlx::query_as(
        "WITH RECURSIVE reached(fragment_id) AS (
             SELECT $1::uuid
             UNION
             SELECT d.next_fragment_id FROM decisions d JOIN reached r ON d.fragment_id = r.fragment_id
             WHERE d.next_fragment_id IS NOT NULL AND d.id <> $2)
         SELECT d.fragment_id, d.next_fragment_id FROM decisions d
         JOIN reached r ON d.fragment_id = r.fragment_id
         WHERE d.next_fragment_id IS NOT NULL AND d.id <> $2",
    )
    .bind(start)
    .bind(except)
    .fetch_all(connection)
    .await?)
}

/// Which of `ids` name no fragment (`experiences`: no experience), in the order given.
pub async fn missing(
    executor: impl sqlx::PgExecutor<'_>,
    experiences: bool,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let table = if experiences {
        "experiences"
    } else {
        "fragments"
    };
    let sql = format!(
        "SELECT i.id FROM UNNEST($1::uuid[]) WITH ORDINALITY AS i(id, n)
         WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = i.id) ORDER BY i.n"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(ids)
        .fetch_all(executor)
        .await?)
}

/// Creates or replaces an experience with its components; true when created.
pub async fn upsert_experience(
    connection: &mut PgConnection,
    experience: &Experience,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let created: bool = sqlx::query_scalar(
        "INSERT INTO experiences (id, title, description, rewards, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title,
             description = EXCLUDED.description, rewards = EXCLUDED.rewards,
             updated_at = EXCLUDED.updated_at
         RETURNING (xmax = 0)",
    )
    .bind(experience.id)
    .bind(&experience.title)
    .bind(&experience.description)
    .bind(json(&experience.rewards)?)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let mut fragments: Vec<Option<Uuid>> = Vec::new();
    let mut missions: Vec<Option<String>> = Vec::new();
    for target in &experience.components {
        match target {
            Target::Fragment(id) => {
                fragments.push(Some(*id));
                missions.push(None);
            }
            Target::Mission(id) => {
                fragments.push(None);
                missions.push(Some(id.clone()));
            }
        }
    }
    // Two statements: a data-modifying CTE and its outer INSERT share one snapshot, so the
    // INSERT would still see (and collide with) the rows the DELETE removes.
    sqlx::query("DELETE FROM experience_components WHERE experience_id = $1")
        .bind(experience.id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO experience_components (experience_id, sequence, fragment_id, mission_id)
         SELECT $1, c.n, c.fragment_id, c.mission_id
         FROM UNNEST($2::uuid[], $3::text[]) WITH ORDINALITY AS c(fragment_id, mission_id, n)",
    )
    .bind(experience.id)
    .bind(&fragments)
    .bind(&missions)
    .execute(connection)
    .await?;
    Ok(created)
}

/// Whether some user completed a component of the experience.
pub async fn has_progress(
    executor: impl sqlx::PgExecutor<'_>,
    experience_id: Uuid,
) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM experience_progress
                        WHERE experience_id = $1 AND cardinality(completed_sequences) > 0)",
    )
    .bind(experience_id)
    .fetch_one(executor)
    .await?)
}

/// An experience with its components, and when it was created and last changed.
pub async fn experience_by_id(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(Experience, DateTime<Utc>, DateTime<Utc>)>, Error> {
    let Some(row) = sqlx::query(
        "SELECT id, title, description, rewards, created_at, updated_at FROM experiences
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?
    else {
        return Ok(None);
    };
    let components: Vec<(Option<Uuid>, Option<String>)> = sqlx::query_as(
        "SELECT fragment_id, mission_id FROM experience_components WHERE experience_id = $1
         ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&mut *connection)
    .await?;
    let components = components
        .into_iter()
        .map(|pair| match pair {
            (Some(fragment), _) => Ok(Target::Fragment(fragment)),
            (None, Some(mission)) => Ok(Target::Mission(mission)),
            (None, None) => Err(unreadable("experience_components", "no target")),
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let experience = Experience {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        components,
        rewards: from_json("experiences.rewards", row.try_get("rewards")?)?,
    };
    Ok(Some((
        experience,
        row.try_get("created_at")?,
        row.try_get("updated_at")?,
    )))
}

pub async fn upsert_reaction_reward(
    connection: &mut PgConnection,
    reward: &ReactionReward,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO reaction_rewards (content_kind, content_id, reaction, besitos, active)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (content_kind, content_id, reaction) DO UPDATE
             SET besitos = EXCLUDED.besitos, active = EXCLUDED.active",
    )
    .bind(reward.content.kind.as_str())
    .bind(&reward.content.id)
    .bind(&reward.reaction)
    .bind(reward.besitos)
    .bind(reward.active)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn reaction_reward(
    executor: impl sqlx::PgExecutor<'_>,
    content: &ContentRef,
    reaction: &str,
) -> Result<Option<ReactionReward>, Error> {
    let row: Option<(String, String, String, i64, bool)> = sqlx::query_as(
        "SELECT content_kind, content_id, reaction, besitos, active FROM reaction_rewards
         WHERE content_kind = $1 AND content_id = $2 AND reaction = $3",
    )
    .bind(content.kind.as_str())
    .bind(&content.id)
    .bind(reaction)
    .fetch_optional(executor)
    .await?;
    row.map(|(kind, id, reaction, besitos, active)| {
        Ok(ReactionReward {
            content: ContentRef {
                kind: ContentKind::parse(&kind)
                    .ok_or_else(|| unreadable("reaction_rewards.content_kind", &kind))?,
                id,
            },
            reaction,
            besitos,
            active,
        })
    })
    .transpose()
}
