//! Every SQL statement of the narrative, one function per query, returning domain types.
//! Connections have `search_path` set to `narrative`.

pub mod catalog;
pub mod experiences;
pub mod progress;
pub mod reactions;

use phoenix_runtime::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A column that does not read back as its domain type: the schema's CHECKs and the writers
/// make this impossible, so it is a broken invariant, not the caller's error.
pub(crate) fn unreadable(column: &str, value: &str) -> Error {
    Error::invariant(
        "NARRATIVE_ROW_UNREADABLE",
        format!("column {column} holds {value:?}, which no rule writes"),
    )
}

/// A domain value as the jsonb column that keeps it.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value)
        .map_err(|e| Error::internal(format_args!("a value does not encode as JSON: {e}")))
}

/// A jsonb column read back as its domain value.
pub(crate) fn from_json<T: DeserializeOwned>(
    column: &str,
    value: serde_json::Value,
) -> Result<T, Error> {
    serde_json::from_value(value.clone()).map_err(|_| unreadable(column, &value.to_string()))
}

/// The constraint a statement broke, if a unique or foreign key is what failed.
pub(crate) fn broken_constraint(error: &sqlx::Error) -> Option<(String, String)> {
    let database = error.as_database_error()?;
    let code = database.code()?.into_owned();
    let constraint = database.constraint()?.to_owned();
    Some((code, constraint))
}
