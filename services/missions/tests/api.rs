//! The catalog, analytics, migration tooling and the FILE and DUAL repositories, through gRPC.

mod support;

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::analytics_service_client::AnalyticsServiceClient;
use phoenix_proto::missions::v1::migration_service_client::MigrationServiceClient;
use support::{Harness, SEASON, error_of, main_mission};
use tonic::Code;
use uuid::Uuid;

const SAMPLE_STORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/missions_v2_store.json"
);

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
    let (code, _, mut fields) = error_of(&status);
    fields.sort();
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(
        fields,
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
    assert_ne!(status.code(), Code::Internal, "{status:?}");

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
        .await;
    if let Err(status) = status {
        assert_ne!(status.code(), Code::Internal, "{status:?}");
    }
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
