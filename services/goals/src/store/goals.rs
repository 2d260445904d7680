//! The `goals` table.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{object, unreadable};
use crate::domain::goal::{GoalFields, Stamps};
use crate::domain::{Goal, GoalPriority, GoalStatus};

const COLUMNS: &str = "id, user_id, course_id, title, description, status, priority, task_count,
    done_task_count, ai_generated, validation_criteria, metadata, created_at, updated_at,
    started_at, completed_at, due_at, version";

fn goal(row: &PgRow) -> Result<Goal, Error> {
    let status: String = row.try_get("status")?;
    let priority: i16 = row.try_get("priority")?;
    Ok(Goal {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        course_id: row.try_get("course_id")?,
        fields: GoalFields {
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            status: GoalStatus::parse(&status)
                .ok_or_else(|| unreadable("goals.status", &status))?,
            priority: GoalPriority::from_rank(priority)
                .ok_or_else(|| unreadable("goals.priority", &priority.to_string()))?,
            ai_generated: row.try_get("ai_generated")?,
            validation_criteria: object(row, "validation_criteria")?,
            metadata: object(row, "metadata")?,
            due_at: row.try_get("due_at")?,
        },
        task_count: row.try_get("task_count")?,
        done_task_count: row.try_get("done_task_count")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        version: row.try_get("version")?,
    })
}

/// A new goal.
pub struct NewGoal<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub course_id: Option<Uuid>,
    pub fields: &'a GoalFields,
    pub stamps: Stamps,
    pub now: DateTime<Utc>,
}

pub async fn insert(connection: &mut PgConnection, new: &NewGoal<'_>) -> Result<Goal, Error> {
    let f = new.fields;
    let sql = format!(
        "INSERT INTO goals (id, user_id, course_id, title, description, status, priority,
                            ai_generated, validation_criteria, metadata, due_at, started_at,
                            completed_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.course_id)
        .bind(&f.title)
        .bind(&f.description)
        .bind(f.status.as_str())
        .bind(f.priority.rank())
        .bind(f.ai_generated)
        .bind(Value::Object(f.validation_criteria.clone()))
        .bind(Value::Object(f.metadata.clone()))
        .bind(f.due_at)
        .bind(new.stamps.0)
        .bind(new.stamps.1)
        .bind(new.now)
        .fetch_one(connection)
        .await?;
    goal(&row)
}

pub async fn update(
    connection: &mut PgConnection,
    id: Uuid,
    fields: &GoalFields,
    stamps: Stamps,
    now: DateTime<Utc>,
) -> Result<Goal, Error> {
    let sql = format!(
        "UPDATE goals SET title = $2, description = $3, status = $4, priority = $5,
             ai_generated = $6, validation_criteria = $7, metadata = $8, due_at = $9,
             started_at = $10, completed_at = $11, updated_at = $12, version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(fields.status.as_str())
        .bind(fields.priority.rank())
        .bind(fields.ai_generated)
        .bind(Value::Object(fields.validation_criteria.clone()))
        .bind(Value::Object(fields.metadata.clone()))
        .bind(fields.due_at)
        .bind(stamps.0)
        .bind(stamps.1)
        .bind(now)
        .fetch_one(connection)
        .await?;
    goal(&row)
}

/// Counts the goal's tasks again (the goal's row is locked by the caller) and stores them: the
/// progress they give is what the goal reads from now on.
pub async fn recount(
    connection: &mut PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Goal, Error> {
    let sql = format!(
        "UPDATE goals g SET task_count = c.total, done_task_count = c.done, updated_at = $2,
             version = version + 1
         FROM (SELECT count(*)::int AS total,
                      (count(*) FILTER (WHERE status = 'done'))::int AS done
               FROM tasks WHERE goal_id = $1) c
         WHERE g.id = $1 RETURNING {}",
        COLUMNS
            .split(',')
            .map(|c| format!("g.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(now)
        .fetch_one(connection)
        .await?;
    goal(&row)
}

pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<Goal>, Error> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM goals WHERE id = $1 {lock}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(goal).transpose()
}

/// Which goals a list wants.
#[derive(Debug, Clone, Default)]
pub struct GoalFilter {
    pub user_id: Uuid,
    pub course_id: Option<Uuid>,
    pub status: Option<GoalStatus>,
}

/// Where a page starts: after this goal, in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalCursor {
    /// By creation time, oldest first.
    Created(DateTime<Utc>, Uuid),
    /// By priority, highest first, then oldest first.
    Priority(i16, DateTime<Utc>, Uuid),
}

/// A page of goals in the order `by_priority` names, after `after`.
pub async fn list(
    executor: impl sqlx::PgExecutor<'_>,
    filter: &GoalFilter,
    by_priority: bool,
    after: Option<GoalCursor>,
    limit: i64,
) -> Result<Vec<Goal>, Error> {
    let (order, seek) = if by_priority {
        (
            "priority DESC, created_at, id",
            "($4::smallint IS NULL OR priority < $4
              OR (priority = $4 AND (created_at, id) > ($5, $6)))",
        )
    } else {
        (
            "created_at, id",
            "($5::timestamptz IS NULL OR (created_at, id) > ($5, $6))",
        )
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM goals
         WHERE user_id = $1 AND ($2::uuid IS NULL OR course_id = $2)
           AND ($3::text IS NULL OR status = $3) AND {seek}
         ORDER BY {order} LIMIT $7"
    );
    let (rank, time, id) = match after {
        None => (None, None, None),
        Some(GoalCursor::Created(time, id)) => (None, Some(time), Some(id)),
        Some(GoalCursor::Priority(rank, time, id)) => (Some(rank), Some(time), Some(id)),
    };
    let rows = sqlx::query(&sql)
        .bind(filter.user_id)
        .bind(filter.course_id)
        .bind(filter.status.map(GoalStatus::as_str))
        .bind(rank)
        .bind(time)
        .bind(id)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(goal).collect()
}
