//! Two replicas of missions on one database, their schedules every 50 ms: each ended day of
//! each board is closed once (one `missions_v2_day_closes` row, one petal lost, no close
//! refused by the database), the analytics refresh and the catalog reload keep running, and no
//! job of either replica fails.

mod support;

use std::time::Duration;

use phoenix_testkit::{await_count, await_job_ticks, spawn_replicas};
use support::{Harness, main_mission, tempdir};
use uuid::Uuid;

const BOARDS: usize = 20;
const JOBS: [&str; 3] = [
    "missions-day-close",
    "missions-analytics-refresh",
    "missions-catalog-reload",
];

#[tokio::test]
async fn two_replicas_close_each_ended_day_once() {
    let mut replicas = spawn_replicas(phoenix_missions::spec(), 2, |config| {
        config.jobs.set("*", Duration::from_millis(50));
        config.service_args = vec!["--clock=manual".into(), "--repository=SQL".into()];
    })
    .await;
    let pool = replicas.pool.clone();
    let mut second = Harness::on(
        replicas.replicas.pop().expect("two replicas"),
        tempdir::Dir::new(),
    )
    .await;
    let mut h = Harness::on(
        replicas.replicas.pop().expect("two replicas"),
        tempdir::Dir::new(),
    )
    .await;
    // Each replica has its own manual clock: both show the same time.
    second.set_time("2026-06-01T12:00:00Z").await;
    h.set_time("2026-06-01T12:00:00Z").await;
    let metrics = phoenix_missions::metrics::get();
    let (lost_before, refused_before) =
        (metrics.petals_lost.get(), metrics.day_closes_refused.get());

    h.only_mission(main_mission(20, 100)).await;
    // The other replica reloads its catalog and sees the mission.
    await_job_ticks(&["missions-catalog-reload"], 8, Duration::from_secs(10)).await;
    let mut users: Vec<Uuid> = (0..BOARDS).map(|_| Uuid::new_v4()).collect();
    users.sort();
    for user in &users {
        h.create_board(*user, "UTC").await;
        h.activate_main(*user).await;
    }
    // June 1 and 2 missed by everyone; both replicas' day closes find every board due.
    second.set_time("2026-06-03T12:00:00Z").await;
    h.set_time("2026-06-03T12:00:00Z").await;
    await_count(
        &pool,
        "SELECT count(*) FROM missions_v2_state WHERE due_at <= '2026-06-03T12:00:00Z'",
        0,
        Duration::from_secs(15),
    )
    .await;
    await_job_ticks(&JOBS, 6, Duration::from_secs(15)).await;

    let closes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM missions_v2_day_closes GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("day closes");
    assert_eq!(closes, vec![("petal_lost".to_owned(), 2 * BOARDS as i64)]);
    for user in &users {
        let slot = h.main_slot(*user).await;
        assert_eq!(slot.petals_remaining, slot.petals_total - 2, "{user}");
    }
    assert_eq!(
        (
            metrics.petals_lost.get() - lost_before,
            metrics.day_closes_refused.get() - refused_before
        ),
        (2 * BOARDS as u64, 0),
        "each day lost its petal once; no close collided with another"
    );
    second.service.shutdown().await;
    h.service.shutdown().await;
}
