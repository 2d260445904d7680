//! The `embedding_models` and `embeddings` tables, and the per-model HNSW indexes.
//!
//! Models of several dimensions share one `vector` column; each model gets its own index on
//! `embedding::vector(<dimensions>)` limited to its rows (`WHERE model_id = <id>`), pgvector's
//! way to index mixed dimensions. A search must repeat that expression and predicate
//! literally for PostgreSQL to use the index, so the model's id and dimension are written into
//! the statement (both are integers this table gave), never bound.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::object;
use crate::domain::embedding::{Model, NewEmbedding, Search, Similar};

/// HNSW build parameters (pgvector's defaults, and the seed's).
pub const HNSW_M: i32 = 16;
pub const HNSW_EF_CONSTRUCTION: i32 = 64;

/// What the installed pgvector offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorSupport {
    pub version: String,
    /// Iterative index scans (`hnsw.iterative_scan`, pgvector 0.8 and later): a filtered
    /// search keeps scanning the index until k rows pass the filter.
    pub iterative_scan: bool,
}

/// The installed pgvector's version, and whether it has iterative scans.
pub async fn support(pool: &PgPool) -> Result<VectorSupport, Error> {
    let version: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(pool)
            .await?;
    let version = version.ok_or_else(|| {
        Error::invariant(
            "PGVECTOR_MISSING",
            "the vector extension is not installed in the goals database",
        )
    })?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    Ok(VectorSupport {
        iterative_scan: (major, minor) >= (0, 8),
        version,
    })
}

/// A vector as pgvector's text form, `[1,2.5,-3]` (Rust prints the shortest text that reads
/// back as the same `f32`).
pub fn vector_text(vector: &[f32]) -> String {
    let mut text = String::with_capacity(vector.len() * 10 + 2);
    text.push('[');
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{x}");
    }
    text.push(']');
    text
}

fn model(row: &PgRow) -> Result<Model, Error> {
    Ok(Model {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        dimensions: row.try_get("dimensions")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The name of a model's HNSW index.
pub fn index_name(model: &Model) -> String {
    format!("embeddings_hnsw_{}", model.id)
}

/// Registers a model, or answers the one of that name (`false`); a new one gets its index in
/// the same transaction.
pub async fn register_model(
    connection: &mut PgConnection,
    name: &str,
    dimensions: i32,
    now: DateTime<Utc>,
) -> Result<(Model, bool), Error> {
    let inserted = sqlx::query(
        "INSERT INTO embedding_models (name, dimensions, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING RETURNING id, name, dimensions, created_at",
    )
    .bind(name)
    .bind(dimensions)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    match inserted {
        Some(row) => {
            let model = model(&row)?;
            create_index(connection, &model).await?;
            Ok((model, true))
        }
        None => {
            let row = sqlx::query(
                "SELECT id, name, dimensions, created_at FROM embedding_models WHERE name = $1",
            )
            .bind(name)
            .fetch_one(&mut *connection)
            .await?;
            Ok((model(&row)?, false))
        }
    }
}

/// Builds the model's HNSW index (cosine distance) over its rows.
pub async fn create_index(connection: &mut PgConnection, model: &Model) -> Result<(), Error> {
    let sql = format!(
        "CREATE INDEX IF NOT EXISTS {} ON embeddings
             USING hnsw ((embedding::vector({})) vector_cosine_ops)
             WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})
             WHERE model_id = {}",
        index_name(model),
        model.dimensions,
        model.id
    );
    sqlx::query(&sql)
        .persistent(false)
        .execute(connection)
        .await?;
    Ok(())
}

/// Drops the model's index (to load many rows, then build it once: the benchmark).
pub async fn drop_index(connection: &mut PgConnection, model: &Model) -> Result<(), Error> {
    sqlx::query(&format!("DROP INDEX IF EXISTS {}", index_name(model)))
        .persistent(false)
        .execute(connection)
        .await?;
    Ok(())
}

pub async fn model_named(
    executor: impl sqlx::PgExecutor<'_>,
    name: &str,
) -> Result<Option<Model>, Error> {
    let row = sqlx::query(
        "SELECT id, name, dimensions, created_at FROM embedding_models WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(model).transpose()
}

pub async fn models(executor: impl sqlx::PgExecutor<'_>) -> Result<Vec<Model>, Error> {
    let rows =
        sqlx::query("SELECT id, name, dimensions, created_at FROM embedding_models ORDER BY name")
            .fetch_all(executor)
            .await?;
    rows.iter().map(model).collect()
}

/// Writes the embeddings of one model (each key at most once), replacing those with the same
/// entity and chunk; answers each one's id and whether it was new, in the order given.
///
/// Rows are written in key order, whatever the batch's order: two batches sharing keys then
/// lock them in the same order and one waits for the other instead of deadlocking.
pub async fn upsert(
    connection: &mut PgConnection,
    model: &Model,
    rows: &[NewEmbedding],
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, bool)>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let found = sqlx::query(
        "INSERT INTO embeddings (id, model_id, entity_type, entity_id, chunk, user_id, content,
                                 embedding, metadata, created_at, updated_at)
         SELECT e.id, $1, e.entity_type, e.entity_id, e.chunk, e.user_id, e.content,
                e.embedding::vector, e.metadata, $10, $10
         FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::int[], $6::uuid[], $7::text[],
                     $8::text[], $9::jsonb[])
              WITH ORDINALITY AS e(id, entity_type, entity_id, chunk, user_id, content,
                                   embedding, metadata, n)
         ORDER BY e.entity_type, e.entity_id, e.chunk
         ON CONFLICT (model_id, entity_type, entity_id, chunk) DO UPDATE
             SET user_id = EXCLUDED.user_id, content = EXCLUDED.content,
                 embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata,
                 updated_at = EXCLUDED.updated_at
         RETURNING id, entity_type, entity_id, chunk, (xmax = 0) AS created",
    )
    .bind(model.id)
    .bind(&ids)
    .bind(
        rows.iter()
            .map(|r| r.entity_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.entity_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.chunk).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.content.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| vector_text(&r.vector))
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| Value::Object(r.metadata.clone()))
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .fetch_all(connection)
    .await?;
    let mut by_key = std::collections::HashMap::new();
    for row in &found {
        let key: (String, String, i32) = (
            row.try_get("entity_type")?,
            row.try_get("entity_id")?,
            row.try_get("chunk")?,
        );
        by_key.insert(
            key,
            (
                row.try_get::<Uuid, _>("id")?,
                row.try_get::<bool, _>("created")?,
            ),
        );
    }
    rows.iter()
        .map(|r| {
            by_key
                .get(&(r.entity_type.clone(), r.entity_id.clone(), r.chunk))
                .copied()
                .ok_or_else(|| {
                    Error::invariant("UPSERT_ROW_MISSING", "an upserted row was not returned")
                })
        })
        .collect()
}

/// Deletes an entity's embeddings (of one model when given); answers how many.
pub async fn delete_entity(
    executor: impl sqlx::PgExecutor<'_>,
    entity_type: &str,
    entity_id: &str,
    model_id: Option<i32>,
) -> Result<u64, Error> {
    let done = sqlx::query(
        "DELETE FROM embeddings WHERE entity_type = $1 AND entity_id = $2
           AND ($3::int IS NULL OR model_id = $3)",
    )
    .bind(entity_type)
    .bind(entity_id)
    .bind(model_id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// How a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Through the model's HNSW index; with filters and iterative scans, the index is read
    /// until k rows pass them.
    Index { iterative: bool },
    /// An exact scan of the rows the filters leave (through the user index): what an old
    /// pgvector does for a user's search, where post-filtering an index scan loses results.
    Exact,
}

/// A text as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The k nearest of the model's embeddings to `search.vector`, nearest first.
///
/// One round trip: the settings and the query go as one simple-protocol message, which
/// PostgreSQL runs as one implicit transaction, so `SET LOCAL` holds for the query and ends
/// with it (also when it fails). Its values are therefore literals: numbers, the vector's
/// text form (finite floats), a UUID and a quoted entity type.
pub async fn search(
    pool: &PgPool,
    model: &Model,
    search: &Search,
    plan: Plan,
) -> Result<Vec<Similar>, Error> {
    let d = model.dimensions;
    let query = literal(&vector_text(&search.vector));
    let distance = match plan {
        Plan::Index { .. } => format!("embedding::vector({d}) <=> {query}::vector({d})"),
        // Not the index's expression: PostgreSQL then cannot use the HNSW index, and reads the
        // filtered rows exactly.
        Plan::Exact => format!("embedding <=> {query}::vector"),
    };
    let mut filters = format!("model_id = {}", model.id);
    if let Some(user) = search.user_id {
        filters.push_str(&format!(" AND user_id = '{user}'"));
    }
    if let Some(entity_type) = &search.entity_type {
        filters.push_str(&format!(" AND entity_type = {}", literal(entity_type)));
    }
    let iterative = if matches!(plan, Plan::Index { iterative: true }) {
        "SET LOCAL hnsw.iterative_scan = relaxed_order;"
    } else {
        ""
    };
    let sql = format!(
        "SET LOCAL hnsw.ef_search = {}; {iterative}
         SELECT id, entity_type, entity_id, chunk, user_id, content, metadata,
                ({distance})::float8 AS distance
         FROM embeddings WHERE {filters} ORDER BY {distance} LIMIT {}",
        search.ef_search, search.k
    );
    let rows = sqlx::raw_sql(&sql).fetch_all(pool).await?;
    let mut found = rows
        .iter()
        .map(|row| {
            Ok(Similar {
                id: row.try_get("id")?,
                entity_type: row.try_get("entity_type")?,
                entity_id: row.try_get("entity_id")?,
                chunk: row.try_get("chunk")?,
                user_id: row.try_get("user_id")?,
                content: row.try_get("content")?,
                distance: row.try_get("distance")?,
                metadata: object(row, "metadata")?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // relaxed_order may hand rows slightly out of order.
    found.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(found)
}
