//! The missions service's own refusals and errors, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`], [`phoenix_runtime::Refusal`]); the runtime maps them to gRPC,
//! with ErrorInfo domain `missions.phoenix`. The rules' refusals live with the rules
//! (`domain::rules`).

use std::io;
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
// A path nobody named is the caller's to fix (INVALID_ARGUMENT), a file that is not there
// NOT_FOUND, a path that cannot be right whatever the moment (a directory, a name no file system
// takes, a file the service may not read) INVALID_ARGUMENT or FAILED_PRECONDITION naming the
// field, a file that is not what it should be FAILED_PRECONDITION; only a failure a retry may
// cure (the disk full, an I/O error), and any failure of the service's own store, UNAVAILABLE.
// Paths are shown whole when of a usual length and quoted, cut, when a request made them huge.

/// Longest path shown whole in a message, in characters.
const MAX_SHOWN_PATH_CHARS: usize = 256;

/// `path` as a message shows it.
fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.chars().count() <= MAX_SHOWN_PATH_CHARS {
        text.into_owned()
    } else {
        quote(&text)
    }
}

/// A file of the FILE store could not be read or written (I/O): the caller may retry.
pub fn file_store_unavailable(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "FILE_STORE_UNAVAILABLE",
        format!("missions store {}: {detail}", shown(path)),
        None,
    )
}

/// Reading or writing (`doing`) the file at `path` failed with `error`. `field` is the request
/// field that named the path, None for the service's own store: the caller's error when a named
/// path cannot be right, else UNAVAILABLE (see above).
pub fn file_failed(field: Option<&str>, path: &Path, doing: &str, error: &io::Error) -> Error {
    use io::ErrorKind as Kind;
    let Some(field) = field else {
        return file_store_unavailable(path, format!("cannot {doing}: {error}"));
    };
    let path_shown = shown(path);
    let refusal = match error.kind() {
        Kind::IsADirectory => Refusal::invalid(
            field,
            "PATH_IS_DIRECTORY",
            format!("{path_shown} is a directory; name a file"),
        ),
        Kind::NotADirectory | Kind::AlreadyExists => Refusal::invalid(
            field,
            "PATH_NOT_A_DIRECTORY",
            format!("a part of {path_shown} that must be a directory is a file"),
        ),
        Kind::InvalidInput | Kind::InvalidFilename => Refusal::invalid(
            field,
            "INVALID_PATH",
            format!("{path_shown} is no path the file system takes: {error}"),
        ),
        Kind::PermissionDenied => Refusal::precondition(
            "FILE_PERMISSION_DENIED",
            format!("the service may not {doing} {path_shown}"),
        )
        .at(field),
        Kind::ReadOnlyFilesystem => Refusal::precondition(
            "READ_ONLY_FILE_SYSTEM",
            format!("{path_shown} is on a read-only file system"),
        )
        .at(field),
        _ => return file_store_unavailable(path, format!("cannot {doing}: {error}")),
    };
    refusal.into()
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
        format!("missions store {}: there is no store file", shown(path)),
    )
}

/// There is no event log at `path`.
pub fn event_log_not_found(path: &Path) -> Refusal {
    Refusal::not_found(
        "EVENT_LOG_NOT_FOUND",
        format!("missions event log {}: there is no such file", shown(path)),
    )
}

/// The file at `path` is not a missions store this code reads.
pub fn invalid_store_file(path: &Path, detail: impl std::fmt::Display) -> Refusal {
    Refusal::precondition(
        "INVALID_STORE_FILE",
        format!("missions store {}: {detail}", shown(path)),
    )
}

/// The file at `path` is not an event log: not UTF-8 text.
pub fn invalid_event_log(path: &Path, detail: impl std::fmt::Display) -> Refusal {
    Refusal::precondition(
        "INVALID_EVENT_LOG",
        format!("missions event log {}: {detail}", shown(path)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_cannot_be_right_is_the_callers_and_a_passing_failure_unavailable() {
        let path = Path::new("/srv/missions/store.json");
        let cases = [
            (io::ErrorKind::IsADirectory, "PATH_IS_DIRECTORY"),
            (io::ErrorKind::NotADirectory, "PATH_NOT_A_DIRECTORY"),
            (io::ErrorKind::InvalidInput, "INVALID_PATH"),
            (io::ErrorKind::InvalidFilename, "INVALID_PATH"),
            (io::ErrorKind::PermissionDenied, "FILE_PERMISSION_DENIED"),
            (io::ErrorKind::ReadOnlyFilesystem, "READ_ONLY_FILE_SYSTEM"),
            (io::ErrorKind::StorageFull, "FILE_STORE_UNAVAILABLE"),
        ];
        for (kind, reason) in cases {
            let error = file_failed(Some("store_path"), path, "read", &io::Error::from(kind));
            assert_eq!(error.reason(), reason, "{kind:?}");
            if let Some(refusal) = error.refusal() {
                assert_eq!(refusal.field(), Some("store_path"), "{kind:?}");
            }
        }
        let codes = |kind| file_failed(Some("f"), path, "read", &io::Error::from(kind)).code();
        assert_eq!(
            codes(io::ErrorKind::IsADirectory),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            codes(io::ErrorKind::PermissionDenied),
            tonic::Code::FailedPrecondition
        );
        // EIO: the disk, not the caller.
        let eio = file_failed(Some("f"), path, "write", &io::Error::from_raw_os_error(5));
        assert_eq!(
            (eio.code(), eio.reason()),
            (tonic::Code::Unavailable, "FILE_STORE_UNAVAILABLE")
        );
        // The service's own store: nothing a caller can fix.
        let own = file_failed(
            None,
            path,
            "write",
            &io::Error::from(io::ErrorKind::IsADirectory),
        );
        assert_eq!(own.reason(), "FILE_STORE_UNAVAILABLE");
    }

    #[test]
    fn paths_are_shown_whole_unless_huge() {
        let usual = Path::new("/var/lib/phoenix/missions_v2_store.json");
        assert_eq!(shown(usual), usual.display().to_string());
        let huge = format!("/{}", "d".repeat(20_000));
        let text = shown(Path::new(&huge));
        assert!(
            text.len() < 120 && text.ends_with("(20001 characters)"),
            "{text}"
        );
    }
}
