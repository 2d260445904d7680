//! What the missions store tests share: the sample stores of `testdata/` and scratch directories.
#![allow(dead_code)]

use std::path::PathBuf;

use phoenix_missions::domain::board::{Board, Store};
use phoenix_runtime::Error;
use serde_json::Value;
use uuid::Uuid;

pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/missions_v2_store.json"
);
pub const BAD_SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/missions_v2_store_bad.json"
);
pub const EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/missions_v2_events.ndjson"
);

/// A fresh directory, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("phoenix-missions-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A copy of the sample store in this directory.
    pub fn sample_store(&self) -> PathBuf {
        let path = self.path("missions_v2_store.json");
        std::fs::copy(SAMPLE, &path).unwrap();
        path
    }

    pub fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn sample() -> Store {
    serde_json::from_slice(&std::fs::read(SAMPLE).unwrap()).unwrap()
}

pub fn raw_boards(path: &str) -> Vec<Value> {
    let store: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    store["boards"].as_array().unwrap().clone()
}

pub fn board_in(store: &Store, time_zone: &str) -> Board {
    store
        .boards
        .iter()
        .find(|board| board.time_zone.name() == time_zone && board.season_id == "2025-s1")
        .unwrap()
        .clone()
}

/// What a FILE store error says (`missions store <path>: <detail>`): a file that cannot be
/// used now (UNAVAILABLE) or one that is not a store (FAILED_PRECONDITION).
pub fn file_store_detail(error: Error) -> String {
    match error {
        Error::Unavailable {
            reason, message, ..
        } if reason == "FILE_STORE_UNAVAILABLE" => message,
        Error::Refused(refusal) if refusal.reason == "INVALID_STORE_FILE" => refusal.message,
        other => panic!("expected a file store error, got {other:?}"),
    }
}
