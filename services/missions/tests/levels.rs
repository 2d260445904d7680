//! The level curve (GetLevelCurve, SetLevelCurve, ResolveLevel) and ListUserBadges, through a
//! real client against a real server and database.

mod support;

use phoenix_proto::missions::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons};
use support::{Harness, SEASON, main_mission};
use tonic::Code;
use uuid::Uuid;

fn level(level: i32, min_xp: i64) -> pb::Level {
    pb::Level {
        level,
        min_xp,
        name: format!("L{level}"),
    }
}

async fn resolve(h: &mut Harness, xp: i64) -> pb::ResolveLevelResponse {
    h.catalog
        .resolve_level(pb::ResolveLevelRequest { xp })
        .await
        .expect("resolve")
        .into_inner()
}

#[tokio::test]
async fn the_default_curve_resolves_balances_and_a_new_curve_replaces_it() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let curve = h
        .catalog
        .get_level_curve(pb::GetLevelCurveRequest {})
        .await
        .expect("curve")
        .into_inner()
        .levels;
    assert_eq!(curve.len(), 10);
    assert_eq!((curve[0].level, curve[0].min_xp), (1, 0));
    assert_eq!((curve[1].level, curve[1].min_xp), (2, 100));

    let at_zero = resolve(&mut h, 0).await;
    assert_eq!(at_zero.level.unwrap().level, 1);
    assert_eq!(at_zero.next_level.unwrap().min_xp, 100);
    assert_eq!(resolve(&mut h, 299).await.level.unwrap().level, 2);

    let stored = h
        .catalog
        .set_level_curve(pb::SetLevelCurveRequest {
            levels: vec![level(1, 0), level(2, 50)],
        })
        .await
        .expect("set the curve")
        .into_inner()
        .levels;
    assert_eq!(stored, vec![level(1, 0), level(2, 50)]);
    let top = resolve(&mut h, 10_000).await;
    assert_eq!(top.level.unwrap().level, 2);
    assert!(top.next_level.is_none(), "level 2 is the top now");
}

#[tokio::test]
async fn a_bad_curve_is_refused_level_by_level_and_changes_nothing() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let status = h
        .catalog
        .set_level_curve(pb::SetLevelCurveRequest {
            levels: vec![level(1, 10), level(3, 20), level(3, 20)],
        })
        .await
        .expect_err("a bad curve");
    assert_refused(&status, Code::InvalidArgument, "FIRST_LEVEL_NOT_ZERO");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "levels[0].min_xp".to_owned(),
                "FIRST_LEVEL_NOT_ZERO".to_owned()
            ),
            (
                "levels[1].level".to_owned(),
                "LEVELS_NOT_CONSECUTIVE".to_owned()
            ),
            (
                "levels[2].min_xp".to_owned(),
                "XP_NOT_INCREASING".to_owned()
            ),
        ]
    );
    let empty = h
        .catalog
        .set_level_curve(pb::SetLevelCurveRequest { levels: vec![] })
        .await
        .expect_err("an empty curve");
    assert_refused(&empty, Code::InvalidArgument, "REQUIRED");
    let negative = h
        .catalog
        .resolve_level(pb::ResolveLevelRequest { xp: -1 })
        .await
        .expect_err("negative xp");
    assert_refused(&negative, Code::InvalidArgument, "NEGATIVE_XP");
    assert_eq!(
        resolve(&mut h, 100).await.level.unwrap().level,
        2,
        "unchanged"
    );
}

#[tokio::test]
async fn the_database_refuses_a_curve_with_a_gap_whatever_writes_it() {
    let h = Harness::start("2026-06-01T12:00:00Z").await;
    let error = sqlx::query("DELETE FROM missions_v2_levels WHERE level = 5")
        .execute(&h.service.pool)
        .await
        .expect_err("a gap in the curve");
    assert!(error.to_string().contains("level curve"), "{error}");
}

#[tokio::test]
async fn a_users_badges_are_the_badges_their_claims_granted() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let badge = h
        .catalog
        .upsert_badge(pb::UpsertBadgeRequest {
            badge: Some(pb::Badge {
                code: "first-run".into(),
                name: "First run".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("badge")
        .into_inner()
        .badge
        .unwrap()
        .badge_id;
    let mut mission = main_mission(7, 1);
    mission.reward.as_mut().unwrap().badge_id = badge.clone();
    h.only_mission(mission).await;
    let user = Uuid::new_v4();
    let list = |user: Uuid| pb::ListUserBadgesRequest {
        user_id: user.to_string(),
    };
    assert!(
        h.missions
            .list_user_badges(list(user))
            .await
            .expect("no boards yet")
            .into_inner()
            .badges
            .is_empty()
    );
    h.create_board(user, "UTC").await;
    let run = h.activate_main(user).await;
    h.missions
        .record_progress(pb::RecordProgressRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
            current: 1,
        })
        .await
        .expect("progress");
    let claim = h
        .missions
        .claim_run(pb::ClaimRunRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run,
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .unwrap();
    let badges = h
        .missions
        .list_user_badges(list(user))
        .await
        .expect("badges")
        .into_inner()
        .badges;
    assert_eq!(badges.len(), 1);
    assert_eq!(badges[0].badge_id, badge);
    assert_eq!(badges[0].season_id, SEASON);
    assert_eq!(badges[0].claim_id, claim.claim_id);

    let status = h
        .missions
        .list_user_badges(pb::ListUserBadgesRequest {
            user_id: "nope".into(),
        })
        .await
        .expect_err("a bad id");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
}
