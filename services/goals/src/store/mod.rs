//! Every SQL statement of the goals context, one function per query, returning domain types.
//! Connections have `search_path` set to `goals, public` (pgvector's type lives in public).

pub mod embeddings;
pub mod exports;
pub mod goals;
pub mod snapshots;
pub mod tasks;

use phoenix_runtime::Error;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A column that does not read back as its domain type: the schema's CHECKs make this
/// impossible, so it is a broken invariant, not the caller's error.
pub(crate) fn unreadable(column: &str, value: &str) -> Error {
    Error::invariant(
        "GOALS_ROW_UNREADABLE",
        format!("column {column} holds {value:?}, which no rule writes"),
    )
}

/// A jsonb column that holds an object (its CHECK says so).
pub(crate) fn object(row: &PgRow, column: &str) -> Result<Map<String, Value>, Error> {
    match row.try_get::<Value, _>(column)? {
        Value::Object(object) => Ok(object),
        other => Err(unreadable(column, &other.to_string())),
    }
}
