//! The legacy backfill and compare on messy stores (`testdata/messy/`, written by its `make.py`):
//! every board stands alone, ids belong to one board, reasons name the board, the field and the
//! rule, and no echo of a value is long.

// Store changes return the runtime's `Error`, whose size is the service's choice, not these tests'.
#![allow(clippy::result_large_err)]

mod samples;

use phoenix_missions::app::migration::{self, BackfillReport, Quarantined};
use phoenix_missions::domain::board::Board;
use phoenix_missions::store::sql::{Imported, SqlBoards};
use samples::{BAD_SAMPLE, SAMPLE, Scratch, raw_boards, sample};
use sqlx::PgPool;
use uuid::Uuid;

const MIXED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/messy/mixed_store.json"
);
const LONE_SURROGATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/messy/lone_surrogate.json"
);
const ID_REUSE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/messy/id_reuse.json");

/// The user of the sample's board with three idle slots, whose slot ids the bad sample reuses.
const A54B: &str = "a54b00cf-5ba8-5ac7-897e-c62592f6bf38";

async fn database() -> (phoenix_testkit::TestDatabase, PgPool) {
    phoenix_testkit::migrated_database(&phoenix_missions::spec()).await
}

async fn backfill(path: &str, sql: &SqlBoards) -> BackfillReport {
    migration::backfill(path.as_ref(), sql, &|_, _| {})
        .await
        .unwrap()
}

fn quarantined<'a>(report: &'a BackfillReport, location: &str) -> &'a Quarantined {
    report
        .quarantined
        .iter()
        .find(|q| q.location == location)
        .unwrap_or_else(|| panic!("{location} is not quarantined: {report:#?}"))
}

/// `location` is quarantined, its reason naming `field` (a path from the store's top) and
/// `rule`.
fn assert_quarantined(report: &BackfillReport, location: &str, field: &str, rule: &str) {
    let q = quarantined(report, location);
    assert!(
        q.reason.contains(&format!("{field}: ")) && q.reason.contains(&format!("({rule})")),
        "{location}: {:?} does not name {field} and {rule}",
        q.reason
    );
}

async fn slot_count(pool: &PgPool, user_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM missions_v2_slots s JOIN missions_v2_boards b USING (board_id)
         WHERE b.user_id = $1::uuid",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_mixed_store_imports_every_good_board_and_quarantines_each_bad_one_by_field_and_rule() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let report = backfill(MIXED, &sql).await;
    assert_eq!((report.read, report.inserted, report.skipped), (20, 3, 0));
    assert_eq!(report.quarantined.len(), 17, "{:#?}", report.quarantined);
    let cases = [
        (
            "boards[1]",
            "boards[1].slots[2].petalsTotal",
            "OUT_OF_RANGE",
        ),
        (
            "boards[2]",
            "boards[2].slots[1].rerollRemaining",
            "OUT_OF_RANGE",
        ),
        ("boards[3]", "boards[3].slots[0].offers", "OUT_OF_RANGE"),
        (
            "boards[5]",
            "boards[5].runs[0].heartbeats[0].petalsBefore",
            "OUT_OF_RANGE",
        ),
        (
            "boards[6]",
            "boards[6].runs[1].progress.target",
            "OUT_OF_RANGE",
        ),
        ("boards[7]", "boards[7].boss.shieldCurrent", "OUT_OF_RANGE"),
        ("boards[8]", "boards[8].boss.phase", "OUT_OF_RANGE"),
        (
            "boards[9]",
            "boards[9].runs[0].days[0].effectInstanceId",
            "PROTECTED_DAY_EFFECT",
        ),
        (
            "boards[10]",
            "boards[10].claims[0].reward.xp",
            "OUT_OF_RANGE",
        ),
        ("boards[11]", "boards[11].seasonId", "INVALID_SEASON"),
        ("boards[13]", "boards[13].runs[3].status", "TWO_ACTIVE_RUNS"),
        (
            "boards[14]",
            "boards[14].communications[0].message",
            "NUL_CHARACTER",
        ),
        ("boards[15]", "boards[15].seasonId", "INVALID_SEASON"),
        (
            "boards[16]",
            "boards[16].runs[0].selectedAt",
            "INSTANT_PRECISION",
        ),
        ("boards[17]", "boards[17].userId", "INVALID_FIELD"),
        (
            "boards[18]",
            "boards[18].slots[0].petalsTotal",
            "INVALID_FIELD",
        ),
        ("boards[19]", "boards[19].timeZone", "INVALID_FIELD"),
    ];
    for (location, field, rule) in cases {
        assert_quarantined(&report, location, field, rule);
    }
    // The season rule is the API's, with its words; the unicode season is echoed, quoted.
    let season = &quarantined(&report, "boards[15]").reason;
    assert!(
        season.contains("must be 1–64 characters: letters, digits, '-', '_' or '.'")
            && season.contains("\"Primavera 2026 🌸\""),
        "{season}"
    );
    // Sub-microsecond instants are refused, not rounded: the reason shows all nine digits.
    assert!(
        quarantined(&report, "boards[16]")
            .reason
            .contains("2025-03-01T08:00:00.123456789Z")
    );
    // A user id that is a number: no user, and the reason says what the field held.
    let numeric = quarantined(&report, "boards[17]");
    assert_eq!(numeric.user_id, None);
    assert!(numeric.reason.contains("12345"), "{}", numeric.reason);
    assert!(
        quarantined(&report, "boards[18]")
            .reason
            .contains("invalid type: string \"3\", expected i16")
    );
    // A 5,000-character zone is echoed as a short prefix.
    let huge = &quarantined(&report, "boards[19]").reason;
    assert!(huge.len() < 400, "{} bytes: {huge}", huge.len());
    // Every other quarantined board is known by its user.
    assert!(
        report
            .quarantined
            .iter()
            .filter(|q| q.location != "boards[17]")
            .all(|q| q.user_id.is_some())
    );

    // The good boards are in SQL whole, and a rerun changes nothing and says the same.
    let stored: Vec<Uuid> = sql
        .keys(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.user_id)
        .collect();
    let boards = raw_boards(MIXED);
    for index in [0, 4, 12] {
        let user: Uuid = boards[index]["userId"].as_str().unwrap().parse().unwrap();
        assert!(stored.contains(&user), "boards[{index}] is not in SQL");
    }
    assert_eq!(stored.len(), 3);
    let again = backfill(MIXED, &sql).await;
    assert_eq!((again.inserted, again.skipped), (0, 3));
    assert_eq!(again.quarantined, report.quarantined);
    let audit = migration::audit(&pool).await.unwrap();
    assert!(audit.violations.is_empty(), "{:?}", audit.violations);
}

#[tokio::test]
async fn a_board_the_database_refuses_is_an_answer_naming_the_constraint_and_writes_nothing() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    // Past the importer's checks (as a rule bug would be), the database still refuses it.
    let mut board = sample().boards[0].clone();
    board.slots[2].petals_total = 0;
    board.slots[2].petals_remaining = 0;
    match sql.import(&board).await.unwrap() {
        Imported::Refused {
            code, constraint, ..
        } => {
            assert_eq!(code, "23514");
            assert_eq!(constraint, "missions_v2_slots_petals_total_check");
        }
        other => panic!("imported: {other:?}"),
    }
    assert!(sql.keys(None).await.unwrap().is_empty());
    // The next board is not affected.
    let next = sample().boards[1].clone();
    assert_eq!(sql.import(&next).await.unwrap(), Imported::Inserted);
    assert_eq!(sql.import(&next).await.unwrap(), Imported::Present);
}

#[tokio::test]
async fn a_lone_surrogate_spoils_only_its_own_board() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let report = backfill(LONE_SURROGATE, &sql).await;
    assert_eq!((report.read, report.inserted), (3, 2), "{report:#?}");
    assert_quarantined(
        &report,
        "boards[1]",
        "boards[1].communications[0].message",
        "INVALID_TEXT",
    );
    let q = quarantined(&report, "boards[1]");
    assert!(q.reason.contains("lone UTF-16 surrogate"), "{}", q.reason);
    assert!(q.user_id.is_some());
}

#[tokio::test]
async fn the_shipped_samples_backfilled_into_one_database_take_no_board_over() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    assert_eq!(backfill(SAMPLE, &sql).await.inserted, 12);
    assert_eq!(slot_count(&pool, A54B).await, 3);
    let report = backfill(BAD_SAMPLE, &sql).await;
    assert_eq!(slot_count(&pool, A54B).await, 3, "{report:#?}");
    let owned: Vec<&Quarantined> = report
        .quarantined
        .iter()
        .filter(|q| q.reason.contains("(ID_ALREADY_OWNED)"))
        .collect();
    assert!(!owned.is_empty(), "{report:#?}");
    assert!(owned.iter().any(|q| q.reason.contains(A54B)), "{owned:#?}");
    let audit = migration::audit(&pool).await.unwrap();
    assert!(audit.violations.is_empty(), "{:?}", audit.violations);
}

#[tokio::test]
async fn ids_of_another_board_in_sql_or_in_the_store_are_quarantined_as_already_owned() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    backfill(SAMPLE, &sql).await;
    let report = backfill(ID_REUSE, &sql).await;
    assert_eq!((report.read, report.inserted), (4, 1), "{report:#?}");
    // The taker's slots are the a54b board's, in SQL.
    assert_quarantined(
        &report,
        "boards[0]",
        "boards[0].slots[0].slotId",
        "ID_ALREADY_OWNED",
    );
    assert!(quarantined(&report, "boards[0]").reason.contains(A54B));
    // Two boards of the store with one run: both wait for a person.
    assert_quarantined(
        &report,
        "boards[2]",
        "boards[2].runs[1].runId",
        "ID_ALREADY_OWNED",
    );
    assert_quarantined(
        &report,
        "boards[3]",
        "boards[3].runs[1].runId",
        "ID_ALREADY_OWNED",
    );
    assert!(
        quarantined(&report, "boards[3]")
            .reason
            .contains("is also boards[2].runs[1].runId")
    );
    assert_eq!(slot_count(&pool, A54B).await, 3);
}

#[tokio::test]
async fn the_database_refuses_to_move_a_row_to_another_board() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    backfill(SAMPLE, &sql).await;
    let owner = sample()
        .boards
        .into_iter()
        .find(|b| b.user_id.to_string() == A54B)
        .unwrap();
    // Written past every check of the code: only the database stands in the way. The taker
    // shares the owner's slot ids and nothing else.
    let mut taker: Board = owner.clone();
    taker.user_id = Uuid::now_v7();
    taker.board_id = Uuid::now_v7();
    if let Some(boss) = &mut taker.boss {
        boss.boss_run_id = Uuid::now_v7();
    }
    let error = sql.put(&taker).await.unwrap_err();
    assert_eq!(error.reason(), "INVARIANT_BROKEN", "{error:?}");
    assert!(
        error.to_string().contains("missions_v2_slots_of_one_board"),
        "{error}"
    );
    assert_eq!(slot_count(&pool, A54B).await, 3);
    assert!(sql.load(&taker.key()).await.unwrap().is_none());
}

#[tokio::test]
async fn compare_leaves_malformed_boards_out_and_compares_the_valid_ones() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    backfill(MIXED, &sql).await;
    let report = migration::compare_store(MIXED.as_ref(), &sql, "2025-s1", &[])
        .await
        .unwrap();
    assert_eq!(report.compared, 3, "{report:#?}");
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.quarantined.len(), 17);
    assert!(
        report
            .quarantined
            .iter()
            .any(|q| q.reason.contains("boards[1].slots[2].petalsTotal: "))
    );
}

#[tokio::test]
async fn compare_against_a_missing_store_is_an_error() {
    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let scratch = Scratch::new();
    let error = migration::compare_store(&scratch.path("missing.json"), &sql, "2025-s1", &[])
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);
    assert_eq!(error.reason(), "STORE_FILE_NOT_FOUND");
}

const LEGACY_FIELDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/messy/legacy_fields.json"
);

#[tokio::test]
async fn unknown_fields_survive_import_export_import_as_a_fixed_point() {
    use phoenix_missions::domain::board::Store;

    let (_db, pool) = database().await;
    let sql = SqlBoards::new(pool.clone());
    let report = backfill(LEGACY_FIELDS, &sql).await;
    assert_eq!((report.read, report.inserted), (3, 2), "{report:#?}");
    // Below the board and its slots a field the format does not define is refused, named.
    assert_quarantined(
        &report,
        "boards[2]",
        "boards[2].runs[0].legacyNote",
        "UNKNOWN_FIELD",
    );
    let audit = migration::audit(&pool).await.unwrap();
    assert!(audit.violations.is_empty(), "{:?}", audit.violations);
    let compared = migration::compare_store(LEGACY_FIELDS.as_ref(), &sql, "2025-s1", &[])
        .await
        .unwrap();
    assert!(compared.differences.is_empty(), "{compared:#?}");

    let scratch = Scratch::new();
    let first = scratch.path("first.json");
    assert_eq!(migration::export(&sql, &first).await.unwrap(), 2);
    let exported: Store = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    let source: Vec<Board> = raw_boards(LEGACY_FIELDS)
        .into_iter()
        .take(2)
        .map(|value| serde_json::from_value(value).unwrap())
        .collect();
    for board in &source {
        assert!(
            exported.boards.contains(board),
            "{} lost something",
            board.user_id
        );
    }
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(text.contains("\"legacyFlags\"") && text.contains("\"legacyColor\": \"#ff00aa\""));
    assert!(text.contains("12345678901") && text.contains("2.5"));

    // Imported again into an empty database and exported: the same bytes.
    let (_db2, pool2) = database().await;
    let sql2 = SqlBoards::new(pool2.clone());
    let again = migration::backfill(&first, &sql2, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((again.inserted, again.quarantined.len()), (2, 0));
    let second = scratch.path("second.json");
    migration::export(&sql2, &second).await.unwrap();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
}

/// Differences between the sample store and SQL a moment after backfilling it into a service
/// whose day close runs every 100 ms (`scheduled`) or is paused, as the legacy commands start
/// it, on a clock past every sample day.
async fn differences_after_backfill_into_a_service(scheduled: bool) -> usize {
    use phoenix_proto::missions::v1 as pb;
    use phoenix_proto::missions::v1::clock_service_client::ClockServiceClient;

    let service = phoenix_testkit::spawn_with(phoenix_missions::spec(), move |config| {
        config.service_args = vec![
            "--clock=manual".to_owned(),
            "--store-path=".to_owned(),
            "--day-close-interval=100ms".to_owned(),
            format!("--scheduled-jobs={scheduled}"),
        ];
    })
    .await;
    ClockServiceClient::new(service.channel.clone())
        .set_time(pb::SetTimeRequest {
            now: Some(prost_types::Timestamp {
                seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
                nanos: 0,
            }),
        })
        .await
        .expect("set the clock");
    let sql = SqlBoards::new(service.pool.clone());
    assert_eq!(backfill(SAMPLE, &sql).await.inserted, 12);
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    migration::compare_store(SAMPLE.as_ref(), &sql, "2025-s1", &[])
        .await
        .unwrap()
        .differences
        .len()
}

#[tokio::test]
async fn a_service_with_its_scheduled_jobs_paused_leaves_imported_boards_as_the_store_has_them() {
    assert_eq!(differences_after_backfill_into_a_service(false).await, 0);
    // The same with the jobs running: the day close rewrites the imported boards.
    assert!(differences_after_backfill_into_a_service(true).await > 0);
}

#[tokio::test]
async fn the_migration_service_answers_quarantined_boards_and_refuses_a_missing_store() {
    use phoenix_proto::missions::v1 as pb;
    use phoenix_proto::missions::v1::migration_service_client::MigrationServiceClient;

    let service = phoenix_testkit::spawn_with(phoenix_missions::spec(), |config| {
        config.service_args = vec![
            "--store-path=".to_owned(),
            "--scheduled-jobs=false".to_owned(),
        ];
    })
    .await;
    let mut migration = MigrationServiceClient::new(service.channel.clone());
    let backfill = migration
        .backfill(pb::BackfillRequest {
            store_path: MIXED.into(),
        })
        .await
        .expect("backfill")
        .into_inner();
    assert_eq!((backfill.read, backfill.inserted), (20, 3));
    assert_eq!(backfill.quarantined.len(), 17);
    let first = &backfill.quarantined[0];
    assert_eq!(first.location, "boards[1]");
    assert!(!first.user_id.is_empty());
    assert!(
        first
            .reason
            .contains("boards[1].slots[2].petalsTotal: must be at least 1, got 0 (OUT_OF_RANGE)"),
        "{}",
        first.reason
    );

    let compare = migration
        .compare(pb::CompareRequest {
            store_path: MIXED.into(),
            season_id: "2025-s1".into(),
            user_ids: vec![],
        })
        .await
        .expect("compare")
        .into_inner();
    assert_eq!(compare.compared, 3);
    assert!(compare.differences.is_empty(), "{:?}", compare.differences);
    assert_eq!(compare.quarantined.len(), 17);

    let missing = Scratch::new();
    let status = migration
        .compare(pb::CompareRequest {
            store_path: missing.path("missing.json").display().to_string(),
            season_id: "2025-s1".into(),
            user_ids: vec![],
        })
        .await
        .expect_err("no store");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(phoenix_testkit::reason(&status), "STORE_FILE_NOT_FOUND");
}
