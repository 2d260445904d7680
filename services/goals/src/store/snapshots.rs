//! The `code_snapshots` table.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{object, unreadable};
use crate::domain::{CodeSnapshot, NewSnapshot};

const COLUMNS: &str = "id, task_id, user_id, file_path, language, content, content_sha256,
    validation_passed, validation_score, validation_feedback, issues_found, metadata, created_at";

fn snapshot(row: &PgRow) -> Result<CodeSnapshot, Error> {
    let issues = match row.try_get::<Value, _>("issues_found")? {
        Value::Array(issues) => issues,
        other => {
            return Err(unreadable(
                "code_snapshots.issues_found",
                &other.to_string(),
            ));
        }
    };
    Ok(CodeSnapshot {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        user_id: row.try_get("user_id")?,
        snapshot: NewSnapshot {
            file_path: row.try_get("file_path")?,
            language: row.try_get("language")?,
            content: row.try_get("content")?,
            content_sha256: row.try_get("content_sha256")?,
            validation_passed: row.try_get("validation_passed")?,
            validation_score: row
                .try_get::<Option<i32>, _>("validation_score")?
                .map(i64::from),
            validation_feedback: row.try_get("validation_feedback")?,
            issues_found: issues,
            metadata: object(row, "metadata")?,
        },
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(
    connection: &mut PgConnection,
    id: Uuid,
    task_id: Uuid,
    user_id: Uuid,
    s: &NewSnapshot,
    now: DateTime<Utc>,
) -> Result<CodeSnapshot, Error> {
    let sql = format!(
        "INSERT INTO code_snapshots (id, task_id, user_id, file_path, language, content,
             content_sha256, validation_passed, validation_score, validation_feedback,
             issues_found, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(task_id)
        .bind(user_id)
        .bind(&s.file_path)
        .bind(&s.language)
        .bind(&s.content)
        .bind(&s.content_sha256)
        .bind(s.validation_passed)
        // At most 10,000 (the domain's cap).
        .bind(
            s.validation_score
                .map(|x| i32::try_from(x).unwrap_or(i32::MAX)),
        )
        .bind(&s.validation_feedback)
        .bind(Value::Array(s.issues_found.clone()))
        .bind(Value::Object(s.metadata.clone()))
        .bind(now)
        .fetch_one(connection)
        .await?;
    snapshot(&row)
}

/// Where a page of snapshots starts: after this one, newest first.
pub type SnapshotCursor = (DateTime<Utc>, Uuid);

pub async fn of_task(
    executor: impl sqlx::PgExecutor<'_>,
    task_id: Uuid,
    file_path: Option<&str>,
    after: Option<SnapshotCursor>,
    limit: i64,
) -> Result<Vec<CodeSnapshot>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM code_snapshots
         WHERE task_id = $1 AND ($2::text IS NULL OR file_path = $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(task_id)
        .bind(file_path)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(snapshot).collect()
}

/// The newest snapshot of each file of the task, by path.
pub async fn latest_per_file(
    executor: impl sqlx::PgExecutor<'_>,
    task_id: Uuid,
) -> Result<Vec<CodeSnapshot>, Error> {
    let sql = format!(
        "SELECT DISTINCT ON (file_path) {COLUMNS} FROM code_snapshots WHERE task_id = $1
         ORDER BY file_path, created_at DESC, id DESC"
    );
    let rows = sqlx::query(&sql).bind(task_id).fetch_all(executor).await?;
    rows.iter().map(snapshot).collect()
}
