//! The runtime's background jobs with two replicas on one database: a singleton never runs on
//! both at once (the other replica skips), a job on every replica does, a failing or panicking
//! job is counted and keeps its schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use phoenix_runtime::ServiceContext;
use phoenix_runtime::jobs::Outcome;
use phoenix_testkit::{TestDatabase, job_runs, test_config};
use tokio_util::sync::CancellationToken;

/// How many runs are in progress, and the most there ever were at once.
#[derive(Default)]
struct Overlap {
    running: AtomicU32,
    most: AtomicU32,
    runs: AtomicU32,
}

/// Two contexts ("replicas") of one schema on one database, stopped with `shutdown`.
async fn replicas(database: &TestDatabase, shutdown: &CancellationToken) -> Vec<ServiceContext> {
    let mut contexts = Vec::new();
    for _ in 0..2 {
        contexts.push(ServiceContext {
            pool: database.pool("public").await,
            config: Arc::new(test_config()),
            shutdown: shutdown.clone(),
        });
    }
    contexts
}

/// Starts `name` on every context, each run taking 30 ms, and answers what they did in 600 ms.
async fn overlap_of(singleton: bool, name: &'static str) -> Arc<Overlap> {
    let database = TestDatabase::create().await;
    let shutdown = CancellationToken::new();
    let overlap = Arc::new(Overlap::default());
    for context in replicas(&database, &shutdown).await {
        let overlap = overlap.clone();
        let job = move || {
            let overlap = overlap.clone();
            async move {
                let now = overlap.running.fetch_add(1, Ordering::SeqCst) + 1;
                overlap.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                overlap.running.fetch_sub(1, Ordering::SeqCst);
                overlap.runs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        // 10 ms apart and running for 30: the two replicas' ticks always meet.
        if singleton {
            context.singleton(name, Duration::from_millis(10), job);
        } else {
            context.every(name, Duration::from_millis(10), job);
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    overlap
}

#[tokio::test]
async fn a_singleton_runs_on_one_replica_at_a_time_and_the_other_skips() {
    let overlap = overlap_of(true, "test-singleton").await;
    assert_eq!(
        overlap.most.load(Ordering::SeqCst),
        1,
        "never two runs at once"
    );
    assert!(overlap.runs.load(Ordering::SeqCst) >= 5, "it kept running");
    assert!(
        job_runs("test-singleton", Outcome::Skipped) > 0,
        "the other replica skipped"
    );
    assert_eq!(job_runs("test-singleton", Outcome::Failed), 0);
    assert_eq!(
        u64::from(overlap.runs.load(Ordering::SeqCst)),
        job_runs("test-singleton", Outcome::Done),
        "every run counted as done"
    );
}

#[tokio::test]
async fn a_job_of_every_replica_runs_on_both_at_once() {
    let overlap = overlap_of(false, "test-every").await;
    assert_eq!(
        overlap.most.load(Ordering::SeqCst),
        2,
        "both replicas ran it together"
    );
    assert_eq!(job_runs("test-every", Outcome::Skipped), 0);
}

#[tokio::test]
async fn a_failing_or_panicking_job_is_counted_and_runs_again() {
    let database = TestDatabase::create().await;
    let shutdown = CancellationToken::new();
    let context = replicas(&database, &shutdown).await.remove(0);
    let ticks = Arc::new(AtomicU32::new(0));
    let counted = ticks.clone();
    context.singleton("test-failing", Duration::from_millis(10), move || {
        let tick = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match tick % 3 {
                0 => anyhow::bail!("a failure"),
                1 => panic!("a panic"),
                _ => Ok(()),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (failed, done) = (
        job_runs("test-failing", Outcome::Failed),
        job_runs("test-failing", Outcome::Done),
    );
    assert!(
        done >= 3,
        "it kept its schedule after failures and panics: {done} done"
    );
    assert!(failed >= 2 * (done - 1), "{failed} failed for {done} done");
    // The lock went back after each failure and panic: the same replica took it again.
    assert_eq!(job_runs("test-failing", Outcome::Skipped), 0);
}

#[tokio::test]
async fn a_singleton_whose_lock_connection_was_cut_takes_it_again_without_failing() {
    let database = TestDatabase::create().await;
    let shutdown = CancellationToken::new();
    let context = replicas(&database, &shutdown).await.remove(0);
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    context.singleton("test-reconnecting", Duration::from_millis(20), move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    let admin = database.pool("public").await;
    for _ in 0..3 {
        let before = runs.load(Ordering::SeqCst);
        while runs.load(Ordering::SeqCst) < before + 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Every other session of the database ends, the job's lock connection with them.
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name = 'phoenix-public' AND backend_type = 'client backend'",
        )
        .fetch_all(&admin)
        .await
        .expect("end the sessions");
        assert!(!ended.is_empty(), "the job's connection was there to end");
    }
    let before = runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    assert!(runs.load(Ordering::SeqCst) > before, "it kept running");
    assert_eq!(job_runs("test-reconnecting", Outcome::Failed), 0);
}
