//! The catalog, analytics, migration tooling and the FILE and DUAL repositories, through gRPC.

mod samples;
mod support;

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::analytics_service_client::AnalyticsServiceClient;
use phoenix_proto::missions::v1::migration_service_client::MigrationServiceClient;
use phoenix_testkit::{assert_refused, fields};
use samples::{EVENTS, SAMPLE as SAMPLE_STORE, board_in, sample};
use support::{Harness, SEASON, main_mission};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn the_default_catalog_is_there_and_upserts_are_validated() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let catalog = h
        .catalog
        .get_catalog(pb::GetCatalogRequest {})
        .await
        .expect("catalog")
        .into_inner();
    for slot in [pb::SlotKey::Main, pb::SlotKey::Hunt, pb::SlotKey::Skill] {
        assert!(
            catalog
                .missions
                .iter()
                .any(|m| m.slot_key() == slot && m.active),
            "the default catalog offers {slot:?}"
        );
    }
    assert!(
        catalog
            .effects
            .iter()
            .any(|e| e.payload_json.contains("protectsDay"))
    );
    assert!(!catalog.bosses.is_empty());

    let mut bad = main_mission(0, 0);
    bad.slot_key = 0;
    bad.name = " ".into();
    bad.metadata_json = "[1]".into();
    let status = h
        .catalog
        .upsert_mission(pb::UpsertMissionRequest { mission: Some(bad) })
        .await
        .expect_err("invalid mission");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    let mut named = fields(&status);
    named.sort();
    assert_eq!(
        named,
        vec![
            "mission.duration_days",
            "mission.metadata_json",
            "mission.name",
            "mission.progress_target",
            "mission.slot_key"
        ]
    );

    let mut unknown_badge = main_mission(7, 7);
    unknown_badge.badge_ids = vec![Uuid::new_v4().to_string()];
    let status = h
        .catalog
        .upsert_mission(pb::UpsertMissionRequest {
            mission: Some(unknown_badge),
        })
        .await
        .expect_err("unknown badge");
    assert_refused(&status, Code::InvalidArgument, "UNKNOWN_BADGE");
    assert_eq!(fields(&status), ["mission.badge_ids"]);

    let id = h.only_mission(main_mission(9, 90)).await;
    let catalog = h
        .catalog
        .get_catalog(pb::GetCatalogRequest {})
        .await
        .expect("catalog")
        .into_inner();
    let stored = catalog
        .missions
        .iter()
        .find(|m| m.mission_id == id)
        .expect("the upserted mission");
    assert_eq!((stored.duration_days, stored.progress_target), (9, 90));
}

#[tokio::test]
async fn analytics_count_heartbeats_and_rewards_after_a_refresh() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(7, 2)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "UTC").await;
    let run = h.activate_main(user).await;
    h.heartbeat(user, &run).await;
    h.missions
        .record_progress(pb::RecordProgressRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
            current: 2,
        })
        .await
        .expect("progress");
    h.missions
        .claim_run(pb::ClaimRunRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run,
        })
        .await
        .expect("claim");

    let mut analytics = AnalyticsServiceClient::new(h.service.channel.clone());
    let before = analytics
        .list_weekly_rewards(pb::ListWeeklyRewardsRequest {
            user_id: user.to_string(),
            ..Default::default()
        })
        .await
        .expect("rewards")
        .into_inner();
    assert!(before.rows.is_empty(), "not refreshed yet");
    analytics
        .refresh_analytics(pb::RefreshAnalyticsRequest {})
        .await
        .expect("refresh");
    let rewards = analytics
        .list_weekly_rewards(pb::ListWeeklyRewardsRequest {
            user_id: user.to_string(),
            ..Default::default()
        })
        .await
        .expect("rewards")
        .into_inner()
        .rows;
    assert_eq!(rewards.len(), 1);
    assert_eq!((rewards[0].xp_total, rewards[0].claims), (120, 1));
    let adherence = analytics
        .list_weekly_adherence(pb::ListWeeklyAdherenceRequest {
            user_id: user.to_string(),
            ..Default::default()
        })
        .await
        .expect("adherence")
        .into_inner()
        .rows;
    assert_eq!(adherence.len(), 1);
    assert_eq!(adherence[0].heartbeat_days, 1);
    assert_eq!(adherence[0].week, "2026-06-01");

    let status = analytics
        .list_weekly_adherence(pb::ListWeeklyAdherenceRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_sample_store_backfills_compares_clean_audits_clean_and_exports_back() {
    let h = Harness::start("2026-06-01T12:00:00Z").await;
    let mut migration = MigrationServiceClient::new(h.service.channel.clone());
    let backfill = migration
        .backfill(pb::BackfillRequest {
            store_path: SAMPLE_STORE.into(),
        })
        .await
        .expect("backfill")
        .into_inner();
    assert_eq!(
        (backfill.read, backfill.inserted, backfill.skipped),
        (12, 12, 0)
    );
    assert!(
        backfill.quarantined.is_empty(),
        "{:?}",
        backfill.quarantined
    );
    let again = migration
        .backfill(pb::BackfillRequest {
            store_path: SAMPLE_STORE.into(),
        })
        .await
        .expect("backfill again")
        .into_inner();
    assert_eq!((again.inserted, again.skipped), (0, 12), "idempotent");

    for season in ["2024-s4", "2025-s1"] {
        let compare = migration
            .compare(pb::CompareRequest {
                store_path: SAMPLE_STORE.into(),
                season_id: season.into(),
                user_ids: vec![],
            })
            .await
            .expect("compare")
            .into_inner();
        assert!(compare.compared > 0);
        assert!(compare.differences.is_empty(), "{:?}", compare.differences);
    }
    let audit = migration
        .audit(pb::AuditRequest {})
        .await
        .expect("audit")
        .into_inner();
    assert_eq!(audit.boards, 12);
    assert!(audit.violations.is_empty(), "{:?}", audit.violations);

    let exported = h.store_dir.0.join("exported.json");
    let export = migration
        .export(pb::ExportRequest {
            store_path: exported.display().to_string(),
        })
        .await
        .expect("export")
        .into_inner();
    assert_eq!(export.boards, 12);
    let original: phoenix_missions::domain::board::Store =
        serde_json::from_slice(&std::fs::read(SAMPLE_STORE).unwrap()).unwrap();
    let mut back: phoenix_missions::domain::board::Store =
        serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    let mut boards = original.boards.clone();
    boards.sort_by_key(|b| b.key());
    back.boards.sort_by_key(|b| b.key());
    assert_eq!(back.boards, boards, "FILE → SQL → FILE changes nothing");

    let status = migration
        .backfill(pb::BackfillRequest {
            store_path: "/nonexistent/missions.json".into(),
        })
        .await
        .expect_err("no such store");
    assert_refused(&status, Code::NotFound, "STORE_FILE_NOT_FOUND");
}

/// The board of `user_id` in `season_id`, as GetBoard shows it.
async fn board_of(h: &mut Harness, user_id: Uuid, season_id: &str) -> pb::Board {
    h.missions
        .get_board(pb::GetBoardRequest {
            user_id: user_id.to_string(),
            season_id: season_id.into(),
        })
        .await
        .expect("get the board")
        .into_inner()
        .board
        .expect("board")
}

#[tokio::test]
async fn rebuild_from_events_applies_the_log_once_and_quarantines_bad_lines_by_number() {
    // Shortly after the log's last event, so the boards read back as the users saw them then.
    let mut h = Harness::start("2025-03-12T09:00:00Z").await;
    let mut migration = MigrationServiceClient::new(h.service.channel.clone());
    migration
        .backfill(pb::BackfillRequest {
            store_path: SAMPLE_STORE.into(),
        })
        .await
        .expect("backfill");
    let joao = board_in(&sample(), "America/Sao_Paulo").key();
    let lucia = board_in(&sample(), "Europe/Madrid").key();
    let main_run = |board: &pb::Board| board.slots[0].run.clone().expect("the main slot's run");
    let before = main_run(&board_of(&mut h, joao.user_id, &joao.season_id).await);
    assert!(!before.heartbeat_today, "the log has today's heartbeat");
    assert!(before.progress.expect("progress").current < 300);
    let rebuild = pb::RebuildFromEventsRequest {
        log_path: EVENTS.into(),
    };

    let first = migration
        .rebuild_from_events(rebuild.clone())
        .await
        .expect("rebuild")
        .into_inner();
    let second = migration
        .rebuild_from_events(rebuild)
        .await
        .expect("rebuild again")
        .into_inner();

    assert_eq!(
        (first.read, first.applied, first.already_applied),
        (14, 4, 4),
        "{first:?}"
    );
    assert_eq!(
        (second.read, second.applied, second.already_applied),
        (14, 0, 8),
        "nothing new the second time: {second:?}"
    );
    let quarantined = |response: &pb::RebuildFromEventsResponse| -> Vec<(String, String)> {
        response
            .quarantined
            .iter()
            .map(|q| (q.location.clone(), q.user_id.clone()))
            .collect()
    };
    let utc = board_in(&sample(), "UTC").user_id.to_string();
    let no_board = "0195d3a0-0000-7000-8000-0000000000aa";
    let joao_id = joao.user_id.to_string();
    let expected: Vec<(String, String)> = [
        ("line 10", utc.as_str()),
        // Not JSON at all: no user to name.
        ("line 11", ""),
        ("line 12", utc.as_str()),
        ("line 13", utc.as_str()),
        ("line 14", no_board),
        ("line 15", joao_id.as_str()),
    ]
    .into_iter()
    .map(|(line, user)| (line.to_owned(), user.to_owned()))
    .collect();
    assert_eq!(quarantined(&first), expected);
    assert_eq!(quarantined(&second), expected, "bad lines stay bad");
    assert!(
        first.quarantined[1].reason.contains("not a missions event"),
        "{:?}",
        first.quarantined[1]
    );

    let board = board_of(&mut h, joao.user_id, &joao.season_id).await;
    let run = main_run(&board);
    assert!(run.heartbeat_today);
    assert!(run.heartbeats.iter().any(|beat| beat.date == "2025-03-12"));
    assert_eq!(run.progress.expect("progress").current, 300);
    assert!(
        board.boss.expect("boss").complete_time.is_some(),
        "the proof completed the boss"
    );
    let board = board_of(&mut h, lucia.user_id, &lucia.season_id).await;
    assert_eq!(board.boss.expect("boss").shield_current, 4);
}

#[tokio::test]
async fn the_file_repository_keeps_boards_across_a_restart() {
    let mut h = Harness::with_repo("FILE", "2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(7, 7)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "Europe/Madrid").await;
    let run = h.activate_main(user).await;
    h.heartbeat(user, &run).await;
    let store = std::fs::read_to_string(h.store_dir.0.join("missions_v2_store.json"))
        .expect("the store file");
    assert!(store.contains(&user.to_string()));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM missions_v2_state")
        .fetch_one(&h.service.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "FILE writes no SQL");

    let Harness {
        service, store_dir, ..
    } = h;
    let service = service.restart().await;
    let mut h = Harness::on(service, store_dir).await;
    h.set_time("2026-06-01T13:00:00Z").await;
    let board = h.board(user).await;
    assert!(board.slots[0].run.as_ref().expect("run").heartbeat_today);
}

#[tokio::test]
async fn dual_writes_both_stores_and_they_agree() {
    let mut h = Harness::with_repo("DUAL", "2026-06-01T12:00:00Z").await;
    let user = Uuid::new_v4();
    h.create_board(user, "Asia/Kolkata").await;
    let run = h.activate_main(user).await;
    h.heartbeat(user, &run).await;
    let store = std::fs::read_to_string(h.store_dir.0.join("missions_v2_store.json"))
        .expect("the store file");
    assert!(store.contains(&run));
    let heartbeats: i64 =
        sqlx::query_scalar("SELECT count(*) FROM missions_v2_heartbeat_log WHERE run_id = $1")
            .bind(Uuid::parse_str(&run).unwrap())
            .fetch_one(&h.service.pool)
            .await
            .unwrap();
    assert_eq!(heartbeats, 1);
    let divergences: i64 = sqlx::query_scalar("SELECT count(*) FROM missions_v2_divergences")
        .fetch_one(&h.service.pool)
        .await
        .unwrap();
    assert_eq!(divergences, 0);

    let mut migration = MigrationServiceClient::new(h.service.channel.clone());
    let compare = migration
        .compare(pb::CompareRequest {
            store_path: h
                .store_dir
                .0
                .join("missions_v2_store.json")
                .display()
                .to_string(),
            season_id: SEASON.into(),
            user_ids: vec![user.to_string()],
        })
        .await
        .expect("compare")
        .into_inner();
    assert_eq!(compare.compared, 1);
    assert!(compare.differences.is_empty(), "{:?}", compare.differences);
}

// Defects of issue 10: each test failed before its fix.

#[tokio::test]
async fn the_clock_refuses_steps_and_times_outside_the_years_1_to_9999() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let advance = |seconds: i64| pb::AdvanceTimeRequest {
        by: Some(prost_types::Duration { seconds, nanos: 0 }),
    };
    let set = |seconds: i64| pb::SetTimeRequest {
        now: Some(prost_types::Timestamp { seconds, nanos: 0 }),
    };

    let status = h
        .clock
        .advance_time(advance(1_000_000_000_000_000))
        .await
        .expect_err("10^15 seconds is no step for a clock");
    assert_refused(&status, Code::InvalidArgument, "INVALID_DURATION");
    assert_eq!(fields(&status), ["by"]);
    let status = h
        .clock
        .advance_time(pb::AdvanceTimeRequest { by: None })
        .await
        .expect_err("no step");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    // Year 10000, and year 0.
    for seconds in [253_402_300_800, -62_135_596_801] {
        let status = h
            .clock
            .set_time(set(seconds))
            .await
            .expect_err("outside the years 1 to 9999");
        assert_refused(&status, Code::InvalidArgument, "INVALID_TIMESTAMP");
        assert_eq!(fields(&status), ["now"]);
    }
    // A step from 9999-12-31 that would leave the year 9999 is refused too, and moves nothing.
    let last_day = 253_402_214_400;
    h.clock.set_time(set(last_day)).await.expect("9999-12-31");
    let status = h
        .clock
        .advance_time(advance(2 * 86_400))
        .await
        .expect_err("past 9999-12-31");
    assert_refused(&status, Code::InvalidArgument, "CLOCK_OUT_OF_RANGE");
    assert_eq!(fields(&status), ["by"]);
    let now = h
        .clock
        .get_time(pb::GetTimeRequest {})
        .await
        .expect("time")
        .into_inner()
        .now
        .expect("now");
    assert_eq!(now.seconds, last_day);
    h.clock
        .advance_time(advance(3600))
        .await
        .expect("within the last day");
}

#[tokio::test]
async fn backfill_and_rebuild_refuse_a_missing_path_and_do_not_find_a_nonexistent_one() {
    // No default store: the configured path is empty too.
    let service = phoenix_testkit::spawn_with(phoenix_missions::spec(), |config| {
        config.service_args = vec!["--clock=manual".to_owned(), "--store-path=".to_owned()];
    })
    .await;
    let mut migration = MigrationServiceClient::new(service.channel.clone());
    let status = migration
        .backfill(pb::BackfillRequest {
            store_path: " ".into(),
        })
        .await
        .expect_err("no store named and none configured");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    assert_eq!(fields(&status), ["store_path"]);
    let status = migration
        .rebuild_from_events(pb::RebuildFromEventsRequest {
            log_path: String::new(),
        })
        .await
        .expect_err("no log named");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    assert_eq!(fields(&status), ["log_path"]);

    let nowhere = std::env::temp_dir().join(format!("phoenix-missions-{}", Uuid::new_v4()));
    let status = migration
        .backfill(pb::BackfillRequest {
            store_path: nowhere.join("store.json").display().to_string(),
        })
        .await
        .expect_err("no such store");
    assert_refused(&status, Code::NotFound, "STORE_FILE_NOT_FOUND");
    let status = migration
        .rebuild_from_events(pb::RebuildFromEventsRequest {
            log_path: nowhere.join("events.ndjson").display().to_string(),
        })
        .await
        .expect_err("no such log");
    assert_refused(&status, Code::NotFound, "EVENT_LOG_NOT_FOUND");

    // A file that is not a store is the caller's to fix, not a reason to retry.
    let folder = support::tempdir::Dir::new();
    let not_a_store = folder.0.join("not-a-store.json");
    std::fs::write(&not_a_store, br#"[{"boardId": 1}]"#).expect("write");
    let status = migration
        .backfill(pb::BackfillRequest {
            store_path: not_a_store.display().to_string(),
        })
        .await
        .expect_err("not a store");
    assert_refused(&status, Code::FailedPrecondition, "INVALID_STORE_FILE");
    // A folder where the file should be is the caller's to fix too: retrying cannot help.
    let status = migration
        .backfill(pb::BackfillRequest {
            store_path: folder.0.display().to_string(),
        })
        .await
        .expect_err("a folder is no file");
    assert_refused(&status, Code::InvalidArgument, "PATH_IS_DIRECTORY");
    assert_eq!(fields(&status), ["store_path"]);
    service.shutdown().await;
}

/// The refusal of a migration call with one path: Backfill, RebuildFromEvents or Export.
async fn path_refused(
    migration: &mut MigrationServiceClient<tonic::transport::Channel>,
    call: &str,
    path: &str,
) -> tonic::Status {
    let path = path.to_owned();
    let answer = match call {
        "backfill" => migration
            .backfill(pb::BackfillRequest { store_path: path })
            .await
            .map(drop),
        "rebuild" => migration
            .rebuild_from_events(pb::RebuildFromEventsRequest { log_path: path })
            .await
            .map(drop),
        "export" => migration
            .export(pb::ExportRequest { store_path: path })
            .await
            .map(drop),
        other => panic!("no migration call {other}"),
    };
    answer.expect_err("a path that cannot be right")
}

#[tokio::test]
async fn a_path_that_cannot_be_right_is_the_callers_error_naming_the_field() {
    let h = Harness::start("2026-06-01T12:00:00Z").await;
    let mut migration = MigrationServiceClient::new(h.service.channel.clone());
    let folder = h.store_dir.0.display().to_string();
    let nul = format!("{folder}/store\u{0}.json");
    let long_name = format!("{folder}/{}.json", "n".repeat(2_000));
    let huge = format!("/{}", "p".repeat(20_000));
    let plain = h.store_dir.0.join("plain.txt");
    std::fs::write(&plain, b"a file").expect("write");
    let under_a_file = format!("{}/store.json", plain.display());
    // A folder is no file, and a file no folder; the root names no file at all; no file system
    // has a NUL in a name, or a name of 2,000 characters; and no path is 20,000 characters long
    // (refused without being echoed).
    let cases = [
        (
            "backfill",
            &under_a_file,
            "PATH_NOT_A_DIRECTORY",
            "store_path",
        ),
        (
            "export",
            &under_a_file,
            "PATH_NOT_A_DIRECTORY",
            "store_path",
        ),
        ("rebuild", &folder, "PATH_IS_DIRECTORY", "log_path"),
        ("backfill", &folder, "PATH_IS_DIRECTORY", "store_path"),
        ("export", &folder, "PATH_IS_DIRECTORY", "store_path"),
        ("export", &"/".to_owned(), "INVALID_PATH", "store_path"),
        ("backfill", &nul, "INVALID_PATH", "store_path"),
        ("rebuild", &nul, "INVALID_PATH", "log_path"),
        ("backfill", &long_name, "INVALID_PATH", "store_path"),
        ("backfill", &huge, "TOO_LONG", "store_path"),
    ];
    for (call, path, reason, field) in cases {
        let status = path_refused(&mut migration, call, path).await;
        assert_refused(&status, Code::InvalidArgument, reason);
        assert_eq!(fields(&status), [field], "{call} {reason}");
        assert!(status.message().len() < 300, "{}", status.message());
    }
    let status = migration
        .compare(pb::CompareRequest {
            store_path: folder.clone(),
            season_id: SEASON.into(),
            user_ids: vec![],
        })
        .await
        .expect_err("a folder is no store");
    assert_refused(&status, Code::InvalidArgument, "PATH_IS_DIRECTORY");
    assert_eq!(fields(&status), ["store_path"]);
    assert!(h.store_dir.0.is_dir(), "the folder is still a folder");

    // A log that is not text is no log.
    let binary = h.store_dir.0.join("events.bin");
    std::fs::write(&binary, [0xff, 0xfe, b'\n']).expect("write");
    let status = path_refused(&mut migration, "rebuild", &binary.display().to_string()).await;
    assert_refused(&status, Code::FailedPrecondition, "INVALID_EVENT_LOG");
    // A long path that may be right is echoed, cut.
    let long = format!(
        "{folder}/{}/store.json",
        vec!["d".repeat(200); 10].join("/")
    );
    let status = path_refused(&mut migration, "backfill", &long).await;
    assert_refused(&status, Code::NotFound, "STORE_FILE_NOT_FOUND");
    assert!(
        status.message().contains("characters)") && status.message().len() < 300,
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn analytics_refuse_weeks_outside_the_years_1_to_9999() {
    let h = Harness::start("2026-06-01T12:00:00Z").await;
    let mut analytics = AnalyticsServiceClient::new(h.service.channel.clone());
    let user = Uuid::new_v4().to_string();
    for week in ["-5000-01-01", "0000-12-27", "10000-01-03"] {
        for user_id in [String::new(), user.clone()] {
            let status = analytics
                .list_weekly_adherence(pb::ListWeeklyAdherenceRequest {
                    user_id: user_id.clone(),
                    from_week: week.into(),
                    ..Default::default()
                })
                .await
                .expect_err("no such week");
            assert_refused(&status, Code::InvalidArgument, "INVALID_DATE");
            assert_eq!(fields(&status), ["from_week"], "{week}");
            let status = analytics
                .list_weekly_rewards(pb::ListWeeklyRewardsRequest {
                    user_id: user_id.clone(),
                    page_token: format!("{week}.{}", Uuid::new_v4().simple()),
                    ..Default::default()
                })
                .await
                .expect_err("no such page");
            assert_refused(&status, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
            assert_eq!(fields(&status), ["page_token"], "{week}");
        }
    }
    // The first and the last day of the range are weeks to list from.
    for week in ["0001-01-01", "9999-12-27"] {
        analytics
            .list_weekly_adherence(pb::ListWeeklyAdherenceRequest {
                from_week: week.into(),
                ..Default::default()
            })
            .await
            .expect("a week within range");
    }
}

/// Every timestamp of a board as GetBoard shows it.
fn board_timestamps(board: &pb::Board) -> Vec<prost_types::Timestamp> {
    let mut times = vec![board.next_reset_time, board.create_time, board.update_time];
    for slot in &board.slots {
        times.extend([slot.cooldown_until, slot.reroll_reset_time]);
        if let Some(run) = &slot.run {
            times.extend([
                run.select_time,
                run.expire_time,
                run.complete_time,
                run.fail_time,
            ]);
            times.extend(run.heartbeats.iter().map(|beat| beat.create_time));
        }
    }
    times.extend(
        board
            .active_effects
            .iter()
            .flat_map(|e| [e.active_from, e.active_until]),
    );
    times.extend(board.claims.iter().map(|c| c.claim_time));
    times.extend(board.communications.iter().map(|c| c.create_time));
    times.into_iter().flatten().collect()
}

#[tokio::test]
async fn no_answer_carries_a_time_past_9999_when_the_clock_is_at_its_end() {
    // Noon of 9999-12-31: the next local midnight, a run's end and a reroll's return all fall
    // in the year 10000, which no protobuf Timestamp can hold; they are shown as the last
    // instant there is (in microseconds, what the service keeps).
    let mut h = Harness::start("9999-12-31T12:00:00Z").await;
    h.only_mission(main_mission(7, 7)).await;
    let last = prost_types::Timestamp {
        seconds: 253_402_300_799,
        nanos: 999_999_000,
    };
    let first = prost_types::Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    };
    for zone in ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"] {
        let user = Uuid::new_v4();
        h.create_board(user, zone).await;
        let run = h.activate_main(user).await;
        h.heartbeat(user, &run).await;
        h.missions
            .reroll(pb::RerollRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
                slot_key: pb::SlotKey::Hunt.into(),
            })
            .await
            .expect("reroll");
        let board = h.board(user).await;
        let times = board_timestamps(&board);
        assert!(times.len() >= 7, "{zone}: {times:?}");
        for time in times {
            assert!(
                (first.seconds..=last.seconds).contains(&time.seconds)
                    && (0..1_000_000_000).contains(&time.nanos),
                "{zone}: {time:?} is outside 0001-01-01..9999-12-31"
            );
        }
        assert_eq!(board.next_reset_time, Some(last), "{zone}");
    }
}
