//! The migration tooling and the DUAL repository against a real PostgreSQL: backfill, export,
//! compare, the NDJSON rebuild, and divergences between FILE and SQL.

// Store changes return the runtime's `Error`, whose size is the service's choice, not these tests'.
#![allow(clippy::result_large_err)]

mod samples;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use phoenix_missions::app::migration;
use phoenix_missions::config::DualPrimary;
use phoenix_missions::domain::board::{Board, Store};
use phoenix_missions::domain::catalog::Catalog;
use phoenix_missions::domain::rules::RuleSettings;
use phoenix_missions::store::Saved;
use phoenix_missions::store::file::FileBoards;
use phoenix_missions::store::repo::{Dual, Repository};
use phoenix_missions::store::sql::SqlBoards;
use samples::{
    BAD_SAMPLE, EVENTS, SAMPLE, Scratch, board_in, file_store_detail, raw_boards, sample,
};
use sqlx::PgPool;
use uuid::Uuid;

async fn database() -> (phoenix_testkit::TestDatabase, PgPool) {
    phoenix_testkit::migrated_database(&phoenix_missions::spec()).await
}

async fn backfilled(pool: &PgPool) -> SqlBoards {
    let sql = SqlBoards::new(pool.clone());
    let report = migration::backfill(SAMPLE.as_ref(), &sql, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.inserted, 12, "{report:?}");
    sql
}

async fn divergences(pool: &PgPool, user_id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM missions_v2_divergences WHERE user_id = $1 ORDER BY id")
        .bind(user_id)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn backfill_then_export_round_trips_the_sample_store() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let calls = AtomicU64::new(0);
    let report = migration::backfill(SAMPLE.as_ref(), &sql, &|done, total| {
        assert_eq!(total, 12);
        assert_eq!(done, calls.fetch_add(1, Ordering::SeqCst) + 1);
    })
    .await
    .unwrap();
    assert_eq!((report.read, report.inserted, report.skipped), (12, 12, 0));
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    assert_eq!(calls.load(Ordering::SeqCst), 12);

    let scratch = Scratch::new();
    let exported = scratch.path("exported.json");
    assert_eq!(migration::export(&sql, &exported).await.unwrap(), 12);
    let mut expected = sample();
    expected.boards.sort_by_key(Board::key);
    let written: Store = serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    assert_eq!(written, expected);
    // And FILE reads what export wrote.
    let file = FileBoards::open(&exported).unwrap();
    assert_eq!(file.snapshot().await, expected);
}

#[tokio::test]
async fn a_second_backfill_changes_nothing() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let key = board_in(&sample(), "Europe/Madrid").key();
    let mut changed = sql.load(&key).await.unwrap().unwrap();
    changed.slots[0].offers += 5;
    sql.put(&changed).await.unwrap();

    let again = migration::backfill(SAMPLE.as_ref(), &sql, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((again.read, again.inserted, again.skipped), (12, 0, 12));
    assert_eq!(sql.load(&key).await.unwrap(), Some(changed));
}

#[tokio::test]
async fn backfill_quarantines_bad_boards_and_moves_the_rest() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let report = migration::backfill(BAD_SAMPLE.as_ref(), &sql, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((report.read, report.inserted, report.skipped), (11, 1, 0));
    let locations: Vec<&str> = report
        .quarantined
        .iter()
        .map(|q| q.location.as_str())
        .collect();
    assert_eq!(
        locations,
        [
            "boards[1]",
            "boards[2]",
            "boards[3]",
            "boards[4]",
            "boards[5]",
            "boards[6]",
            "boards[7]",
            "boards[8]",
            "boards[9]",
            "boards[10]"
        ]
    );
    assert!(
        report.quarantined[8]
            .reason
            .contains("boards[9], boards[10]")
    );
    assert!(report.quarantined.iter().all(|q| q.user_id.is_some()));
    // Only the valid board is in SQL.
    assert_eq!(sql.keys(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn backfill_quarantines_boards_the_tables_cannot_hold_and_moves_the_rest() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let scratch = Scratch::new();
    let mut boards = raw_boards(SAMPLE);
    // A NUL in a communication (text and jsonb cannot hold one), a season id longer than the
    // tables' 100 characters.
    let with_communication = boards
        .iter()
        .position(|b| !b["communications"].as_array().unwrap().is_empty())
        .unwrap();
    boards[with_communication]["communications"][0]["message"] = "petal\u{0}lost".into();
    let long_season = (with_communication + 1) % boards.len();
    boards[long_season]["seasonId"] = "s".repeat(101).into();
    let store = scratch.path("store.json");
    std::fs::write(
        &store,
        serde_json::to_vec(&serde_json::json!({"version": 1, "boards": boards})).unwrap(),
    )
    .unwrap();

    let report = migration::backfill(&store, &sql, &|_, _| {})
        .await
        .expect("the other boards move");
    assert_eq!((report.read, report.inserted, report.skipped), (12, 10, 0));
    let mut quarantined: Vec<(String, bool)> = report
        .quarantined
        .iter()
        .map(|q| (q.location.clone(), q.reason.contains("NUL")))
        .collect();
    quarantined.sort();
    let mut expected = vec![
        (format!("boards[{with_communication}]"), true),
        (format!("boards[{long_season}]"), false),
    ];
    expected.sort();
    assert_eq!(quarantined, expected, "{:?}", report.quarantined);
    assert!(
        report
            .quarantined
            .iter()
            .any(|q| q.reason.contains(".seasonId: must be 1–64 characters")
                && q.reason.contains("(101 characters) (INVALID_SEASON)")),
        "{:?}",
        report.quarantined
    );
    assert_eq!(sql.keys(None).await.unwrap().len(), 10);
}

#[tokio::test]
async fn backfill_of_a_file_that_is_not_a_store_writes_nothing() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let scratch = Scratch::new();
    let path = scratch.path("store.json");
    std::fs::write(&path, br#"[{"boardId": 1}]"#).unwrap();
    let error = migration::backfill(&path, &sql, &|_, _| {})
        .await
        .unwrap_err();
    assert!(file_store_detail(error).contains("not a missions store"));
    let missing = migration::backfill(&scratch.path("none.json"), &sql, &|_, _| {}).await;
    assert!(
        missing
            .as_ref()
            .is_err_and(|error| error.reason() == "STORE_FILE_NOT_FOUND"),
        "{missing:?}"
    );
    assert!(sql.keys(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn compare_finds_no_difference_after_a_backfill_and_names_each_one_after_a_change() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let file = FileBoards::open(SAMPLE).unwrap();
    let report = migration::compare(&file, &sql, "2025-s1", &[])
        .await
        .unwrap();
    assert_eq!(report.compared, 11);
    assert!(report.differences.is_empty(), "{:?}", report.differences);

    let madrid = board_in(&sample(), "Europe/Madrid");
    let mut changed = madrid.clone();
    changed.slots[0].petals_remaining = 1;
    sql.put(&changed).await.unwrap();
    let stranger = Uuid::now_v7();
    let report = migration::compare(&file, &sql, "2025-s1", &[madrid.user_id, stranger])
        .await
        .unwrap();
    assert_eq!(report.compared, 2);
    let paths: Vec<(Uuid, &str)> = report
        .differences
        .iter()
        .map(|d| (d.user_id, d.path.as_str()))
        .collect();
    assert_eq!(paths, [(madrid.user_id, "slots[0].petalsRemaining")]);
}

#[tokio::test]
async fn rebuild_quarantines_events_the_tables_cannot_hold_and_applies_the_rest() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let joao = board_in(&sample(), "America/Sao_Paulo");
    let lucia = board_in(&sample(), "Europe/Madrid");
    let proof = |proof: &str| {
        serde_json::json!({
            "type": "missions_v2_boss_proof", "userId": joao.user_id, "seasonId": "2025-s1",
            "proof": proof, "at": "2025-03-10T10:00:00Z"
        })
    };
    let heartbeat = serde_json::json!({
        "type": "missions_v2_heartbeat", "userId": lucia.user_id, "seasonId": "2025-s1",
        "slot": "main", "runId": lucia.slots[0].run_id, "date": "2025-03-08",
        "at": "-5000-03-08T18:30:00Z"
    });
    let scratch = Scratch::new();
    let log = scratch.path("events.ndjson");
    let lines = [proof("a\u{0}b"), heartbeat, proof("a photo of the summit")];
    std::fs::write(
        &log,
        lines.map(|line| line.to_string()).join("\n").into_bytes(),
    )
    .unwrap();

    let report =
        migration::rebuild_from_events(&log, &sql, &Catalog::default(), &RuleSettings::default())
            .await
            .expect("the other events apply");
    assert_eq!((report.read, report.applied), (3, 1), "{report:?}");
    let quarantined: Vec<(&str, bool)> = report
        .quarantined
        .iter()
        .map(|q| (q.location.as_str(), q.reason.contains("NUL")))
        .collect();
    assert_eq!(quarantined, [("line 1", true), ("line 2", false)]);
    assert!(
        report.quarantined[1].reason.contains("years 1 to 9999"),
        "{:?}",
        report.quarantined[1]
    );
    let boss = sql.load(&joao.key()).await.unwrap().unwrap().boss.unwrap();
    assert_eq!(boss.phase2_proof.as_deref(), Some("a photo of the summit"));
}

#[tokio::test]
async fn rebuild_applies_each_missing_event_once_and_quarantines_the_rest() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let catalog = Catalog::default();
    let settings = RuleSettings::default();

    let report = migration::rebuild_from_events(EVENTS.as_ref(), &sql, &catalog, &settings)
        .await
        .unwrap();
    assert_eq!(
        (report.read, report.applied, report.already_applied),
        (14, 4, 4),
        "{report:?}"
    );
    let lines: Vec<&str> = report
        .quarantined
        .iter()
        .map(|q| q.location.as_str())
        .collect();
    assert_eq!(
        lines,
        [
            "line 10", "line 11", "line 12", "line 13", "line 14", "line 15"
        ]
    );

    let joao = sql
        .load(&board_in(&sample(), "America/Sao_Paulo").key())
        .await
        .unwrap()
        .unwrap();
    let main = joao.run(joao.slots[0].run_id.unwrap()).unwrap();
    assert!(main.heartbeat_on("2025-03-12".parse().unwrap()).is_some());
    assert_eq!(main.progress.current, 300);
    assert!(joao.boss.as_ref().unwrap().completed_at.is_some());
    let lucia = sql
        .load(&board_in(&sample(), "Europe/Madrid").key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lucia.boss.as_ref().unwrap().shield_current, 4);

    let again = migration::rebuild_from_events(EVENTS.as_ref(), &sql, &catalog, &settings)
        .await
        .unwrap();
    assert_eq!((again.applied, again.already_applied), (0, 8), "{again:?}");
}

async fn dual(primary: DualPrimary, store: &std::path::Path, pool: &PgPool) -> Repository {
    Repository::Dual(Dual::new(
        FileBoards::open(store).unwrap(),
        SqlBoards::new(pool.clone()),
        primary,
    ))
}

#[tokio::test]
async fn dual_writes_both_stores_and_records_no_divergence_when_they_agree() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let scratch = Scratch::new();
    let store = scratch.sample_store();
    let repository = dual(DualPrimary::File, &store, &pool).await;
    let key = board_in(&sample(), "UTC").key();

    let offers = repository
        .update(&key, |board| {
            let mut board = board.unwrap();
            board.slots[1].offers += 1;
            let offers = board.slots[1].offers;
            Ok(Saved::Write(board, offers))
        })
        .await
        .unwrap();

    let in_file = FileBoards::open(&store).unwrap().load(&key).await.unwrap();
    let in_sql = sql.load(&key).await.unwrap();
    assert_eq!(in_file.as_ref().unwrap().slots[1].offers, offers);
    assert_eq!(in_file, in_sql);
    assert!(divergences(&pool, key.user_id).await.is_empty());
}

#[tokio::test]
async fn dual_records_a_content_divergence_and_answers_with_the_primary() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let scratch = Scratch::new();
    let store = scratch.sample_store();
    let madrid = board_in(&sample(), "Europe/Madrid");
    let mut drifted = madrid.clone();
    drifted.slots[0].petals_remaining = 0;
    sql.put(&drifted).await.unwrap();
    let repository = dual(DualPrimary::File, &store, &pool).await;

    let petals = repository
        .update(&madrid.key(), |board| {
            let mut board = board.unwrap();
            board.slots[2].offers += 1;
            let petals = board.slots[0].petals_remaining;
            Ok(Saved::Write(board, petals))
        })
        .await
        .unwrap();

    assert_eq!(petals, madrid.slots[0].petals_remaining);
    assert_eq!(divergences(&pool, madrid.user_id).await, ["content"]);
    // The secondary now holds the primary's board.
    assert_eq!(
        sql.load(&madrid.key()).await.unwrap(),
        repository.load(&madrid.key()).await.unwrap()
    );
}

#[tokio::test]
async fn dual_records_a_missing_row_on_the_secondary() {
    let (_db, pool) = database().await;
    let scratch = Scratch::new();
    let store = scratch.sample_store();
    let repository = dual(DualPrimary::File, &store, &pool).await;
    let tokyo = board_in(&sample(), "Asia/Tokyo");

    repository
        .update(&tokyo.key(), |board| Ok(Saved::Write(board.unwrap(), ())))
        .await
        .unwrap();

    assert_eq!(divergences(&pool, tokyo.user_id).await, ["missing_row"]);
    let sql = SqlBoards::new(pool.clone());
    assert_eq!(sql.load(&tokyo.key()).await.unwrap(), Some(tokyo));
}

#[tokio::test]
async fn a_failed_secondary_write_never_fails_the_call() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let scratch = Scratch::new();
    let store = scratch.sample_store();
    let repository = dual(DualPrimary::Sql, &store, &pool).await;
    // A directory where the store file was: the FILE secondary cannot write.
    std::fs::remove_file(&store).unwrap();
    std::fs::create_dir(&store).unwrap();
    let key = board_in(&sample(), "UTC").key();

    repository
        .update(&key, |board| {
            let mut board = board.unwrap();
            board.slots[1].offers += 1;
            Ok(Saved::Write(board, ()))
        })
        .await
        .unwrap();

    assert_eq!(
        divergences(&pool, key.user_id).await,
        ["secondary_write_failed"]
    );
    let offers = board_in(&sample(), "UTC").slots[1].offers;
    assert_eq!(
        sql.load(&key).await.unwrap().unwrap().slots[1].offers,
        offers + 1
    );
}

#[tokio::test]
async fn a_day_close_the_primary_refuses_is_not_copied_to_the_secondary() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let scratch = Scratch::new();
    let store = scratch.sample_store();
    let repository = dual(DualPrimary::Sql, &store, &pool).await;
    let refused = board_in(&sample(), "America/Sao_Paulo");
    let everything_due = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .to_utc();

    let batch = repository
        .update_due(everything_due, 100, &[], |board| {
            board.slots[1].offers += 1;
            if board.key() == refused.key() {
                // More petals than the slot holds: the SQL primary refuses this board.
                board.slots[0].petals_remaining = board.slots[0].petals_total + 1;
            }
            Some(board.key())
        })
        .await
        .unwrap();

    assert_eq!(batch.refused, [refused.key()]);
    assert!(!batch.saved.is_empty());
    let file = FileBoards::open(&store).unwrap();
    assert_eq!(
        file.load(&refused.key()).await.unwrap(),
        Some(refused.clone())
    );
    assert_eq!(sql.load(&refused.key()).await.unwrap(), Some(refused));
    for key in &batch.saved {
        let in_sql = sql.load(key).await.unwrap().unwrap();
        let original = sample()
            .boards
            .into_iter()
            .find(|b| b.key() == *key)
            .unwrap();
        assert_eq!(in_sql.slots[1].offers, original.slots[1].offers + 1);
        assert_eq!(file.load(key).await.unwrap(), Some(in_sql));
        assert!(divergences(&pool, key.user_id).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dual_updates_leave_both_stores_equal() {
    let (_db, pool) = database().await;
    let sql = backfilled(&pool).await;
    let scratch = Scratch::new();
    let store = scratch.sample_store();
    let repository = Arc::new(dual(DualPrimary::Sql, &store, &pool).await);
    let key = board_in(&sample(), "UTC").key();
    let offers = board_in(&sample(), "UTC").slots[1].offers;

    let updates: Vec<_> = (0..16)
        .map(|_| {
            let repository = repository.clone();
            let key = key.clone();
            tokio::spawn(async move {
                repository
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

    let in_sql = sql.load(&key).await.unwrap().unwrap();
    assert_eq!(in_sql.slots[1].offers, offers + 16);
    let in_file = FileBoards::open(&store).unwrap().load(&key).await.unwrap();
    assert_eq!(in_file, Some(in_sql));
    assert!(divergences(&pool, key.user_id).await.is_empty());
}
