//! The FILE repository (the legacy JSON store) and the parts of the migration tooling that need
//! no database: board validation, the sample stores, JSON diffs and event replay idempotency.

// Store changes return the runtime's `Error`, whose size is the service's choice, not these tests'.
#![allow(clippy::result_large_err)]

mod samples;

use std::path::Path;
use std::sync::Arc;

use phoenix_missions::domain::board::{Board, BoardKey, SlotState};
use phoenix_missions::domain::catalog::Catalog;
use phoenix_missions::domain::diff::diff_boards;
use phoenix_missions::domain::legacy::{self, EventOutcome, LegacyEvent};
use phoenix_missions::domain::rules::{RandomIds, RuleSettings};
use phoenix_missions::error::file_store_unavailable;
use phoenix_missions::store::Saved;
use phoenix_missions::store::file::FileBoards;
use samples::{
    BAD_SAMPLE, EVENTS, SAMPLE, Scratch, board_in, file_store_detail, raw_boards, sample,
};
use serde_json::Value;
use uuid::Uuid;

#[test]
fn the_sample_store_is_valid_and_covers_every_state() {
    let boards = raw_boards(SAMPLE);
    assert_eq!(boards.len(), 12);
    let boards: Vec<Board> = boards
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            legacy::check_board(value)
                .unwrap_or_else(|reason| panic!("boards[{index}] is invalid: {reason}"))
        })
        .collect();

    for state in [
        SlotState::Idle,
        SlotState::Active,
        SlotState::Succeeded,
        SlotState::Failed,
        SlotState::Cooldown,
        SlotState::Claimed,
    ] {
        assert!(
            boards
                .iter()
                .any(|board| board.slots.iter().any(|slot| slot.state == state)),
            "no slot is {state:?}"
        );
    }
    for zone in ["America/Sao_Paulo", "Europe/Madrid", "Asia/Kolkata"] {
        assert!(boards.iter().any(|board| board.time_zone.name() == zone));
    }
    let bosses: Vec<_> = boards
        .iter()
        .filter_map(|board| board.boss.as_ref())
        .collect();
    assert!(
        bosses
            .iter()
            .any(|boss| boss.phase == 1 && boss.linked_task_id.is_none())
    );
    assert!(
        bosses
            .iter()
            .any(|boss| boss.phase == 1 && boss.linked_task_id.is_some())
    );
    assert!(
        bosses
            .iter()
            .any(|boss| boss.phase == 2 && boss.completed_at.is_none())
    );
    assert!(bosses.iter().any(|boss| boss.claim_id.is_some()));
    let days = || {
        boards
            .iter()
            .flat_map(|board| &board.runs)
            .flat_map(|run| &run.days)
    };
    assert!(days().any(|day| day.effect_instance_id.is_some()));
    assert!(boards.iter().any(|board| !board.claims.is_empty()));
}

#[test]
fn validate_names_each_broken_invariant_of_the_bad_sample() {
    let expected: [Option<&str>; 11] = [
        None,
        Some("slots must be main, hunt, skill in that order, found [main, hunt]"),
        Some("slots[0].petalsRemaining: 5 is outside 0..=3 (OUT_OF_RANGE)"),
        Some("more than one heartbeat on 2025-03-08"),
        Some("day 2025-03-11 closed more than once"),
        Some("is claimed more than once"),
        Some("Mars/Olympus_Mons"),
        Some("is active on slot main, which is in cooldown"),
        Some("not a valid board"),
        // Two boards of one user and season: each is fine on its own; backfill refuses both.
        None,
        None,
    ];
    let boards = raw_boards(BAD_SAMPLE);
    assert_eq!(boards.len(), expected.len());
    for (index, (value, expected)) in boards.into_iter().zip(expected).enumerate() {
        match (legacy::check_board(value), expected) {
            (Ok(_), None) => {}
            (Err(reason), Some(fragment)) => assert!(
                reason.contains(fragment),
                "boards[{index}]: {reason:?} does not say {fragment:?}"
            ),
            (Ok(_), Some(fragment)) => panic!("boards[{index}] passed; expected {fragment:?}"),
            (Err(reason), None) => panic!("boards[{index}] refused: {reason}"),
        }
    }
}

#[tokio::test]
async fn a_missing_file_is_an_empty_store_created_on_the_first_save() {
    let scratch = Scratch::new();
    let path = scratch.path("nested/dir/store.json");
    let boards = FileBoards::open(&path).unwrap();
    assert!(boards.keys(None).await.unwrap().is_empty());
    assert!(!path.exists());

    let board = board_in(&sample(), "Asia/Tokyo");
    assert!(boards.insert_if_absent(&board).await.unwrap());

    let reopened = FileBoards::open(&path).unwrap();
    assert_eq!(reopened.load(&board.key()).await.unwrap(), Some(board));
}

#[tokio::test]
async fn the_sample_store_opens_as_written() {
    let boards = FileBoards::open(SAMPLE).unwrap();
    assert_eq!(boards.snapshot().await, sample());
}

#[tokio::test]
async fn an_update_survives_a_reopen_and_leaves_other_boards_alone() {
    let scratch = Scratch::new();
    let path = scratch.sample_store();
    let before = sample();
    let key = board_in(&before, "Europe/Madrid").key();

    let boards = FileBoards::open(&path).unwrap();
    let answer = boards
        .update(&key, |board| {
            let mut board = board.expect("the sample has this board");
            board.slots[0].petals_remaining -= 1;
            Ok(Saved::Write(board, "saved"))
        })
        .await
        .unwrap();
    assert_eq!(answer, "saved");
    let updated = boards.load(&key).await.unwrap().unwrap();
    assert_eq!(
        updated.slots[0].petals_remaining,
        board_in(&before, "Europe/Madrid").slots[0].petals_remaining - 1
    );
    drop(boards);

    let reopened = FileBoards::open(&path).unwrap().snapshot().await;
    let mut expected = before.clone();
    for board in &mut expected.boards {
        if board.key() == key {
            *board = updated.clone();
        }
    }
    assert_eq!(reopened, expected);
    assert_eq!(scratch.file_names(), ["missions_v2_store.json"]);
}

#[tokio::test]
async fn a_refused_or_read_only_change_writes_nothing() {
    let scratch = Scratch::new();
    let path = scratch.sample_store();
    let bytes = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let key = board_in(&sample(), "Europe/Madrid").key();
    let boards = FileBoards::open(&path).unwrap();

    let refused = boards
        .update(&key, |board| -> Result<Saved<()>, _> {
            let mut board = board.unwrap();
            board.slots[0].petals_remaining = 0;
            Err(file_store_unavailable(Path::new("rule"), "refused"))
        })
        .await;
    assert!(refused.is_err());
    let kept = boards
        .update(&key, |board| Ok(Saved::Keep(board.is_some())))
        .await
        .unwrap();
    assert!(kept);

    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(scratch.file_names(), ["missions_v2_store.json"]);
    assert_eq!(
        boards.load(&key).await.unwrap(),
        Some(board_in(&sample(), "Europe/Madrid"))
    );
}

#[tokio::test]
async fn a_failed_write_changes_neither_memory_nor_disk_and_leaves_no_temporary_file() {
    let scratch = Scratch::new();
    let path = scratch.sample_store();
    let original = board_in(&sample(), "Europe/Madrid");
    let newcomer = {
        let mut board = board_in(&sample(), "Asia/Tokyo");
        board.user_id = Uuid::now_v7();
        board
    };
    let boards = FileBoards::open(&path).unwrap();
    // A directory where the store file was: the rename over it fails.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();

    let replaced = boards
        .update(&original.key(), |board| {
            let mut board = board.unwrap();
            board.slots[0].petals_remaining = 0;
            Ok(Saved::Write(board, ()))
        })
        .await;
    let detail = file_store_detail(replaced.unwrap_err());
    assert!(detail.contains(": cannot write"), "{detail}");
    let inserted = boards.insert_if_absent(&newcomer).await;
    assert!(inserted.is_err());

    assert_eq!(boards.load(&original.key()).await.unwrap(), Some(original));
    assert_eq!(boards.load(&newcomer.key()).await.unwrap(), None);
    assert_eq!(boards.snapshot().await, sample());
    assert_eq!(scratch.file_names(), ["missions_v2_store.json"]);
    assert!(path.is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_board_are_serialized() {
    let scratch = Scratch::new();
    let path = scratch.sample_store();
    let key = board_in(&sample(), "UTC").key();
    let offers_before = board_in(&sample(), "UTC").slots[1].offers;
    let boards = Arc::new(FileBoards::open(&path).unwrap());

    let updates: Vec<_> = (0..24)
        .map(|_| {
            let boards = boards.clone();
            let key = key.clone();
            tokio::spawn(async move {
                boards
                    .update(&key, |board| {
                        let mut board = board.unwrap();
                        board.slots[1].offers += 1;
                        Ok(Saved::Write(board, ()))
                    })
                    .await
            })
        })
        .collect();
    for update in updates {
        update.await.unwrap().unwrap();
    }

    let reopened = FileBoards::open(&path).unwrap();
    let board = reopened.load(&key).await.unwrap().unwrap();
    assert_eq!(board.slots[1].offers, offers_before + 24);
    assert_eq!(scratch.file_names(), ["missions_v2_store.json"]);
}

#[tokio::test]
async fn put_insert_and_keys() {
    let scratch = Scratch::new();
    let boards = FileBoards::open(scratch.sample_store()).unwrap();
    let store = sample();
    let lagos = store
        .boards
        .iter()
        .find(|board| board.time_zone.name() == "Africa/Lagos")
        .unwrap();

    let seasons: Vec<String> = boards
        .keys_of_user(lagos.user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.season_id)
        .collect();
    assert_eq!(seasons, ["2024-s4", "2025-s1"]);
    assert_eq!(boards.keys(Some("2024-s4")).await.unwrap().len(), 1);
    assert_eq!(boards.keys(Some("2025-s1")).await.unwrap().len(), 11);
    assert_eq!(boards.keys(None).await.unwrap().len(), 12);

    let existing = board_in(&store, "Asia/Tokyo");
    assert!(!boards.insert_if_absent(&existing).await.unwrap());
    let mut changed = existing.clone();
    changed.slots[2].offers = 7;
    assert_eq!(boards.put(&changed).await.unwrap(), Some(existing));
    assert_eq!(boards.load(&changed.key()).await.unwrap(), Some(changed));

    let mut newcomer = board_in(&store, "Asia/Tokyo");
    newcomer.user_id = Uuid::now_v7();
    assert_eq!(boards.put(&newcomer).await.unwrap(), None);
    assert_eq!(boards.keys(None).await.unwrap().len(), 13);
}

#[tokio::test]
async fn replace_all_restores_a_store_and_refuses_duplicates() {
    let scratch = Scratch::new();
    let path = scratch.path("store.json");
    let boards = FileBoards::open(&path).unwrap();
    boards.replace_all(sample()).await.unwrap();
    assert_eq!(FileBoards::open(&path).unwrap().snapshot().await, sample());

    let mut twice = sample();
    twice.boards.push(twice.boards[0].clone());
    let detail = file_store_detail(boards.replace_all(twice).await.unwrap_err());
    assert!(detail.contains("boards[0] and boards[12]"), "{detail}");
    assert_eq!(boards.snapshot().await, sample());
}

#[tokio::test]
async fn a_malformed_store_is_refused_with_the_problem_named() {
    let scratch = Scratch::new();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty.json", Vec::new(), "EOF while parsing"),
        (
            "truncated.json",
            br#"{"version": 1, "boards": [{"boardId": "#.to_vec(),
            "EOF while parsing",
        ),
        (
            "version.json",
            br#"{"version": 2, "boards": []}"#.to_vec(),
            "format version 2; this code reads version 1",
        ),
        (
            "bad.json",
            std::fs::read(BAD_SAMPLE).unwrap(),
            "not a valid missions store",
        ),
        (
            "twice.json",
            duplicated_sample(),
            "boards[0] and boards[12]",
        ),
    ];
    for (name, bytes, fragment) in cases {
        let path = scratch.path(name);
        std::fs::write(&path, &bytes).unwrap();
        let error = FileBoards::open(&path).err().unwrap();
        assert!(error.to_string().contains(name), "{error}");
        let detail = file_store_detail(error);
        assert!(detail.contains(fragment), "{name}: {detail}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was rewritten");
    }
}

fn duplicated_sample() -> Vec<u8> {
    let mut store = sample();
    store.boards.push(store.boards[0].clone());
    serde_json::to_vec(&store).unwrap()
}

#[test]
fn diff_boards_names_each_difference_by_its_json_path() {
    let file = board_in(&sample(), "Europe/Madrid");
    let mut sql = file.clone();
    sql.slots[0].petals_remaining = 1;
    sql.runs[1].heartbeats.pop();
    sql.effects
        .push(phoenix_missions::domain::board::EffectInstance {
            effect_instance_id: Uuid::nil(),
            effect_id: Uuid::nil(),
            active_from: file.updated_at,
            active_until: None,
            consumed_at: None,
            protects_day: false,
            payload_override: serde_json::json!({}),
        });
    sql.boss.as_mut().unwrap().linked_task_id = None;

    let differences = diff_boards(file.user_id, Some(&file), Some(&sql)).unwrap();
    let paths: Vec<&str> = differences.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "boss.linkedTaskId",
            "effects[0]",
            "runs[1].heartbeats[3]",
            "slots[0].petalsRemaining"
        ]
    );
    let petals = &differences[3];
    assert_eq!(petals.user_id, file.user_id);
    assert_eq!(petals.file_value, Some(Value::from(2)));
    assert_eq!(petals.sql_value, Some(Value::from(1)));
    assert_eq!(differences[2].sql_value, None);
    assert_eq!(differences[1].file_value, None);
    assert_eq!(differences[0].sql_value, Some(Value::Null));

    assert!(
        diff_boards(file.user_id, Some(&file), Some(&file))
            .unwrap()
            .is_empty()
    );
    let missing = diff_boards(file.user_id, Some(&file), None).unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].path, "");
    assert_eq!(missing[0].sql_value, None);
}

#[test]
fn diff_paths_quote_keys_that_are_not_plain_names() {
    let file = board_in(&sample(), "America/Sao_Paulo");
    let mut sql = file.clone();
    sql.effects[0].payload_override = serde_json::json!({"bonus.xp": 2});
    let differences = diff_boards(file.user_id, Some(&file), Some(&sql)).unwrap();
    let paths: Vec<&str> = differences.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, [r#"effects[0].payloadOverride["bonus.xp"]"#]);
}

/// Events the sample store already reflects, or that cannot apply, are decided before any rule
/// runs; the ones that apply go through the rules (see tests/migration.rs).
#[test]
fn replaying_an_event_the_board_reflects_changes_nothing() {
    let store = sample();
    let lines: Vec<&str> = include_str!("../testdata/missions_v2_events.ndjson")
        .lines()
        .collect();
    assert_eq!(
        std::fs::read_to_string(EVENTS).unwrap().lines().count(),
        lines.len()
    );
    let expected: [(usize, Option<&str>); 7] = [
        (1, None),
        (2, None),
        (3, None),
        (4, None),
        (10, Some("was closed as PetalLost without this heartbeat")),
        (13, Some("the board has no run")),
        (15, Some("is a main run, not hunt")),
    ];
    for (line, rejection) in expected {
        let event: LegacyEvent = serde_json::from_str(lines[line - 1]).unwrap();
        let key: BoardKey = event.key();
        let mut board = store
            .boards
            .iter()
            .find(|board| board.key() == key)
            .unwrap()
            .clone();
        let before = board.clone();
        let outcome = legacy::apply_event(
            &mut board,
            &event,
            &Catalog::default(),
            &RuleSettings::default(),
            &mut RandomIds,
        );
        match rejection {
            None => assert_eq!(outcome, EventOutcome::AlreadyApplied, "line {line}"),
            Some(fragment) => match outcome {
                EventOutcome::Rejected(reason) => {
                    assert!(reason.contains(fragment), "line {line}: {reason}")
                }
                other => panic!("line {line}: {other:?}"),
            },
        }
        assert_eq!(board, before, "line {line} changed the board");
    }
    for line in [11, 12] {
        assert!(serde_json::from_str::<LegacyEvent>(lines[line - 1]).is_err());
    }
}
