//! `reactions`: one per user, content and reaction.

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use sqlx::PgConnection;
use uuid::Uuid;

use super::unreadable;
use crate::domain::{ContentKind, ContentRef, Reaction};

/// Registers the reaction; false when the user had registered it already (nothing written).
pub async fn insert(connection: &mut PgConnection, reaction: &Reaction) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO reactions (user_id, content_kind, content_id, reaction, besitos, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(reaction.user_id)
    .bind(reaction.content.kind.as_str())
    .bind(&reaction.content.id)
    .bind(&reaction.reaction)
    .bind(reaction.besitos)
    .bind(reaction.created_at)
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

type Row = (Uuid, String, String, String, i64, DateTime<Utc>);

fn reaction((user_id, kind, id, reaction, besitos, created_at): Row) -> Result<Reaction, Error> {
    Ok(Reaction {
        user_id,
        content: ContentRef {
            kind: ContentKind::parse(&kind)
                .ok_or_else(|| unreadable("reactions.content_kind", &kind))?,
            id,
        },
        reaction,
        besitos,
        created_at,
    })
}

pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    content: &ContentRef,
    reaction_text: &str,
) -> Result<Option<Reaction>, Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT user_id, content_kind, content_id, reaction, besitos, created_at FROM reactions
         WHERE user_id = $1 AND content_kind = $2 AND content_id = $3 AND reaction = $4",
    )
    .bind(user_id)
    .bind(content.kind.as_str())
    .bind(&content.id)
    .bind(reaction_text)
    .fetch_optional(executor)
    .await?;
    row.map(reaction).transpose()
}

/// Removes the reaction; answers the besitos it had paid, `None` when there was none.
pub async fn delete(
    connection: &mut PgConnection,
    user_id: Uuid,
    content: &ContentRef,
    reaction_text: &str,
) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar(
        "DELETE FROM reactions
         WHERE user_id = $1 AND content_kind = $2 AND content_id = $3 AND reaction = $4
         RETURNING besitos",
    )
    .bind(user_id)
    .bind(content.kind.as_str())
    .bind(&content.id)
    .bind(reaction_text)
    .fetch_optional(connection)
    .await?)
}

pub async fn of_user(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<Reaction>, Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT user_id, content_kind, content_id, reaction, besitos, created_at FROM reactions
         WHERE user_id = $1 ORDER BY created_at, content_kind, content_id, reaction",
    )
    .bind(user_id)
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(reaction).collect()
}
