//! With authentication on: a user acts on its own board and reads its own analytics only, the
//! admin role on every board and every user's analytics, and the clock and the tooling need
//! the admin role.

mod support;

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::analytics_service_client::AnalyticsServiceClient;
use phoenix_proto::missions::v1::clock_service_client::ClockServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_testkit::{TEST_SECRET, TestService, assert_refused, metadata, signed};
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use uuid::Uuid;

use support::{SEASON, tempdir};

const ADMIN_ROLE: &str = "missions-admin";

/// `authorization: Bearer <JWT>` for `subject` with `roles`.
fn bearer(subject: &str, roles: &[&str]) -> MetadataValue<Ascii> {
    phoenix_testkit::bearer(
        TEST_SECRET,
        serde_json::json!({"sub": subject, "roles": roles}),
    )
}

struct Authenticated {
    service: TestService,
    missions: MissionsServiceClient<Channel>,
    clock: ClockServiceClient<Channel>,
    admin: MetadataValue<Ascii>,
    _store_dir: tempdir::Dir,
}

impl Authenticated {
    async fn start() -> Self {
        let store_dir = tempdir::Dir::new();
        let args = vec![
            "--clock=manual".to_owned(),
            format!(
                "--store-path={}",
                store_dir.0.join("missions_v2_store.json").display()
            ),
            "--day-close-interval=1h".to_owned(),
        ];
        let service = phoenix_testkit::spawn_with(phoenix_missions::spec(), move |config| {
            config.service_args = args;
            config.auth.hs256_secret = Some(TEST_SECRET.to_owned());
        })
        .await;
        let mut started = Self {
            missions: MissionsServiceClient::new(service.channel.clone()),
            clock: ClockServiceClient::new(service.channel.clone()),
            service,
            admin: bearer("operator", &[ADMIN_ROLE]),
            _store_dir: store_dir,
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-05-04T08:00:00Z").expect("time");
        started
            .clock
            .set_time(signed(
                pb::SetTimeRequest {
                    now: Some(prost_types::Timestamp {
                        seconds: now.timestamp(),
                        nanos: 0,
                    }),
                },
                &started.admin,
            ))
            .await
            .expect("the admin sets the clock");
        started
    }

    async fn create_board(&mut self, user: Uuid, token: &MetadataValue<Ascii>) -> pb::Board {
        self.missions
            .create_board(signed(
                pb::CreateBoardRequest {
                    user_id: user.to_string(),
                    season_id: SEASON.into(),
                    time_zone: "Europe/Madrid".into(),
                },
                token,
            ))
            .await
            .expect("create the board")
            .into_inner()
            .board
            .expect("board")
    }

    async fn board(&mut self, user: Uuid, token: &MetadataValue<Ascii>) -> pb::Board {
        self.missions
            .get_board(signed(
                pb::GetBoardRequest {
                    user_id: user.to_string(),
                    season_id: SEASON.into(),
                },
                token,
            ))
            .await
            .expect("get the board")
            .into_inner()
            .board
            .expect("board")
    }
}

#[tokio::test]
async fn a_user_acts_on_its_own_board_only_and_the_admin_on_every_board() {
    let mut h = Authenticated::start().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let as_alice = bearer(&alice.to_string(), &[]);
    let as_bob = bearer(&bob.to_string(), &[]);
    h.create_board(alice, &as_alice).await;
    h.create_board(bob, &as_bob).await;
    let bobs_run = h
        .missions
        .activate_slot(signed(
            pb::ActivateSlotRequest {
                user_id: bob.to_string(),
                season_id: SEASON.into(),
                slot_key: pb::SlotKey::Main.into(),
            },
            &as_bob,
        ))
        .await
        .expect("bob starts his main run")
        .into_inner()
        .slot
        .and_then(|slot| slot.run)
        .expect("the run")
        .run_id;
    let before = h.board(bob, &as_bob).await;

    let (user_id, season_id) = (bob.to_string(), SEASON.to_owned());
    let m = &mut h.missions;
    let refusals = [
        m.get_board(signed(
            pb::GetBoardRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.create_board(signed(
            pb::CreateBoardRequest {
                user_id: user_id.clone(),
                season_id: "2027-S1".into(),
                time_zone: "Asia/Tokyo".into(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.set_time_zone(signed(
            pb::SetTimeZoneRequest {
                user_id: user_id.clone(),
                time_zone: "Asia/Tokyo".into(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.heartbeat(signed(
            pb::HeartbeatRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                run_id: bobs_run.clone(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.record_progress(signed(
            pb::RecordProgressRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                run_id: bobs_run.clone(),
                current: 1,
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.reroll(signed(
            pb::RerollRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                slot_key: pb::SlotKey::Hunt.into(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.activate_slot(signed(
            pb::ActivateSlotRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                slot_key: pb::SlotKey::Skill.into(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.claim_run(signed(
            pb::ClaimRunRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                run_id: bobs_run.clone(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.link_boss_task(signed(
            pb::LinkBossTaskRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                task_id: Uuid::new_v4().to_string(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.record_task_progress(signed(
            pb::RecordTaskProgressRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                task_id: Uuid::new_v4().to_string(),
                amount: 1,
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.submit_boss_proof(signed(
            pb::SubmitBossProofRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
                proof: "a photo".into(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.claim_boss(signed(
            pb::ClaimBossRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
        m.close_days(signed(
            pb::CloseDaysRequest {
                user_id: user_id.clone(),
                season_id: season_id.clone(),
            },
            &as_alice,
        ))
        .await
        .map(drop),
    ];
    for (index, refused) in refusals.into_iter().enumerate() {
        let status = refused.expect_err("alice may not act on bob's board");
        assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
        assert_eq!(
            metadata(&status, "owner").as_deref(),
            Some(user_id.as_str()),
            "call {index}"
        );
    }
    // Nothing of bob's changed: no board in the other season, the same board in this one.
    let other_season = h
        .missions
        .get_board(signed(
            pb::GetBoardRequest {
                user_id: user_id.clone(),
                season_id: "2027-S1".into(),
            },
            &h.admin,
        ))
        .await
        .expect_err("alice created nothing for bob");
    assert_refused(&other_season, Code::NotFound, "BOARD_NOT_FOUND");
    let admin = h.admin.clone();
    assert_eq!(h.board(bob, &admin).await, before);

    // Alice on her own board, and the admin on bob's, may.
    h.missions
        .activate_slot(signed(
            pb::ActivateSlotRequest {
                user_id: alice.to_string(),
                season_id: SEASON.into(),
                slot_key: pb::SlotKey::Main.into(),
            },
            &as_alice,
        ))
        .await
        .expect("alice starts her own run");
    let heartbeat = h
        .missions
        .heartbeat(signed(
            pb::HeartbeatRequest {
                user_id: user_id.clone(),
                season_id: SEASON.into(),
                run_id: bobs_run.clone(),
            },
            &admin,
        ))
        .await
        .expect("the admin keeps bob's day")
        .into_inner();
    assert!(!heartbeat.replayed);
    let bobs = h.board(bob, &admin).await;
    assert!(bobs.slots[0].run.as_ref().expect("run").heartbeat_today);
    // An upper-case id in the token names the same user.
    let shouting = bearer(&bob.to_string().to_uppercase(), &[]);
    h.board(bob, &shouting).await;
    h.service.shutdown().await;
}

#[tokio::test]
async fn the_clock_and_the_admin_calls_need_the_admin_role() {
    let mut h = Authenticated::start().await;
    let user = Uuid::new_v4();
    let as_user = bearer(&user.to_string(), &[]);

    let status = h
        .clock
        .get_time(signed(pb::GetTimeRequest {}, &as_user))
        .await
        .expect_err("reading the clock needs the role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = h
        .clock
        .set_time(signed(
            pb::SetTimeRequest {
                now: Some(prost_types::Timestamp {
                    seconds: 4_102_444_800,
                    nanos: 0,
                }),
            },
            &as_user,
        ))
        .await
        .expect_err("setting the clock needs the role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = h
        .clock
        .advance_time(signed(
            pb::AdvanceTimeRequest {
                by: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
            },
            &as_user,
        ))
        .await
        .expect_err("moving the clock needs the role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = h
        .missions
        .close_due_days(signed(pb::CloseDueDaysRequest { batch_size: 0 }, &as_user))
        .await
        .expect_err("the batch day close needs the role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = h
        .missions
        .grant_effect(signed(
            pb::GrantEffectRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
                effect_id: Uuid::new_v4().to_string(),
            },
            &as_user,
        ))
        .await
        .expect_err("granting an effect needs the role, even on one's own board");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");

    let now = h
        .clock
        .get_time(signed(pb::GetTimeRequest {}, &h.admin))
        .await
        .expect("the admin reads the clock")
        .into_inner()
        .now
        .expect("now");
    assert_eq!(
        now.seconds,
        chrono::DateTime::parse_from_rfc3339("2026-05-04T08:00:00Z")
            .expect("time")
            .timestamp()
    );
    let status = h
        .missions
        .get_board(pb::GetBoardRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
        })
        .await
        .expect_err("no token");
    assert_refused(&status, Code::Unauthenticated, "TOKEN_MISSING");
    h.service.shutdown().await;
}

#[tokio::test]
async fn a_user_reads_its_own_analytics_only_and_every_users_needs_the_admin_role() {
    let mut h = Authenticated::start().await;
    let mut analytics = AnalyticsServiceClient::new(h.service.channel.clone());
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let as_alice = bearer(&alice.to_string(), &[]);
    h.create_board(alice, &as_alice).await;
    let adherence = |user: Option<Uuid>| pb::ListWeeklyAdherenceRequest {
        user_id: user.map(|u| u.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    let rewards = |user: Option<Uuid>| pb::ListWeeklyRewardsRequest {
        user_id: user.map(|u| u.to_string()).unwrap_or_default(),
        ..Default::default()
    };

    // Another user's weeks: not hers.
    let status = analytics
        .list_weekly_adherence(signed(adherence(Some(bob)), &as_alice))
        .await
        .expect_err("bob's adherence is not alice's");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    assert_eq!(metadata(&status, "owner"), Some(bob.to_string()));
    let status = analytics
        .list_weekly_rewards(signed(rewards(Some(bob)), &as_alice))
        .await
        .expect_err("bob's rewards are not alice's");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    assert_eq!(metadata(&status, "owner"), Some(bob.to_string()));
    // Every user's weeks: the admin's to read.
    let status = analytics
        .list_weekly_adherence(signed(adherence(None), &as_alice))
        .await
        .expect_err("every user's adherence needs the role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = analytics
        .list_weekly_rewards(signed(rewards(None), &as_alice))
        .await
        .expect_err("every user's rewards need the role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    // A bad request is told so before who may read it.
    let status = analytics
        .list_weekly_rewards(signed(
            pb::ListWeeklyRewardsRequest {
                user_id: "nobody".into(),
                ..Default::default()
            },
            &as_alice,
        ))
        .await
        .expect_err("not a user id");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");

    // Her own weeks, and the admin anyone's or everyone's.
    analytics
        .list_weekly_adherence(signed(adherence(Some(alice)), &as_alice))
        .await
        .expect("alice reads her adherence");
    analytics
        .list_weekly_rewards(signed(rewards(Some(alice)), &as_alice))
        .await
        .expect("alice reads her rewards");
    for user in [Some(alice), Some(bob), None] {
        analytics
            .list_weekly_adherence(signed(adherence(user), &h.admin))
            .await
            .expect("the admin reads any adherence");
        analytics
            .list_weekly_rewards(signed(rewards(user), &h.admin))
            .await
            .expect("the admin reads any rewards");
    }
    h.service.shutdown().await;
}
