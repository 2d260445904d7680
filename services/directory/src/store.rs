//! Every SQL statement of the directory. Connections have `search_path` set to `directory`.

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{NewUser, User};
use crate::error::DirectoryError;

type UserRow = (Uuid, String, String, String, chrono::DateTime<chrono::Utc>);

fn user(row: UserRow) -> User {
    User {
        id: row.0,
        email: row.1,
        display_name: row.2,
        time_zone: row.3,
        created_at: row.4,
    }
}

/// PostgreSQL ships the IANA time zone database, so it is the authority on zone names.
pub async fn is_time_zone(pool: &PgPool, name: &str) -> Result<bool, DirectoryError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(name)
            .fetch_one(pool)
            .await?,
    )
}

pub async fn insert_user(pool: &PgPool, id: Uuid, new: &NewUser) -> Result<User, DirectoryError> {
    let row: Option<UserRow> = sqlx::query_as(
        "INSERT INTO users (id, email, display_name, time_zone) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING
         RETURNING id, email, display_name, time_zone, created_at",
    )
    .bind(id)
    .bind(&new.email)
    .bind(&new.display_name)
    .bind(&new.time_zone)
    .fetch_optional(pool)
    .await?;
    row.map(user)
        .ok_or_else(|| DirectoryError::EmailTaken(new.email.clone()))
}

pub async fn get_user(pool: &PgPool, id: Uuid) -> Result<User, DirectoryError> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT id, email, display_name, time_zone, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(user).ok_or(DirectoryError::UserNotFound(id))
}
