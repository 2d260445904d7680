//! The `courses` table.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::unreadable;
use crate::domain::course::CourseFields;
use crate::domain::{Course, CourseStatus};

const COLUMNS: &str = "id, owner_id, title, description, status, progress, metadata, created_at,
    updated_at, completed_at, version";

fn course(row: &PgRow) -> Result<Course, Error> {
    let status: String = row.try_get("status")?;
    let metadata: serde_json::Value = row.try_get("metadata")?;
    Ok(Course {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        fields: CourseFields {
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            status: CourseStatus::parse(&status)
                .ok_or_else(|| unreadable("courses.status", &status))?,
            progress: row.try_get("progress")?,
            metadata: match metadata {
                serde_json::Value::Object(object) => object,
                other => return Err(unreadable("courses.metadata", &other.to_string())),
            },
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        completed_at: row.try_get("completed_at")?,
        version: row.try_get("version")?,
    })
}

pub async fn insert(
    connection: &mut PgConnection,
    id: Uuid,
    owner_id: Uuid,
    fields: &CourseFields,
    now: DateTime<Utc>,
) -> Result<Course, Error> {
    let sql = format!(
        "INSERT INTO courses (id, owner_id, title, description, status, progress, metadata,
                              created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(owner_id)
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(fields.status.as_str())
        .bind(fields.progress)
        .bind(serde_json::Value::Object(fields.metadata.clone()))
        .bind(now)
        .fetch_one(connection)
        .await?;
    course(&row)
}

pub async fn update(
    connection: &mut PgConnection,
    id: Uuid,
    fields: &CourseFields,
    completed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Course, Error> {
    let sql = format!(
        "UPDATE courses SET title = $2, description = $3, status = $4, progress = $5,
             metadata = $6, completed_at = $7, updated_at = $8, version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(fields.status.as_str())
        .bind(fields.progress)
        .bind(serde_json::Value::Object(fields.metadata.clone()))
        .bind(completed_at)
        .bind(now)
        .fetch_one(connection)
        .await?;
    course(&row)
}

pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<Course>, Error> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE id = $1 {lock}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(course).transpose()
}

pub async fn batch_get(
    executor: impl sqlx::PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<Course>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE id = ANY($1)");
    let rows = sqlx::query(&sql).bind(ids).fetch_all(executor).await?;
    rows.iter().map(course).collect()
}

pub async fn by_owner(
    executor: impl sqlx::PgExecutor<'_>,
    owner_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Course>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM courses WHERE owner_id = $1 AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(owner_id)
        .bind(after)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(course).collect()
}
