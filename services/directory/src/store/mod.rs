//! Every SQL statement of the directory, one function per query, returning domain types.
//! Connections have `search_path` set to `directory`.

pub mod channels;
pub mod courses;
pub mod users;
pub mod vip;

use phoenix_runtime::Error;

/// A column that does not read back as its domain type: the schema's CHECKs make this
/// impossible, so it is a broken invariant, not the caller's error.
pub(crate) fn unreadable(column: &str, value: &str) -> Error {
    Error::invariant(
        "DIRECTORY_ROW_UNREADABLE",
        format!("column {column} holds {value:?}, which no rule writes"),
    )
}

/// The unique constraint a statement broke, if that is what failed.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .filter(|e| e.code().as_deref() == Some("23505"))
        .and_then(|e| e.constraint().map(str::to_owned))
}
