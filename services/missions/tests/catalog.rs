//! The catalog's upserts against the rules of the catalog tables (migration 0002): every rule
//! the database keeps is the API's too, so a bad upsert is refused with every field at fault
//! and writes nothing, and none reaches the database to come back INTERNAL.

mod support;

use phoenix_proto::missions::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons, metadata};
use support::{Harness, main_mission};
use tonic::Code;
use uuid::Uuid;

/// Each BadRequest violation as (field, reason), sorted.
fn sorted_violations(status: &tonic::Status) -> Vec<(String, String)> {
    let mut violations = field_reasons(status);
    violations.sort();
    violations
}

fn expected(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = pairs
        .iter()
        .map(|(field, reason)| ((*field).to_owned(), (*reason).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

fn target(target_id: &str, name: &str) -> pb::MissionTarget {
    pb::MissionTarget {
        target_id: target_id.to_owned(),
        task_id: Uuid::new_v4().to_string(),
        name: name.to_owned(),
        tag: "test".into(),
        sort_order: 0,
    }
}

fn item(code: &str) -> pb::RewardItem {
    pb::RewardItem {
        code: code.to_owned(),
        quantity: 1,
    }
}

async fn catalog(h: &mut Harness) -> pb::GetCatalogResponse {
    h.catalog
        .get_catalog(pb::GetCatalogRequest {})
        .await
        .expect("catalog")
        .into_inner()
}

async fn refused_mission(h: &mut Harness, mission: pb::Mission) -> tonic::Status {
    h.catalog
        .upsert_mission(pb::UpsertMissionRequest {
            mission: Some(mission),
        })
        .await
        .expect_err("the tables cannot hold the mission")
}

async fn upsert_badge(h: &mut Harness, code: &str, name: &str) -> pb::Badge {
    h.catalog
        .upsert_badge(pb::UpsertBadgeRequest {
            badge: Some(pb::Badge {
                code: code.to_owned(),
                name: name.to_owned(),
                ..Default::default()
            }),
        })
        .await
        .expect("upsert the badge")
        .into_inner()
        .badge
        .expect("badge")
}

#[tokio::test]
async fn a_mission_breaking_the_tables_rules_is_refused_with_every_field_and_writes_nothing() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let badge = upsert_badge(&mut h, "rules-badge", "Rules").await.badge_id;
    let before = catalog(&mut h).await;
    let target_id = Uuid::now_v7().to_string();
    let mut mission = main_mission(7, 7);
    mission.name = "n".repeat(201);
    mission.metadata_json = r#"{"note": "a\u0000b"}"#.into();
    mission.badge_ids = vec![badge.clone(), badge];
    mission.targets = vec![target(&target_id, "first"), target(&target_id, "second")];
    mission.reward = Some(pb::Reward {
        xp: 10,
        items: vec![item("nul\u{0}inside"), item(&"c".repeat(101))],
        ..Default::default()
    });

    let status = refused_mission(&mut h, mission).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        sorted_violations(&status),
        expected(&[
            ("mission.name", "TOO_LONG"),
            ("mission.metadata_json", "NUL_CHARACTER"),
            ("mission.badge_ids[1]", "DUPLICATE_ID"),
            ("mission.targets[1].target_id", "DUPLICATE_ID"),
            ("mission.reward.items[0].code", "CONTROL_CHARACTER"),
            ("mission.reward.items[1].code", "TOO_LONG"),
        ])
    );
    assert_eq!(catalog(&mut h).await, before, "nothing was written");

    // A NUL escaped in a key, deep inside, is found too.
    let mut mission = main_mission(7, 7);
    mission.metadata_json = r#"{"list": [1, {"k\u0000": true}]}"#.into();
    let status = refused_mission(&mut h, mission).await;
    assert_refused(&status, Code::InvalidArgument, "NUL_CHARACTER");
    assert_eq!(
        sorted_violations(&status),
        expected(&[("mission.metadata_json", "NUL_CHARACTER")])
    );
}

#[tokio::test]
async fn the_limits_are_the_tables_and_counted_in_characters() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let code = "é".repeat(100);
    let name = "ñ".repeat(200);
    let badge = upsert_badge(&mut h, &code, &name).await;
    assert_eq!((badge.code, badge.name), (code, name.clone()));
    let mut mission = main_mission(7, 7);
    mission.name = name.clone();
    mission.targets = (0..100).map(|i| target("", &format!("t{i}"))).collect();
    mission.reward = Some(pb::Reward {
        items: (0..100).map(|i| item(&format!("item-{i}"))).collect(),
        ..Default::default()
    });
    let stored = h.upsert_mission(mission).await;
    assert_eq!(stored.name, name);
    assert_eq!(stored.targets.len(), 100);
}

#[tokio::test]
async fn badges_effects_and_bosses_breaking_the_tables_rules_are_refused_with_every_field() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let before = catalog(&mut h).await;
    let status = h
        .catalog
        .upsert_badge(pb::UpsertBadgeRequest {
            badge: Some(pb::Badge {
                code: "c".repeat(101),
                name: "n".repeat(201),
                ..Default::default()
            }),
        })
        .await
        .expect_err("too long for the badges table");
    assert_refused(&status, Code::InvalidArgument, "TOO_LONG");
    assert_eq!(
        sorted_violations(&status),
        expected(&[("badge.code", "TOO_LONG"), ("badge.name", "TOO_LONG")])
    );

    let status = h
        .catalog
        .upsert_effect(pb::UpsertEffectRequest {
            effect: Some(pb::EffectDefinition {
                kind: pb::EffectKind::Amulet.into(),
                name: "n".repeat(201),
                payload_json: r#"{"protectsDay": true, "notes": ["\u0000"]}"#.into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("the effects table cannot hold it");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        sorted_violations(&status),
        expected(&[
            ("effect.name", "TOO_LONG"),
            ("effect.payload_json", "NUL_CHARACTER")
        ])
    );

    let status = h
        .catalog
        .upsert_boss(pb::UpsertBossRequest {
            boss: Some(pb::Boss {
                code: "c".repeat(101),
                name: "n".repeat(201),
                shield_max: 5,
                reward: Some(pb::Reward {
                    items: vec![item("a\u{0}")],
                    ..Default::default()
                }),
                metadata_json: r#"{"\u0000": 1}"#.into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("the bosses table cannot hold it");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        sorted_violations(&status),
        expected(&[
            ("boss.code", "TOO_LONG"),
            ("boss.name", "TOO_LONG"),
            ("boss.metadata_json", "NUL_CHARACTER"),
            ("boss.reward.items[0].code", "CONTROL_CHARACTER"),
        ])
    );
    assert_eq!(catalog(&mut h).await, before, "nothing was written");
}

#[tokio::test]
async fn more_targets_badges_or_items_than_a_mission_holds_are_refused() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    // Past what the smallint `position` of a mission's targets can number.
    let mut mission = main_mission(7, 7);
    mission.targets = (0..40_000).map(|_| target("", "t")).collect();
    let status = refused_mission(&mut h, mission).await;
    assert_refused(&status, Code::InvalidArgument, "TOO_MANY");
    assert_eq!(
        sorted_violations(&status),
        expected(&[("mission.targets", "TOO_MANY")])
    );

    let mut mission = main_mission(7, 7);
    mission.badge_ids = (0..101).map(|_| Uuid::new_v4().to_string()).collect();
    mission.reward = Some(pb::Reward {
        items: (0..101).map(|i| item(&format!("item-{i}"))).collect(),
        ..Default::default()
    });
    let status = refused_mission(&mut h, mission).await;
    assert_refused(&status, Code::InvalidArgument, "TOO_MANY");
    assert_eq!(
        sorted_violations(&status),
        expected(&[
            ("mission.badge_ids", "TOO_MANY"),
            ("mission.reward.items", "TOO_MANY")
        ])
    );
}

#[tokio::test]
async fn a_target_id_of_another_mission_is_taken_and_the_mission_keeps_its_own() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let mut first = main_mission(7, 7);
    first.targets = vec![target("", "first's")];
    let first = h.upsert_mission(first).await;
    let taken = first.targets[0].target_id.clone();
    let before = catalog(&mut h).await;

    let mut second = main_mission(8, 8);
    second.targets = vec![target(&taken, "second's"), target("", "fresh")];
    let status = refused_mission(&mut h, second).await;
    assert_refused(&status, Code::AlreadyExists, "TARGET_ID_TAKEN");
    assert_eq!(
        sorted_violations(&status),
        expected(&[("mission.targets[0].target_id", "TARGET_ID_TAKEN")])
    );
    assert_eq!(
        metadata(&status, "mission_id").as_deref(),
        Some(first.mission_id.as_str())
    );
    assert_eq!(catalog(&mut h).await, before, "nothing was written");

    // The mission that has it upserts it again, as often as it likes.
    let again = h.upsert_mission(first.clone()).await;
    assert_eq!(again, first);
}
