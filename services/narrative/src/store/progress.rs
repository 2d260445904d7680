//! Each user's progress: `user_states` (the user's stream version and last activity),
//! `fragment_progress` (unlocks, visits, completion) and `user_decisions`.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use phoenix_runtime::stream::{EventRows, NewEvent, Origin, version_conflict};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{broken_constraint, from_json, json};
use crate::domain::{FragmentProgress, Known, Metrics, Rewards, TakenDecision};
use crate::error;

/// Locks the user's state for the transaction (creating it) and answers the version of the
/// user's event stream (0 before the first event).
pub async fn lock_user(
    connection: &mut PgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "INSERT INTO user_states (user_id, version, last_activity_at) VALUES ($1, 0, $2)
         ON CONFLICT (user_id) DO UPDATE SET version = user_states.version
         RETURNING version",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(connection)
    .await?)
}

/// Appends `events` (at versions up to `version`) and sets the user's stream version and last
/// activity, in one statement. A concurrent writer of the same version is ABORTED
/// `STREAM_VERSION_CONFLICT`.
pub async fn append_and_advance(
    connection: &mut PgConnection,
    user_id: Uuid,
    version: i64,
    now: DateTime<Utc>,
    events: &[NewEvent],
) -> Result<(), Error> {
    let next = 2 + EventRows::PARAMETERS;
    let sql = format!(
        "WITH appended AS ({})
         UPDATE user_states SET version = ${next}, last_activity_at = ${}
         WHERE user_id = ${}",
        EventRows::insert(1, 2),
        next + 1,
        next + 2
    );
    let origin = Origin::current();
    EventRows::new(events, &origin)
        .bind(sqlx::query(&sql).bind(Uuid::nil()))
        .bind(version)
        .bind(now)
        .bind(user_id)
        .execute(connection)
        .await
        .map_err(version_conflict)?;
    Ok(())
}

pub async fn last_activity(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Option<DateTime<Utc>>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT last_activity_at FROM user_states WHERE user_id = $1 AND version > 0",
    )
    .bind(user_id)
    .fetch_optional(executor)
    .await?)
}

/// Which of `fragments` the user unlocked and which of `experiences` the user completed.
pub async fn known(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    fragments: &[Uuid],
    experiences: &[Uuid],
) -> Result<Known, Error> {
    let mut known = Known::default();
    if fragments.is_empty() && experiences.is_empty() {
        return Ok(known);
    }
    let rows: Vec<(bool, Uuid)> = sqlx::query_as(
        "SELECT true, fragment_id FROM fragment_progress
         WHERE user_id = $1 AND fragment_id = ANY($2) AND unlocked_at IS NOT NULL
         UNION ALL
         SELECT false, experience_id FROM experience_progress
         WHERE user_id = $1 AND experience_id = ANY($3) AND status = 'completed'",
    )
    .bind(user_id)
    .bind(fragments)
    .bind(experiences)
    .fetch_all(executor)
    .await?;
    for (is_fragment, id) in rows {
        if is_fragment {
            known.unlocked_fragments.insert(id);
        } else {
            known.completed_experiences.insert(id);
        }
    }
    Ok(known)
}

const PROGRESS_COLUMNS: &str = "p.fragment_id, p.unlocked_at, p.visit_count, p.time_spent_ms,
    p.first_visit_at, p.last_visit_at, d.decision_id, d.taken_at";

fn progress_row(row: &PgRow) -> Result<FragmentProgress, Error> {
    let decision: Option<Uuid> = row.try_get("decision_id")?;
    let taken: Option<DateTime<Utc>> = row.try_get("taken_at")?;
    Ok(FragmentProgress {
        fragment_id: row.try_get("fragment_id")?,
        unlocked_at: row.try_get("unlocked_at")?,
        visit_count: row.try_get("visit_count")?,
        time_spent_ms: row.try_get("time_spent_ms")?,
        first_visit_at: row.try_get("first_visit_at")?,
        last_visit_at: row.try_get("last_visit_at")?,
        decision: decision.zip(taken),
    })
}

/// The user's progress on one fragment (none when the user never touched it).
pub async fn fragment_progress(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    fragment_id: Uuid,
) -> Result<FragmentProgress, Error> {
    let sql = format!(
        "SELECT {PROGRESS_COLUMNS} FROM fragment_progress p
         LEFT JOIN user_decisions d ON d.user_id = p.user_id AND d.fragment_id = p.fragment_id
         WHERE p.user_id = $1 AND p.fragment_id = $2"
    );
    let row = sqlx::query(&sql)
        .bind(user_id)
        .bind(fragment_id)
        .fetch_optional(executor)
        .await?;
    row.as_ref()
        .map(progress_row)
        .transpose()
        .map(|found| found.unwrap_or_else(|| FragmentProgress::none(fragment_id)))
}

/// Every fragment the user touched.
pub async fn all_fragment_progress(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<FragmentProgress>, Error> {
    let sql = format!(
        "SELECT {PROGRESS_COLUMNS} FROM fragment_progress p
         LEFT JOIN user_decisions d ON d.user_id = p.user_id AND d.fragment_id = p.fragment_id
         WHERE p.user_id = $1 ORDER BY p.last_activity_at, p.fragment_id"
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(executor).await?;
    rows.iter().map(progress_row).collect()
}

/// Records a visit of `time_spent_ms` and counts it in the fragment's metrics; answers the
/// user's visits so far and the metrics after it.
pub async fn record_visit(
    connection: &mut PgConnection,
    user_id: Uuid,
    fragment_id: Uuid,
    time_spent_ms: i64,
    now: DateTime<Utc>,
) -> Result<(i64, Metrics), Error> {
    let row = sqlx::query(
        "WITH p AS (
             INSERT INTO fragment_progress (user_id, fragment_id, visit_count, time_spent_ms,
                 first_visit_at, last_visit_at, last_activity_at)
             VALUES ($1, $2, 1, $3, $4, $4, $4)
             ON CONFLICT (user_id, fragment_id) DO UPDATE
                 SET visit_count = fragment_progress.visit_count + 1,
                     time_spent_ms = fragment_progress.time_spent_ms + EXCLUDED.time_spent_ms,
                     first_visit_at = COALESCE(fragment_progress.first_visit_at, EXCLUDED.first_visit_at),
                     last_visit_at = EXCLUDED.last_visit_at,
                     last_activity_at = EXCLUDED.last_activity_at
             RETURNING visit_count)
         UPDATE fragments SET view_count = view_count + 1,
             visitor_count = visitor_count + (SELECT (visit_count = 1)::int FROM p),
             time_spent_ms = time_spent_ms + $3
         WHERE id = $2
         RETURNING (SELECT visit_count FROM p), view_count, visitor_count, completion_count,
                   time_spent_ms",
    )
    .bind(user_id)
    .bind(fragment_id)
    .bind(time_spent_ms)
    .bind(now)
    .fetch_one(connection)
    .await?;
    Ok((
        row.try_get(0)?,
        Metrics {
            view_count: row.try_get("view_count")?,
            visitor_count: row.try_get("visitor_count")?,
            completion_count: row.try_get("completion_count")?,
            time_spent_ms: row.try_get("time_spent_ms")?,
        },
    ))
}

/// Records the user's decision on a fragment, marks the fragment completed for the user,
/// counts the completion, appends `events` and sets the user's stream version to `version`,
/// in one statement. A decision already taken on the fragment is ALREADY_EXISTS
/// `DECISION_ALREADY_TAKEN` (the primary key decides, whatever runs concurrently).
pub async fn take_decision(
    connection: &mut PgConnection,
    taken: &TakenDecision,
    rewards: &Rewards,
    level: i32,
    version: i64,
    events: &[NewEvent],
) -> Result<(), Error> {
    let first = 2 + EventRows::PARAMETERS;
    let p = |offset: usize| format!("${}", first + offset);
    let sql = format!(
        "WITH d AS (
             INSERT INTO user_decisions (user_id, fragment_id, decision_id, rewards, level, taken_at)
             VALUES ({user}, {fragment}, {decision}, {rewards}, {level}, {now})
             RETURNING fragment_id),
         p AS (
             INSERT INTO fragment_progress (user_id, fragment_id, completed, last_activity_at)
             SELECT {user}, fragment_id, true, {now} FROM d
             ON CONFLICT (user_id, fragment_id) DO UPDATE
                 SET completed = true, last_activity_at = EXCLUDED.last_activity_at),
         f AS (UPDATE fragments SET completion_count = completion_count + 1
               WHERE id = (SELECT fragment_id FROM d)),
         appended AS ({events})
         UPDATE user_states SET version = {version}, last_activity_at = {now}
         WHERE user_id = {user}",
        events = EventRows::insert(1, 2),
        user = p(0),
        fragment = p(1),
        decision = p(2),
        rewards = p(3),
        level = p(4),
        now = p(5),
        version = p(6),
    );
    let origin = Origin::current();
    EventRows::new(events, &origin)
        .bind(sqlx::query(&sql).bind(Uuid::nil()))
        .bind(taken.user_id)
        .bind(taken.fragment_id)
        .bind(taken.decision_id)
        .bind(json(rewards)?)
        .bind(level)
        .bind(taken.taken_at)
        .bind(version)
        .execute(connection)
        .await
        .map_err(|e| match broken_constraint(&e) {
            Some((code, constraint)) if code == "23505" && constraint == "user_decisions_pkey" => {
                error::decision_already_taken(taken.fragment_id, None).into()
            }
            _ => version_conflict(e),
        })?;
    Ok(())
}

/// The decision the user took on the fragment: its id, the rewards answered, the level it
/// completed and when.
pub async fn user_decision(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    fragment_id: Uuid,
) -> Result<Option<(Uuid, Rewards, i32, DateTime<Utc>)>, Error> {
    let row: Option<(Uuid, serde_json::Value, i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT decision_id, rewards, level, taken_at FROM user_decisions
         WHERE user_id = $1 AND fragment_id = $2",
    )
    .bind(user_id)
    .bind(fragment_id)
    .fetch_optional(executor)
    .await?;
    row.map(|(id, rewards, level, at)| {
        Ok((id, from_json("user_decisions.rewards", rewards)?, level, at))
    })
    .transpose()
}

/// Removes the user's decision on the fragment and its completion.
pub async fn remove_decision(
    connection: &mut PgConnection,
    user_id: Uuid,
    fragment_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "WITH d AS (DELETE FROM user_decisions WHERE user_id = $1 AND fragment_id = $2
                    RETURNING fragment_id),
         p AS (UPDATE fragment_progress SET completed = false, last_activity_at = $3
               WHERE user_id = $1 AND fragment_id IN (SELECT fragment_id FROM d))
         UPDATE fragments SET completion_count = greatest(completion_count - 1, 0)
         WHERE id IN (SELECT fragment_id FROM d)",
    )
    .bind(user_id)
    .bind(fragment_id)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

/// Every decision the user took, oldest first, with the level each completed.
pub async fn decisions_taken(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<(TakenDecision, i32)>, Error> {
    let rows: Vec<(Uuid, Uuid, DateTime<Utc>, i32)> = sqlx::query_as(
        "SELECT fragment_id, decision_id, taken_at, level FROM user_decisions
         WHERE user_id = $1 ORDER BY taken_at, fragment_id",
    )
    .bind(user_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(fragment_id, decision_id, taken_at, level)| {
            (
                TakenDecision {
                    user_id,
                    fragment_id,
                    decision_id,
                    taken_at,
                },
                level,
            )
        })
        .collect())
}

/// The fragments of `$2` that the `changed` CTE names, in the order of `$2`.
const CHANGED_IN_ORDER_GIVEN: &str = "SELECT f FROM UNNEST($2::uuid[]) WITH ORDINALITY AS i(f, n)
         WHERE f IN (SELECT fragment_id FROM changed) ORDER BY n";

/// Unlocks `fragments` for the user; answers those this call unlocked, in the order given.
pub async fn unlock(
    connection: &mut PgConnection,
    user_id: Uuid,
    fragments: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    let sql = format!(
        "WITH changed AS (
             INSERT INTO fragment_progress (user_id, fragment_id, unlocked_at, last_activity_at)
             SELECT $1, f, $3, $3 FROM UNNEST($2::uuid[]) AS f
             ON CONFLICT (user_id, fragment_id) DO UPDATE
                 SET unlocked_at = EXCLUDED.unlocked_at, last_activity_at = EXCLUDED.last_activity_at
                 WHERE fragment_progress.unlocked_at IS NULL
             RETURNING fragment_id)
         {CHANGED_IN_ORDER_GIVEN}"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(user_id)
        .bind(fragments)
        .bind(now)
        .fetch_all(connection)
        .await?)
}

/// Locks `fragments` again; answers those this call locked, in the order given.
pub async fn lock(
    connection: &mut PgConnection,
    user_id: Uuid,
    fragments: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    let sql = format!(
        "WITH changed AS (
             UPDATE fragment_progress SET unlocked_at = NULL, last_activity_at = $3
             WHERE user_id = $1 AND fragment_id = ANY($2) AND unlocked_at IS NOT NULL
             RETURNING fragment_id)
         {CHANGED_IN_ORDER_GIVEN}"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(user_id)
        .bind(fragments)
        .bind(now)
        .fetch_all(connection)
        .await?)
}
