//! Every SQL statement of the directory. Connections have `search_path` set to `directory`.

use phoenix_runtime::Error;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{NewUser, User};

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

/// Inserts the user unless the email is taken (`None`).
pub async fn insert_user(pool: &PgPool, id: Uuid, new: &NewUser) -> Result<Option<User>, Error> {
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
    Ok(row.map(user))
}

pub async fn get_user(pool: &PgPool, id: Uuid) -> Result<Option<User>, Error> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT id, email, display_name, time_zone, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(user))
}
