//! Every SQL statement of the conversations context, one function per query, returning domain
//! types. Connections have `search_path` set to `conversations`. Time is the database's
//! (`now()`, the transaction's start), the one clock every lease and expiry is judged by.

pub mod audit;
pub mod buffers;
pub mod caches;
pub mod cleanup;
pub mod contacts;
pub mod leases;
pub mod legacy;

use phoenix_runtime::Error;

use crate::domain::Phone;
use crate::error;

/// The unique constraint a statement broke, if that is what failed.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<String> {
    violated(error, "23505")
}

fn violated(error: &sqlx::Error, code: &str) -> Option<String> {
    error
        .as_database_error()
        .filter(|e| e.code().as_deref() == Some(code))
        .and_then(|e| e.constraint().map(str::to_owned))
}

/// A statement's error, with a write for a contact that does not exist (a foreign key to
/// `contacts`) as NOT_FOUND `CONTACT_NOT_FOUND`.
pub(crate) fn for_contact(phone: &Phone) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| {
        if violated(&e, "23503").is_some() {
            error::contact_not_found(phone).into()
        } else {
            e.into()
        }
    }
}

/// A column that does not read back as its domain type: the schema's CHECKs make this
/// impossible, so it is a broken invariant, not the caller's error.
pub(crate) fn unreadable(column: &str, value: &str) -> Error {
    Error::invariant(
        "CONVERSATIONS_ROW_UNREADABLE",
        format!("column {column} holds {value:?}, which no rule writes"),
    )
}

/// A `chrono::Duration` as the microseconds PostgreSQL intervals are made of (`$n * interval
/// '1 microsecond'`).
pub(crate) fn micros(duration: chrono::Duration) -> i64 {
    duration.num_microseconds().unwrap_or(i64::MAX)
}
