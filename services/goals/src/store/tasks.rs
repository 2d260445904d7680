//! The `tasks` table.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{object, unreadable};
use crate::domain::task::{Move, TaskFields};
use crate::domain::{Task, TaskStatus, TaskType};

const COLUMNS: &str = "id, goal_id, user_id, title, description, task_type, status, priority,
    estimated_hours, actual_hours, validation_result, ai_feedback, metadata, created_at,
    updated_at, started_at, completed_at, version";

fn task(row: &PgRow) -> Result<Task, Error> {
    let task_type: String = row.try_get("task_type")?;
    let status: String = row.try_get("status")?;
    let hours = |column: &str| -> Result<Option<i64>, Error> {
        Ok(row.try_get::<Option<i32>, _>(column)?.map(i64::from))
    };
    Ok(Task {
        id: row.try_get("id")?,
        goal_id: row.try_get("goal_id")?,
        user_id: row.try_get("user_id")?,
        fields: TaskFields {
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            task_type: TaskType::parse(&task_type)
                .ok_or_else(|| unreadable("tasks.task_type", &task_type))?,
            status: TaskStatus::parse(&status)
                .ok_or_else(|| unreadable("tasks.status", &status))?,
            priority: row.try_get("priority")?,
            estimated_hours: hours("estimated_hours")?,
            actual_hours: hours("actual_hours")?,
            validation_result: object(row, "validation_result")?,
            ai_feedback: row.try_get("ai_feedback")?,
            metadata: object(row, "metadata")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        version: row.try_get("version")?,
    })
}

/// Hours in hundredths fit an `integer`: the domain caps them at 1,000,000.
fn hours(value: Option<i64>) -> Option<i32> {
    value.map(|h| i32::try_from(h).unwrap_or(i32::MAX))
}

pub async fn insert(
    connection: &mut PgConnection,
    id: Uuid,
    goal_id: Uuid,
    user_id: Uuid,
    fields: &TaskFields,
    now: DateTime<Utc>,
) -> Result<Task, Error> {
    let sql = format!(
        "INSERT INTO tasks (id, goal_id, user_id, title, description, task_type, status, priority,
                            estimated_hours, metadata, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(goal_id)
        .bind(user_id)
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(fields.task_type.as_str())
        .bind(fields.status.as_str())
        .bind(fields.priority)
        .bind(hours(fields.estimated_hours))
        .bind(Value::Object(fields.metadata.clone()))
        .bind(now)
        .fetch_one(connection)
        .await?;
    task(&row)
}

pub async fn update(
    connection: &mut PgConnection,
    id: Uuid,
    fields: &TaskFields,
    moved: Move,
    now: DateTime<Utc>,
) -> Result<Task, Error> {
    let sql = format!(
        "UPDATE tasks SET title = $2, description = $3, task_type = $4, status = $5,
             priority = $6, estimated_hours = $7, actual_hours = $8, validation_result = $9,
             ai_feedback = $10, metadata = $11, started_at = $12, completed_at = $13,
             updated_at = $14, version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(fields.task_type.as_str())
        .bind(fields.status.as_str())
        .bind(fields.priority)
        .bind(hours(fields.estimated_hours))
        .bind(hours(fields.actual_hours))
        .bind(Value::Object(fields.validation_result.clone()))
        .bind(&fields.ai_feedback)
        .bind(Value::Object(fields.metadata.clone()))
        .bind(moved.started_at)
        .bind(moved.completed_at)
        .bind(now)
        .fetch_one(connection)
        .await?;
    task(&row)
}

pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<Task>, Error> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1 {lock}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(task).transpose()
}

/// The goal a task belongs to, without locking anything (to lock the goal first).
pub async fn goal_of(executor: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Uuid>, Error> {
    Ok(
        sqlx::query_scalar("SELECT goal_id FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(executor)
            .await?,
    )
}

/// Where a page of a goal's tasks starts: after this task (priority, creation, id).
pub type TaskCursor = (i32, DateTime<Utc>, Uuid);

pub async fn of_goal(
    executor: impl sqlx::PgExecutor<'_>,
    goal_id: Uuid,
    status: Option<TaskStatus>,
    after: Option<TaskCursor>,
    limit: i64,
) -> Result<Vec<Task>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE goal_id = $1 AND ($2::text IS NULL OR status = $2)
           AND ($3::integer IS NULL OR (priority, created_at, id) > ($3, $4, $5))
         ORDER BY priority, created_at, id LIMIT $6"
    );
    let rows = sqlx::query(&sql)
        .bind(goal_id)
        .bind(status.map(TaskStatus::as_str))
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(after.map(|a| a.2))
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(task).collect()
}
