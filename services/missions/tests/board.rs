//! The board's rules through gRPC, on a manual clock: days, petals, DST, claims, bosses.

mod support;

use phoenix_missions::domain::board::{BoardKey, CommunicationKind, SlotKey, SlotState};
use phoenix_missions::store::sql::SqlBoards;
use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::migration_service_client::MigrationServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_testkit::{assert_refused, field_reasons, fields, metadata};
use support::{Harness, SEASON, main_mission};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

/// The closed days of the main slot's run, as the board shows them.
async fn run_days(h: &mut Harness, user: Uuid) -> Vec<(String, pb::DayOutcome)> {
    outcomes(&h.main_slot(user).await.run.expect("a run").days)
}

fn outcomes(days: &[pb::ClosedDay]) -> Vec<(String, pb::DayOutcome)> {
    days.iter().map(|d| (d.date.clone(), d.outcome())).collect()
}

#[tokio::test]
async fn a_new_board_offers_three_missions_and_the_boss() {
    let mut h = Harness::start("2026-05-04T08:00:00Z").await;
    let user = Uuid::new_v4();
    let board = h.create_board(user, "America/Sao_Paulo").await;
    assert_eq!(board.slots.len(), 3);
    assert!(board.slots.iter().all(|s| s.state() == pb::SlotState::Idle));
    assert!(board.slots.iter().all(|s| !s.mission_name.is_empty()));
    assert!(
        board
            .slots
            .iter()
            .all(|s| s.petals_remaining == s.petals_total)
    );
    assert_eq!(board.local_date, "2026-05-04");
    // Next reset: the end of the local day (São Paulo is UTC−3).
    assert_eq!(
        board.next_reset_time.expect("next reset").seconds,
        chrono::DateTime::parse_from_rfc3339("2026-05-05T03:00:00Z")
            .unwrap()
            .timestamp()
    );
    assert_eq!(board.boss.expect("a boss run").phase, 1);

    let again = h
        .missions
        .create_board(pb::CreateBoardRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            time_zone: "America/Sao_Paulo".into(),
        })
        .await
        .expect("create again")
        .into_inner();
    assert!(!again.created, "the board existed");
    assert_eq!(again.board.expect("board").board_id, board.board_id);
}

#[tokio::test]
async fn creating_an_existing_board_in_another_time_zone_is_refused_with_the_zone_it_has() {
    let mut h = Harness::start("2026-05-04T08:00:00Z").await;
    let user = Uuid::new_v4();
    h.create_board(user, "America/Sao_Paulo").await;
    let create_in = |time_zone: &str| pb::CreateBoardRequest {
        user_id: user.to_string(),
        season_id: SEASON.into(),
        time_zone: time_zone.into(),
    };

    let status = h
        .missions
        .create_board(create_in("Europe/Madrid"))
        .await
        .expect_err("another time zone");
    assert_refused(&status, Code::AlreadyExists, "BOARD_EXISTS");
    assert_eq!(
        metadata(&status, "time_zone").as_deref(),
        Some("America/Sao_Paulo")
    );
    assert!(status.message().contains("SetTimeZone"), "{status:?}");
    assert_eq!(h.board(user).await.time_zone, "America/Sao_Paulo");

    // The way to move the board is SetTimeZone; creating it then is a retry again.
    h.missions
        .set_time_zone(pb::SetTimeZoneRequest {
            user_id: user.to_string(),
            time_zone: "Europe/Madrid".into(),
        })
        .await
        .expect("set the time zone");
    let again = h
        .missions
        .create_board(create_in("Europe/Madrid"))
        .await
        .expect("create in the board's zone")
        .into_inner();
    assert!(!again.created);
}

#[tokio::test]
async fn bad_input_is_refused_with_details_and_writes_nothing() {
    let mut h = Harness::start("2026-05-04T08:00:00Z").await;
    let user = Uuid::new_v4();

    let status = h
        .missions
        .create_board(pb::CreateBoardRequest {
            user_id: "not-a-uuid".into(),
            season_id: "".into(),
            time_zone: "Mars/Olympus".into(),
        })
        .await
        .expect_err("bad fields");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    assert_eq!(
        field_reasons(&status),
        [
            ("user_id".to_owned(), "INVALID_ID".to_owned()),
            ("season_id".to_owned(), "REQUIRED".to_owned()),
            ("time_zone".to_owned(), "INVALID_TIME_ZONE".to_owned()),
        ]
    );

    let status = h
        .missions
        .get_board(pb::GetBoardRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
        })
        .await
        .expect_err("no board");
    assert_refused(&status, Code::NotFound, "BOARD_NOT_FOUND");

    h.create_board(user, "Europe/Madrid").await;
    let status = h
        .missions
        .heartbeat(pb::HeartbeatRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("unknown run");
    assert_refused(&status, Code::NotFound, "RUN_NOT_FOUND");

    let status = h
        .missions
        .activate_slot(pb::ActivateSlotRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            slot_key: 0,
        })
        .await
        .expect_err("no slot");
    assert_refused(&status, Code::InvalidArgument, "SLOT_KEY_REQUIRED");
    assert_eq!(fields(&status), ["slot_key"]);

    let run = h.activate_main(user).await;
    let progress = |current| pb::RecordProgressRequest {
        user_id: user.to_string(),
        season_id: SEASON.into(),
        run_id: run.clone(),
        current,
    };
    h.missions
        .record_progress(progress(2))
        .await
        .expect("progress");
    let status = h
        .missions
        .record_progress(progress(1))
        .await
        .expect_err("backwards");
    assert_refused(&status, Code::InvalidArgument, "PROGRESS_BACKWARDS");

    let status = h
        .missions
        .claim_run(pb::ClaimRunRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
        })
        .await
        .expect_err("not succeeded");
    assert_refused(&status, Code::FailedPrecondition, "RUN_NOT_SUCCEEDED");

    let status = h
        .missions
        .submit_boss_proof(pb::SubmitBossProofRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            proof: "a photo".into(),
        })
        .await
        .expect_err("phase 1");
    assert_refused(&status, Code::FailedPrecondition, "BOSS_NOT_IN_PHASE_2");

    // Nothing of the refused calls was written.
    let slot = h.main_slot(user).await;
    assert_eq!(
        slot.run.expect("run").progress.expect("progress").current,
        2
    );
}

#[tokio::test]
async fn a_heartbeat_counts_once_per_local_day_and_a_missed_day_costs_one_petal() {
    let mut h = Harness::start("2026-05-04T08:00:00Z").await;
    h.only_mission(main_mission(10, 50)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "Asia/Kolkata").await;
    let run = h.activate_main(user).await;

    let first = h.heartbeat(user, &run).await;
    assert!(!first.replayed);
    let second = h.heartbeat(user, &run).await;
    assert!(second.replayed, "the same local day");
    assert_eq!(
        first.heartbeat.as_ref().unwrap().heartbeat_id,
        second.heartbeat.as_ref().unwrap().heartbeat_id
    );

    // May 5 is missed; on May 6 both ended days close, once.
    h.set_time("2026-05-06T08:00:00Z").await;
    let closed = h.close_days(user).await;
    assert_eq!(
        outcomes(&closed),
        vec![
            ("2026-05-04".into(), pb::DayOutcome::Kept),
            ("2026-05-05".into(), pb::DayOutcome::PetalLost)
        ]
    );
    assert!(h.close_days(user).await.is_empty(), "closed already");
    let slot = h.main_slot(user).await;
    assert_eq!(slot.petals_remaining, slot.petals_total - 1);
    let board = h.board(user).await;
    assert!(
        board
            .communications
            .iter()
            .any(|c| c.kind() == pb::CommunicationKind::Daily),
        "the user hears about the petal"
    );
}

#[tokio::test]
async fn across_the_spring_dst_change_each_missed_local_day_costs_exactly_one_petal() {
    // Europe/Madrid moves to summer time on Sunday 2026-03-29 (a 23-hour day).
    let mut h = Harness::start("2026-03-26T10:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "Europe/Madrid").await;
    let run = h.activate_main(user).await;

    h.heartbeat(user, &run).await; // Thu 26
    h.set_time("2026-03-27T22:30:00Z").await; // 23:30 on Fri 27 (UTC+1)
    h.heartbeat(user, &run).await;
    // Sat 28 is missed.
    h.set_time("2026-03-29T21:30:00Z").await; // 23:30 on Sun 29 (UTC+2 now)
    h.heartbeat(user, &run).await;
    h.set_time("2026-03-29T22:30:00Z").await; // 00:30 on Mon 30
    assert!(!h.heartbeat(user, &run).await.replayed, "a new local day");
    // Tue 31 and Wed 1 are missed; close on Thu 2, from several callers.
    h.set_time("2026-04-02T09:00:00Z").await;
    let closed = h.close_days(user).await;
    assert_eq!(
        closed.len(),
        3,
        "Mar 30, 31 and Apr 1 end now; the calls before closed the rest"
    );
    assert!(h.close_days(user).await.is_empty());
    h.missions
        .close_due_days(pb::CloseDueDaysRequest { batch_size: 0 })
        .await
        .expect("close due days");
    assert_eq!(
        run_days(&mut h, user).await,
        vec![
            ("2026-03-26".into(), pb::DayOutcome::Kept),
            ("2026-03-27".into(), pb::DayOutcome::Kept),
            ("2026-03-28".into(), pb::DayOutcome::PetalLost),
            ("2026-03-29".into(), pb::DayOutcome::Kept),
            ("2026-03-30".into(), pb::DayOutcome::Kept),
            ("2026-03-31".into(), pb::DayOutcome::PetalLost),
            ("2026-04-01".into(), pb::DayOutcome::PetalLost),
        ]
    );
    let slot = h.main_slot(user).await;
    assert_eq!(slot.petals_remaining, 0);
    // 0 petals fail the run; the failed slot rests (cooldown) from the end of that day.
    assert_eq!(slot.state(), pb::SlotState::Cooldown);
    let run = slot.run.expect("the failed run");
    assert_eq!(run.status(), pb::RunStatus::Failed);
    let days = run.days;
    assert_eq!(days.len(), 7, "each local date closed once");
}

#[tokio::test]
async fn across_the_autumn_dst_change_and_a_time_zone_change_no_day_closes_twice() {
    // America/New_York returns to standard time on Sunday 2026-11-01 (a 25-hour day).
    let mut h = Harness::start("2026-10-31T14:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "America/New_York").await;
    let run = h.activate_main(user).await;
    h.heartbeat(user, &run).await; // Sat Oct 31
    // Sun Nov 1 (25 hours) is missed. 23:30 on Nov 1 is 04:30Z on Nov 2.
    h.set_time("2026-11-02T04:30:00Z").await;
    assert!(
        h.close_days(user)
            .await
            .iter()
            .all(|d| d.date != "2026-11-01"),
        "Nov 1 has not ended yet in New York"
    );
    h.set_time("2026-11-02T15:00:00Z").await; // Mon Nov 2, 10:00
    h.heartbeat(user, &run).await; // closes Nov 1 first
    assert_eq!(
        run_days(&mut h, user).await,
        vec![
            ("2026-10-31".into(), pb::DayOutcome::Kept),
            ("2026-11-01".into(), pb::DayOutcome::PetalLost)
        ]
    );

    // The user flies to Tokyo: it is already Tue Nov 3 there, so Mon Nov 2 (heartbeat) ends.
    h.missions
        .set_time_zone(pb::SetTimeZoneRequest {
            user_id: user.to_string(),
            time_zone: "Asia/Tokyo".into(),
        })
        .await
        .expect("set the time zone");
    let closed = h.close_days(user).await;
    assert_eq!(
        outcomes(&closed),
        vec![("2026-11-02".into(), pb::DayOutcome::Kept)]
    );
    // And back west: New York's Nov 2 again, already closed: nothing closes twice.
    h.missions
        .set_time_zone(pb::SetTimeZoneRequest {
            user_id: user.to_string(),
            time_zone: "America/New_York".into(),
        })
        .await
        .expect("set the time zone back");
    h.set_time("2026-11-03T04:00:00Z").await;
    assert!(h.close_days(user).await.is_empty());
    let slot = h.main_slot(user).await;
    assert_eq!(slot.petals_remaining, slot.petals_total - 1);
    let run = slot.run.expect("run");
    let mut dates: Vec<_> = run.days.iter().map(|d| d.date.clone()).collect();
    dates.dedup();
    assert_eq!(dates.len(), run.days.len(), "no date twice");
}

#[tokio::test]
async fn concurrent_day_closes_take_each_petal_once() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "UTC").await;
    h.activate_main(user).await;
    // June 1 and 2 missed; close on June 3 from 12 callers at once.
    h.set_time("2026-06-03T12:00:00Z").await;
    let mut calls = Vec::new();
    for i in 0..12 {
        let mut missions = h.missions.clone();
        calls.push(tokio::spawn(async move {
            if i % 3 == 0 {
                missions
                    .close_due_days(pb::CloseDueDaysRequest { batch_size: 10 })
                    .await
                    .expect("close due days")
                    .into_inner()
                    .petals_lost
            } else {
                let closed = missions
                    .close_days(pb::CloseDaysRequest {
                        user_id: user.to_string(),
                        season_id: SEASON.into(),
                    })
                    .await
                    .expect("close days")
                    .into_inner()
                    .closed;
                closed
                    .iter()
                    .filter(|d| d.outcome() == pb::DayOutcome::PetalLost)
                    .count() as i64
            }
        }));
    }
    let mut lost = 0;
    for call in calls {
        lost += call.await.expect("join");
    }
    assert_eq!(lost, 2, "two missed days, two petals, whoever closed them");
    let slot = h.main_slot(user).await;
    assert_eq!(slot.petals_remaining, slot.petals_total - 2);
    assert_eq!(slot.run.expect("run").days.len(), 2);
}

#[tokio::test]
async fn a_board_the_database_refuses_does_not_stop_the_day_close_of_the_others() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let mut users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    users.sort();
    // All three are due at once and taken in one batch, in no set order.
    let (healthy, damaged) = (vec![users[0], users[2]], users[1]);
    for user in &users {
        h.create_board(*user, "UTC").await;
        let run = h.activate_main(*user).await;
        if *user == damaged {
            h.stray_day_close(&run, "2026-06-01").await;
        }
    }
    let close_due = |h: &mut Harness| {
        let mut missions = h.missions.clone();
        async move {
            missions
                .close_due_days(pb::CloseDueDaysRequest { batch_size: 0 })
                .await
                .expect("close due days")
                .into_inner()
        }
    };
    // June 1 was missed by everyone.
    let now = "2026-06-02T12:00:00Z";
    h.set_time(now).await;

    let closed = close_due(&mut h).await;

    assert_eq!(
        (closed.boards, closed.days, closed.petals_lost),
        (2, 2, 2),
        "the healthy boards closed, the damaged one counts for nothing"
    );
    assert_eq!(h.due_users(now).await, vec![damaged], "it stays due");
    for user in healthy {
        let slot = h.main_slot(user).await;
        assert_eq!(slot.petals_remaining, slot.petals_total - 1);
    }
    let again = close_due(&mut h).await;
    assert_eq!((again.boards, again.days), (0, 0), "refused again");

    sqlx::query("DELETE FROM missions_v2_day_closes WHERE local_date = '2026-06-01'")
        .execute(&h.service.pool)
        .await
        .expect("remove the stray close");
    let repaired = close_due(&mut h).await;
    assert_eq!((repaired.boards, repaired.petals_lost), (1, 1));
    assert!(h.due_users(now).await.is_empty());
}

#[tokio::test]
async fn concurrent_claims_grant_the_reward_once() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(7, 3)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "Europe/Madrid").await;
    let run = h.activate_main(user).await;
    let done = h
        .missions
        .record_progress(pb::RecordProgressRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
            current: 3,
        })
        .await
        .expect("progress")
        .into_inner();
    assert!(done.succeeded);

    let mut calls = Vec::new();
    for _ in 0..10 {
        let mut missions = h.missions.clone();
        let request = pb::ClaimRunRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
        };
        calls.push(tokio::spawn(async move {
            missions
                .claim_run(request)
                .await
                .expect("claim")
                .into_inner()
        }));
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("join"));
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    let claim_id = &answers[0].claim.as_ref().unwrap().claim_id;
    assert!(
        answers
            .iter()
            .all(|a| &a.claim.as_ref().unwrap().claim_id == claim_id)
    );
    assert_eq!(
        answers[0]
            .claim
            .as_ref()
            .unwrap()
            .reward
            .as_ref()
            .unwrap()
            .xp,
        120
    );

    let board = h.board(user).await;
    assert_eq!(board.claims.len(), 1);
    let slot = h.main_slot(user).await;
    // Claimed, then resting until the cooldown ends.
    assert_eq!(slot.state(), pb::SlotState::Cooldown);
    assert_eq!(slot.run.expect("run").status(), pb::RunStatus::Claimed);

    // After the cooldown the slot offers a mission again.
    h.advance_hours(49).await;
    h.close_days(user).await;
    let slot = h.main_slot(user).await;
    assert_eq!(slot.state(), pb::SlotState::Idle);
    assert!(slot.run.is_none());
}

#[tokio::test]
async fn a_claim_grants_the_reward_the_run_started_with_after_a_catalog_edit() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let mut mission = main_mission(7, 3);
    mission.mission_id = h.only_mission(mission.clone()).await;
    let user = Uuid::new_v4();
    h.create_board(user, "Europe/Madrid").await;
    let run = h.activate_main(user).await;
    h.missions
        .record_progress(pb::RecordProgressRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
            current: 3,
        })
        .await
        .expect("progress");

    // Before the user claims, an admin cuts the mission's reward.
    mission.reward = Some(pb::Reward {
        xp: 10,
        ..Default::default()
    });
    h.catalog
        .upsert_mission(pb::UpsertMissionRequest {
            mission: Some(mission),
        })
        .await
        .expect("edit the mission");
    let shown = h.main_slot(user).await.run.expect("run").reward;
    assert_eq!(shown.map(|r| (r.xp, r.currency)), Some((120, 50)));
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
        .expect("claim");
    let granted = claim.reward.expect("reward");
    assert_eq!((granted.xp, granted.currency), (120, 50));

    // The run's terms are in the relational rows as in the snapshot.
    let audit = MigrationServiceClient::new(h.service.channel.clone())
        .audit(pb::AuditRequest {})
        .await
        .expect("audit")
        .into_inner();
    assert!(audit.violations.is_empty(), "{:?}", audit.violations);
}

#[tokio::test]
async fn the_batch_day_close_saves_boards_with_nothing_running() {
    let mut h = Harness::start("2026-06-03T12:00:00Z").await; // a Wednesday
    h.only_mission(main_mission(7, 3)).await;
    let (idle, resting) = (Uuid::new_v4(), Uuid::new_v4());
    h.create_board(idle, "UTC").await;
    h.create_board(resting, "UTC").await;
    let run = h.activate_main(resting).await;
    h.missions
        .record_progress(pb::RecordProgressRequest {
            user_id: resting.to_string(),
            season_id: SEASON.into(),
            run_id: run.clone(),
            current: 3,
        })
        .await
        .expect("progress");
    h.missions
        .claim_run(pb::ClaimRunRequest {
            user_id: resting.to_string(),
            season_id: SEASON.into(),
            run_id: run,
        })
        .await
        .expect("claim");
    let sql = SqlBoards::new(h.service.pool.clone());
    let saved = |user| {
        let sql = sql.clone();
        async move {
            sql.load(&BoardKey {
                user_id: user,
                season_id: SEASON.into(),
            })
            .await
            .expect("load")
            .expect("the board")
        }
    };
    let close_due = |mut missions: MissionsServiceClient<Channel>| async move {
        missions
            .close_due_days(pb::CloseDueDaysRequest { batch_size: 0 })
            .await
            .expect("close due days")
            .into_inner()
            .boards
    };

    // Thursday 13:00: the claimed slot's day of rest is over; nobody calls.
    h.set_time("2026-06-04T13:00:00Z").await;
    assert_eq!(close_due(h.missions.clone()).await, 1);
    assert_eq!(
        saved(resting).await.slot(SlotKey::Main).state,
        SlotState::Idle
    );

    // Monday 00:30: a new week, summarized on both boards; only the one with a claim in it has
    // something to tell.
    h.set_time("2026-06-08T00:30:00Z").await;
    assert_eq!(close_due(h.missions.clone()).await, 2);
    for (user, told) in [(idle, false), (resting, true)] {
        let board = saved(user).await;
        assert_eq!(
            board.last_weekly_summary,
            Some("2026-06-08".parse().unwrap())
        );
        assert_eq!(
            board
                .communications
                .iter()
                .any(|c| c.kind == CommunicationKind::Weekly),
            told
        );
    }
    assert_eq!(
        close_due(h.missions.clone()).await,
        0,
        "nothing due any more"
    );
}

#[tokio::test]
async fn a_protecting_effect_is_consumed_instead_of_a_petal() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let freeze = h.streak_freeze().await;
    let user = Uuid::new_v4();
    h.create_board(user, "UTC").await;
    let run = h.activate_main(user).await;
    h.heartbeat(user, &run).await;
    h.grant_effect(user, &freeze).await;
    // June 2 and 3 missed: the freeze covers one, a petal the other.
    h.set_time("2026-06-04T12:00:00Z").await;
    let closed = h.close_days(user).await;
    assert_eq!(
        outcomes(&closed),
        vec![
            ("2026-06-01".into(), pb::DayOutcome::Kept),
            ("2026-06-02".into(), pb::DayOutcome::Protected),
            ("2026-06-03".into(), pb::DayOutcome::PetalLost),
        ]
    );
    let board = h.board(user).await;
    assert!(board.active_effects.is_empty(), "the freeze was used up");
    let slot = h.main_slot(user).await;
    assert_eq!(slot.petals_remaining, slot.petals_total - 1);
}

#[tokio::test]
async fn a_reroll_replaces_the_offer_once_a_week() {
    let mut h = Harness::start("2026-06-03T12:00:00Z").await; // a Wednesday
    let user = Uuid::new_v4();
    h.create_board(user, "UTC").await;
    let reroll = pb::RerollRequest {
        user_id: user.to_string(),
        season_id: SEASON.into(),
        slot_key: pb::SlotKey::Hunt.into(),
    };
    let before = h.board(user).await.slots[1].mission_id.clone();
    let slot = h
        .missions
        .reroll(reroll.clone())
        .await
        .expect("reroll")
        .into_inner()
        .slot
        .expect("slot");
    assert_ne!(slot.mission_id, before);
    assert_eq!(slot.reroll_remaining, 0);
    let status = h
        .missions
        .reroll(reroll.clone())
        .await
        .expect_err("no budget");
    assert_refused(&status, Code::FailedPrecondition, "NO_REROLL_LEFT");
    // The budget is back on Monday.
    h.set_time("2026-06-08T00:30:00Z").await;
    h.missions.reroll(reroll).await.expect("reroll next week");
}

#[tokio::test]
async fn the_boss_goes_through_both_phases_and_is_claimed_once() {
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    let user = Uuid::new_v4();
    let board = h.create_board(user, "UTC").await;
    let shield = board.boss.expect("boss").shield_max;
    let task = Uuid::new_v4();
    h.missions
        .link_boss_task(pb::LinkBossTaskRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            task_id: task.to_string(),
        })
        .await
        .expect("link");
    let status = h
        .missions
        .record_task_progress(pb::RecordTaskProgressRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            task_id: Uuid::new_v4().to_string(),
            amount: 1,
        })
        .await
        .expect_err("another task");
    assert_refused(&status, Code::FailedPrecondition, "TASK_NOT_LINKED");
    let boss = h
        .missions
        .record_task_progress(pb::RecordTaskProgressRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            task_id: task.to_string(),
            amount: shield,
        })
        .await
        .expect("damage")
        .into_inner()
        .boss
        .expect("boss");
    assert_eq!((boss.phase, boss.shield_current), (2, 0));
    let claim = pb::ClaimBossRequest {
        user_id: user.to_string(),
        season_id: SEASON.into(),
    };
    let status = h
        .missions
        .claim_boss(claim.clone())
        .await
        .expect_err("no proof yet");
    assert_refused(&status, Code::FailedPrecondition, "BOSS_NOT_COMPLETED");
    h.missions
        .submit_boss_proof(pb::SubmitBossProofRequest {
            user_id: user.to_string(),
            season_id: SEASON.into(),
            proof: "https://example.org/proof.png".into(),
        })
        .await
        .expect("proof");
    let first = h
        .missions
        .claim_boss(claim.clone())
        .await
        .expect("claim")
        .into_inner();
    let second = h
        .missions
        .claim_boss(claim)
        .await
        .expect("claim again")
        .into_inner();
    assert!(!first.replayed && second.replayed);
    assert_eq!(first.claim, second.claim);
    let board = h.board(user).await;
    assert!(
        board
            .communications
            .iter()
            .any(|c| c.kind() == pb::CommunicationKind::System),
        "the phase change was announced"
    );
}

/// Issue 10: a huge bad value was copied whole into the message and the BadRequest, so the
/// trailers outgrew what C-core clients accept (they saw RESOURCE_EXHAUSTED).
#[tokio::test]
async fn huge_invalid_values_are_refused_with_small_errors_that_name_the_field() {
    let mut h = Harness::start("2026-05-04T08:00:00Z").await;
    let huge = "x".repeat(20_000);
    let get = h
        .missions
        .get_board(pb::GetBoardRequest {
            user_id: huge.clone(),
            season_id: SEASON.into(),
        })
        .await
        .expect_err("not a user id");
    let create = h
        .missions
        .create_board(pb::CreateBoardRequest {
            user_id: Uuid::new_v4().to_string(),
            season_id: SEASON.into(),
            time_zone: huge.clone(),
        })
        .await
        .expect_err("not a time zone");
    let season = h
        .missions
        .get_board(pb::GetBoardRequest {
            user_id: Uuid::new_v4().to_string(),
            season_id: huge.clone(),
        })
        .await
        .expect_err("not a season");
    for (status, field, reason) in [
        (get, "user_id", "INVALID_ID"),
        (create, "time_zone", "INVALID_TIME_ZONE"),
        (season, "season_id", "INVALID_SEASON"),
    ] {
        assert_refused(&status, Code::InvalidArgument, reason);
        assert_eq!(fields(&status), [field]);
        assert!(
            status.details().len() < 4096,
            "{field}: {} bytes of details",
            status.details().len()
        );
        assert!(
            status.message().len() < 512,
            "{field}: {} bytes of message",
            status.message().len()
        );
    }
}
