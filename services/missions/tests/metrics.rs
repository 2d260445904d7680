//! The service's counters, as its metrics endpoint exposes them, counting what users did.
//!
//! Counters are process-wide and every service a test starts runs in this process, so the tests
//! of this binary (and only they) share the counters: each story runs alone (`alone`) and
//! asserts how much a counter grew during it, never its absolute value.

mod support;

use std::collections::HashMap;

use phoenix_proto::missions::v1 as pb;
use support::{Harness, SEASON, main_mission};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

const HEARTBEATS: &str = "phoenix_missions_heartbeats_total";
const DUPLICATE_HEARTBEATS: &str = "phoenix_missions_duplicate_heartbeats_total";
const DUPLICATE_CLAIMS: &str = "phoenix_missions_duplicate_claims_total";
const PETALS_LOST: &str = "phoenix_missions_petals_lost_total";
const PROTECTED_DAYS: &str = "phoenix_missions_protected_days_total";
const DAY_CLOSES_REFUSED: &str = "phoenix_missions_day_closes_refused_total";

fn divergences(kind: &str) -> String {
    format!("phoenix_missions_divergences_total{{kind=\"{kind}\"}}")
}

/// Holds the other stories of this binary off while one runs, so a delta is that story's own.
async fn alone() -> MutexGuard<'static, ()> {
    static COUNTERS: Mutex<()> = Mutex::const_new(());
    COUNTERS.lock().await
}

/// Every integer series of the text exposition `GET /metrics` serves, by `name{labels}`.
struct Counters(HashMap<String, u64>);

impl Counters {
    fn read() -> Self {
        let text = phoenix_runtime::metrics::global().render();
        Self(
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    Some((series.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// How much `series` grew since `earlier` (a series not exposed yet is 0).
    fn since(&self, earlier: &Self, series: &str) -> u64 {
        let value = |counters: &Self| counters.0.get(series).copied().unwrap_or(0);
        value(self) - value(earlier)
    }
}

#[tokio::test]
async fn a_heartbeat_counts_once_a_day_and_its_replays_count_as_duplicates() {
    let _alone = alone().await;
    let mut h = Harness::start("2026-05-04T08:00:00Z").await;
    h.only_mission(main_mission(10, 50)).await;
    let user = Uuid::new_v4();
    h.create_board(user, "UTC").await;
    let run = h.activate_main(user).await;
    let before = Counters::read();

    h.heartbeat(user, &run).await;
    h.heartbeat(user, &run).await;
    h.heartbeat(user, &run).await;
    h.set_time("2026-05-05T08:00:00Z").await;
    h.heartbeat(user, &run).await;

    let after = Counters::read();
    assert_eq!(after.since(&before, HEARTBEATS), 2, "May 4 and May 5");
    assert_eq!(
        after.since(&before, DUPLICATE_HEARTBEATS),
        2,
        "May 4 again, twice"
    );
}

#[tokio::test]
async fn a_second_claim_of_a_run_counts_as_a_duplicate() {
    let _alone = alone().await;
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(7, 3)).await;
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
    let claim = pb::ClaimRunRequest {
        user_id: user.to_string(),
        season_id: SEASON.into(),
        run_id: run,
    };
    let before = Counters::read();

    let first = h.missions.claim_run(claim.clone()).await.expect("claim");
    let after_first = Counters::read();
    let second = h.missions.claim_run(claim).await.expect("claim again");

    let after = Counters::read();
    assert!(!first.into_inner().replayed && second.into_inner().replayed);
    assert_eq!(after_first.since(&before, DUPLICATE_CLAIMS), 0, "a grant");
    assert_eq!(after.since(&before, DUPLICATE_CLAIMS), 1);
}

#[tokio::test]
async fn day_closes_count_lost_petals_and_protected_days_whoever_closes_them() {
    let _alone = alone().await;
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let freeze = h.streak_freeze().await;
    // Closed by the user's own calls: the freeze covers the first missed day (June 1), petals
    // go for June 2 and 3.
    let protected = Uuid::new_v4();
    h.create_board(protected, "UTC").await;
    h.activate_main(protected).await;
    h.grant_effect(protected, &freeze).await;
    // Closed by the batch: June 1, 2 and 3 cost a petal each.
    let unprotected = Uuid::new_v4();
    h.create_board(unprotected, "UTC").await;
    h.activate_main(unprotected).await;
    h.set_time("2026-06-04T12:00:00Z").await;
    let before = Counters::read();

    // A read shows the ended days as closed but saves nothing, so it counts nothing.
    h.board(unprotected).await;
    assert_eq!(Counters::read().since(&before, PETALS_LOST), 0);
    h.close_days(protected).await;
    let after_user = Counters::read();
    let batch = h
        .missions
        .close_due_days(pb::CloseDueDaysRequest { batch_size: 0 })
        .await
        .expect("close due days")
        .into_inner();

    let after = Counters::read();
    assert_eq!(
        (
            after_user.since(&before, PETALS_LOST),
            after_user.since(&before, PROTECTED_DAYS)
        ),
        (2, 1),
        "three missed days: the freeze covers one, petals go for the others"
    );
    assert_eq!((batch.petals_lost, batch.protected_days), (3, 0));
    assert_eq!(after.since(&after_user, PETALS_LOST), 3);
    assert_eq!(after.since(&after_user, PROTECTED_DAYS), 0);
}

#[tokio::test]
async fn a_day_close_the_database_refuses_counts_as_refused_and_costs_no_petal() {
    let _alone = alone().await;
    let mut h = Harness::start("2026-06-01T12:00:00Z").await;
    h.only_mission(main_mission(20, 100)).await;
    let (healthy, damaged) = (Uuid::new_v4(), Uuid::new_v4());
    for user in [healthy, damaged] {
        h.create_board(user, "UTC").await;
        let run = h.activate_main(user).await;
        if user == damaged {
            h.stray_day_close(&run, "2026-06-01").await;
        }
    }
    h.set_time("2026-06-02T12:00:00Z").await;
    let close_due = pb::CloseDueDaysRequest { batch_size: 0 };
    let before = Counters::read();

    h.missions
        .close_due_days(close_due)
        .await
        .expect("close due days");
    let after_first = Counters::read();
    h.missions
        .close_due_days(close_due)
        .await
        .expect("close due days again");

    let after = Counters::read();
    assert_eq!(after_first.since(&before, DAY_CLOSES_REFUSED), 1);
    assert_eq!(
        after_first.since(&before, PETALS_LOST),
        1,
        "the healthy board's June 1 only"
    );
    assert_eq!(
        after.since(&after_first, DAY_CLOSES_REFUSED),
        1,
        "tried again, refused again"
    );
    assert_eq!(after.since(&after_first, PETALS_LOST), 0);
}

#[tokio::test]
async fn dual_counts_each_divergence_under_its_kind() {
    let _alone = alone().await;
    let mut h = Harness::with_repo("DUAL", "2026-06-01T12:00:00Z").await;
    let (agrees, lost, drifted) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for user in [agrees, lost, drifted] {
        h.create_board(user, "UTC").await;
    }
    // Behind the service's back, the SQL secondary loses one board and another one drifts.
    sqlx::raw_sql(&format!(
        "DELETE FROM missions_v2_boards WHERE user_id = '{lost}';
         DELETE FROM missions_v2_state WHERE user_id = '{lost}';
         UPDATE missions_v2_state SET state = jsonb_set(state, '{{slots,0,offers}}', '99')
         WHERE user_id = '{drifted}';"
    ))
    .execute(&h.service.pool)
    .await
    .expect("tamper with the secondary");
    let before = Counters::read();

    let mut runs = Vec::new();
    for user in [agrees, lost, drifted] {
        runs.push((user, h.activate_main(user).await));
    }

    let after = Counters::read();
    let grew = |kind: &str| after.since(&before, &divergences(kind));
    assert_eq!(grew("missing_row"), 1);
    assert_eq!(grew("content"), 1);
    assert_eq!(grew("extra_row"), 0);
    assert_eq!(grew("secondary_write_failed"), 0);
    // Those writes repaired the secondary: the next ones agree.
    for (user, run) in &runs {
        h.heartbeat(*user, run).await;
    }
    let repaired = Counters::read();
    assert_eq!(repaired.since(&after, &divergences("missing_row")), 0);
    assert_eq!(repaired.since(&after, &divergences("content")), 0);
}
