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

/// A file of the FILE store could not be used. The store is this service's own storage:
/// failing to use it is our fault and the caller may retry (UNAVAILABLE), never a
/// half-written board.
pub fn file_store_unavailable(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "FILE_STORE_UNAVAILABLE",
        format!("missions store {}: {detail}", path.display()),
        None,
    )
}
