//! The missions service's own refusals and errors, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`], [`phoenix_runtime::Refusal`]); the runtime maps them to gRPC,
//! with ErrorInfo domain `missions.phoenix`. The rules' refusals live with the rules
//! (`domain::rules`).

use std::path::Path;

use phoenix_runtime::{Error, Refusal, quote};
use uuid::Uuid;

use crate::domain::board::BoardKey;

/// The user has no board in the season.
pub fn board_not_found(key: &BoardKey) -> Refusal {
    Refusal::not_found(
        "BOARD_NOT_FOUND",
        format!(
            "user {} has no board in season {}; open it with CreateBoard",
            key.user_id,
            quote(&key.season_id)
        ),
    )
    .with("user_id", key.user_id)
    .with("season_id", &key.season_id)
}

/// The user has no board in any season.
pub fn user_has_no_board(user_id: Uuid) -> Refusal {
    Refusal::not_found("USER_NOT_FOUND", format!("user {user_id} has no board"))
        .with("user_id", user_id)
}

// The FILE store and the files the migration tooling reads: what is wrong decides the code.
// Paths are shown whole (they are the operator's configuration or an admin tool's argument, and
// the runtime clips every message it sends); a path nobody named is the caller's to fix
// (INVALID_ARGUMENT), a file that is not there NOT_FOUND, a file that is not what it should be
// FAILED_PRECONDITION; only a file that cannot be read or written now is UNAVAILABLE, the one
// case a retry may cure.

/// A file of the FILE store could not be read or written (I/O): the caller may retry.
pub fn file_store_unavailable(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "FILE_STORE_UNAVAILABLE",
        format!("missions store {}: {detail}", path.display()),
        None,
    )
}

/// No path was given for `field` and none is configured.
pub fn path_required(field: &str) -> Refusal {
    Refusal::invalid(
        field,
        "REQUIRED",
        "is required: no path was given and none is configured",
    )
}

/// There is no store file at `path`.
pub fn store_file_not_found(path: &Path) -> Refusal {
    Refusal::not_found(
        "STORE_FILE_NOT_FOUND",
        format!("missions store {}: there is no store file", path.display()),
    )
}

/// There is no event log at `path`.
pub fn event_log_not_found(path: &Path) -> Refusal {
    Refusal::not_found(
        "EVENT_LOG_NOT_FOUND",
        format!(
            "missions event log {}: there is no such file",
            path.display()
        ),
    )
}

/// The file at `path` is not a missions store this code reads.
pub fn invalid_store_file(path: &Path, detail: impl std::fmt::Display) -> Refusal {
    Refusal::precondition(
        "INVALID_STORE_FILE",
        format!("missions store {}: {detail}", path.display()),
    )
}
