//! The FILE repository: the legacy JSON store, every board of every user in one file, kept in
//! memory and rewritten whole on every save — what the TypeScript service did, kept so the
//! migration can run FILE and SQL side by side (DUAL) and fall back to FILE (rollback).
//!
//! # The store file (`missions_v2_store.json`)
//!
//! One UTF-8 JSON object, the serde form of [`Store`] (camelCase field names):
//!
//! ```json
//! { "version": 1, "boards": [ <Board>, ... ] }
//! ```
//!
//! - `version`: the format version; only 1 exists.
//! - `boards`: at most one board per (`userId`, `seasonId`), in no particular order. A board is
//!   the serde form of [`Board`]: `boardId`, `userId` (UUID), `seasonId`, `timeZone` (an IANA
//!   name such as `Europe/Madrid`), `generatedAt`/`updatedAt` (RFC 3339 UTC instants), `slots`
//!   (exactly main, hunt, skill in that order; `state` is one of idle, active, succeeded,
//!   failed, cooldown, claimed), `runs` (oldest first, each with `progress`, `heartbeats` — at
//!   most one per local `date` — and `days`, the closed local days in date order with `outcome`
//!   kept, protected or petal_lost), `boss` (or null), `effects`, `claims` (one per run,
//!   `source` mission or boss), `communications` (`kind` daily, weekly or system) and
//!   `lastWeeklySummary` (a local date or null). Dates are `YYYY-MM-DD` in the board's time
//!   zone; optional values are `null`, never left out — except two terms a run keeps from its
//!   start, its `startDate` (its first local date) and its `reward` (what its claim grants),
//!   which runs started before they were kept do not have: they are left out, and such a run
//!   starts on `selectedAt`'s date in the board's zone and is granted the catalog's reward.
//!
//! Fields a board or a slot holds beyond these (a legacy writer's `legacyFlags`, `legacyColor`)
//! are kept as they are ([`Board::legacy_fields`]) and written back; the importer refuses
//! undefined fields deeper down (`domain::legacy::check_board_text`).
//!
//! `testdata/missions_v2_store.json` is a complete example.
//!
//! # Durability
//!
//! Every save writes the whole store to a temporary file next to the store, flushes it to disk,
//! renames it over the store and flushes the directory: a crash leaves either the old file or
//! the new one, never a torn one. Memory changes only after the file is written, so a failed
//! save changes nothing anywhere. One lock guards the whole store, so updates are serialized
//! (the legacy design: one process, one file).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use super::{DueBoards, Saved};
use crate::domain::board::{Board, BoardKey, Store};
use crate::domain::rules;
use crate::error;

pub struct FileBoards {
    path: PathBuf,
    /// Held from reading a board until its save is on disk, so updates are serialized and memory
    /// never holds a board the file does not.
    store: Arc<Mutex<Store>>,
}

impl FileBoards {
    /// Reads the store at `path`. A missing file is an empty store (created on the first save);
    /// a file that is not a valid store is an error naming the problem, and nothing is written.
    /// Reads the store now (synchronously: it runs once, when the service starts, before any
    /// request), so a malformed store stops the start instead of failing the first request.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::open_from(path.into(), None)
    }

    /// Reads the store at `path`, which the request field `field` named (a migration call's):
    /// a path that cannot be right is the caller's error naming the field (`error::file_failed`).
    pub fn open_named(path: impl Into<PathBuf>, field: &str) -> Result<Self, Error> {
        Self::open_from(path.into(), Some(field))
    }

    fn open_from(path: PathBuf, field: Option<&str>) -> Result<Self, Error> {
        let store = read_store(&path, field)?;
        Ok(Self {
            path,
            store: Arc::new(Mutex::new(store.unwrap_or_else(empty_store))),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn load(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        let store = self.store.lock().await;
        Ok(find(&store, key).cloned())
    }

    /// The user's boards, ordered by season.
    pub async fn keys_of_user(&self, user_id: Uuid) -> Result<Vec<BoardKey>, Error> {
        Ok(self.keys_where(|board| board.user_id == user_id).await)
    }

    /// Every board of `season` (every board when None), ordered by user.
    pub async fn keys(&self, season: Option<&str>) -> Result<Vec<BoardKey>, Error> {
        Ok(self
            .keys_where(|board| season.is_none_or(|season| board.season_id == season))
            .await)
    }

    /// Runs `change` on the board (None when the user has none yet) and saves what it returns;
    /// see the module `store`.
    pub async fn update<T, F>(&self, key: &BoardKey, change: F) -> Result<T, Error>
    where
        F: FnOnce(Option<Board>) -> Result<Saved<T>, Error> + Send,
    {
        let store = self.store.clone().lock_owned().await;
        match change(find(&store, key).cloned())? {
            Saved::Keep(answer) => Ok(answer),
            Saved::Write(board, answer) => {
                self.save(store, vec![board]).await?;
                Ok(answer)
            }
        }
    }

    /// Changes up to `limit` boards whose next tick is due at `now` (`rules::next_due`, leaving
    /// out `skip`), saving those `change` answers `Some` for in one write. The file takes every
    /// board or none, so no board fails on its own.
    pub async fn update_due<T, F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        skip: &[BoardKey],
        mut change: F,
    ) -> Result<DueBoards<T>, Error>
    where
        F: FnMut(&mut Board) -> Option<T> + Send,
    {
        let store = self.store.clone().lock_owned().await;
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut changed = Vec::new();
        let mut saved = Vec::new();
        for board in store
            .boards
            .iter()
            .filter(|board| rules::next_due(board) <= now)
            .filter(|board| !skip.contains(&board.key()))
            .take(limit)
        {
            let mut board = board.clone();
            if let Some(answer) = change(&mut board) {
                changed.push(board);
                saved.push(answer);
            }
        }
        if !changed.is_empty() {
            self.save(store, changed).await?;
        }
        Ok(DueBoards {
            saved,
            refused: Vec::new(),
        })
    }

    /// Overwrites the board, returning the one it replaced.
    pub async fn put(&self, board: &Board) -> Result<Option<Board>, Error> {
        let store = self.store.clone().lock_owned().await;
        let previous = find(&store, &board.key()).cloned();
        self.save(store, vec![board.clone()]).await?;
        Ok(previous)
    }

    /// Writes the board unless its user already has a board in its season.
    pub async fn insert_if_absent(&self, board: &Board) -> Result<bool, Error> {
        let store = self.store.clone().lock_owned().await;
        if find(&store, &board.key()).is_some() {
            return Ok(false);
        }
        self.save(store, vec![board.clone()]).await?;
        Ok(true)
    }

    /// Every board, as the file holds them.
    pub async fn snapshot(&self) -> Store {
        self.store.lock().await.clone()
    }

    /// Replaces every board with `store`'s (a restore); nothing changes when it cannot be
    /// written or holds two boards for one user and season.
    pub async fn replace_all(&self, store: Store) -> Result<(), Error> {
        check_store(&store).map_err(|detail| error::invalid_store_file(&self.path, detail))?;
        let mut current = self.store.clone().lock_owned().await;
        let path = self.path.clone();
        run_blocking(&self.path, move || {
            write_store(&path, &store, None)?;
            *current = store;
            Ok(())
        })
        .await?
    }

    async fn keys_where(&self, keep: impl Fn(&Board) -> bool) -> Vec<BoardKey> {
        let mut keys: Vec<BoardKey> = self
            .store
            .lock()
            .await
            .boards
            .iter()
            .filter(|board| keep(board))
            .map(Board::key)
            .collect();
        keys.sort();
        keys
    }

    /// Puts `boards` in the store and writes the file, or on failure leaves both as they were.
    async fn save(
        &self,
        mut store: OwnedMutexGuard<Store>,
        boards: Vec<Board>,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        // The blocking task owns the lock: a caller that goes away mid-write (a cancelled RPC)
        // cannot leave memory and file disagreeing, the task finishes both or neither.
        run_blocking(&self.path, move || {
            let undo = apply(&mut store, boards);
            write_store(&path, &store, None).inspect_err(|_| undo.revert(&mut store))
        })
        .await?
    }
}

fn empty_store() -> Store {
    Store {
        version: Store::VERSION,
        boards: Vec::new(),
    }
}

fn find<'a>(store: &'a Store, key: &BoardKey) -> Option<&'a Board> {
    store
        .boards
        .iter()
        .find(|board| board.user_id == key.user_id && board.season_id == key.season_id)
}

/// How to take a store back to before [`apply`].
struct Undo {
    /// Boards replaced, with their index.
    replaced: Vec<(usize, Board)>,
    /// The number of boards before; later ones were added.
    len: usize,
}

impl Undo {
    fn revert(self, store: &mut Store) {
        for (index, board) in self.replaced.into_iter().rev() {
            store.boards[index] = board;
        }
        store.boards.truncate(self.len);
    }
}

fn apply(store: &mut Store, boards: Vec<Board>) -> Undo {
    let mut undo = Undo {
        replaced: Vec::new(),
        len: store.boards.len(),
    };
    for board in boards {
        let key = board.key();
        match store
            .boards
            .iter()
            .position(|b| b.user_id == key.user_id && b.season_id == key.season_id)
        {
            Some(index) => undo
                .replaced
                .push((index, std::mem::replace(&mut store.boards[index], board))),
            None => store.boards.push(board),
        }
    }
    undo
}

/// Runs blocking file work off the async threads.
pub(crate) async fn run_blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        Error::internal(format_args!(
            "missions store {}: the file task failed: {error}",
            path.display()
        ))
    })
}

/// The store at `path`, None when there is no file; `field` names the request field that named
/// the path (None: the service's own store), for `error::file_failed`.
fn read_store(path: &Path, field: Option<&str>) -> Result<Option<Store>, Error> {
    let Some(bytes) =
        read_bytes(path).map_err(|error| error::file_failed(field, path, "read", &error))?
    else {
        return Ok(None);
    };
    let store: Store = serde_json::from_slice(&bytes).map_err(|error| {
        error::invalid_store_file(path, format!("not a valid missions store: {error}"))
    })?;
    check_store(&store).map_err(|detail| error::invalid_store_file(path, detail))?;
    Ok(Some(store))
}

/// The file's bytes, None when there is no file.
pub(crate) fn read_bytes(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// What serde cannot check: the version, and one board per user and season.
fn check_store(store: &Store) -> Result<(), String> {
    check_version(store.version)?;
    let mut seen = std::collections::HashMap::new();
    for (index, board) in store.boards.iter().enumerate() {
        if let Some(first) = seen.insert(board.key(), index) {
            return Err(format!(
                "boards[{first}] and boards[{index}] are both the board of user {} in season {}",
                board.user_id, board.season_id
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_version(version: u32) -> Result<(), String> {
    if version == Store::VERSION {
        Ok(())
    } else {
        Err(format!(
            "format version {version}; this code reads version {}",
            Store::VERSION
        ))
    }
}

/// Writes `store` to `path` atomically (see the module doc); `field` names the request field
/// that named the path (None: the service's own store), for `error::file_failed`.
pub(crate) fn write_store(path: &Path, store: &Store, field: Option<&str>) -> Result<(), Error> {
    // Pretty, as the legacy service wrote it: people read and diff this file during a migration.
    let bytes = serde_json::to_vec_pretty(store).map_err(|error| {
        Error::internal(format_args!(
            "missions store {}: cannot encode: {error}",
            path.display()
        ))
    })?;
    write_atomically(path, &bytes).map_err(|error| error::file_failed(field, path, "write", &error))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    std::fs::create_dir_all(directory)?;
    // Same directory, so the rename stays on one file system and is atomic; a unique name, so
    // two writers (a service and an `export`) never share a temporary file.
    let temporary = directory.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        Uuid::now_v7()
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(error) = written {
        // Best effort: the error that matters is the write's.
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    // The rename survives a crash only once the directory entry is on disk.
    File::open(directory)?.sync_all()
}
