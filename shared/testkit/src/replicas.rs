//! Several replicas of one service on one database, and what their background jobs did.

use std::sync::Arc;
use std::time::Duration;

use phoenix_runtime::jobs::Outcome;
use phoenix_runtime::{RuntimeConfig, ServiceSpec};
use sqlx::PgPool;

use crate::{TestDatabase, TestService, migrated_database, start_on, test_config};

/// Replicas of one service on one database, as a Deployment with several pods runs them.
pub struct TestReplicas {
    pub database: TestDatabase,
    /// A pool of the test's own on the service's schema, to create work and read results.
    pub pool: PgPool,
    /// The replicas, each with its own pool, address and channel.
    pub replicas: Vec<TestService>,
}

impl TestReplicas {
    /// Stops every replica and waits until they have.
    pub async fn shutdown(self) {
        for replica in self.replicas {
            replica.shutdown().await;
        }
    }
}

/// Starts `count` replicas of `spec` on port 0 over ONE fresh, migrated database, each with the
/// test configuration adjusted by `configure` and its own pool, so their background jobs
/// (shorten them with `config.jobs.set("*", …)`) and RPCs meet on the same rows as separate
/// pods would. Every replica runs its migrations at start too, which finds nothing to do.
pub async fn spawn_replicas(
    spec: ServiceSpec,
    count: usize,
    configure: impl Fn(&mut RuntimeConfig),
) -> TestReplicas {
    let (database, pool) = migrated_database(&spec).await;
    let mut config = test_config();
    configure(&mut config);
    let config = Arc::new(config);
    let mut replicas = Vec::with_capacity(count);
    for _ in 0..count {
        let own = phoenix_runtime::server::connect_pool(&database.url, spec.name, &config)
            .await
            .expect("connect the pool");
        replicas.push(start_on(spec, config.clone(), database.clone(), own).await);
    }
    TestReplicas {
        database,
        pool,
        replicas,
    }
}

/// Ticks of the background job `job` in this process (every replica) that ended with `outcome`:
/// `phoenix_background_job_runs_total{job, outcome}`.
pub fn job_runs(job: &str, outcome: Outcome) -> u64 {
    phoenix_runtime::jobs::runs(job, outcome)
}

/// Waits until every job of `jobs` has completed at least `runs` more ticks (done or skipped)
/// than `since` counted, or panics after `limit`; then asserts none of them failed.
pub async fn await_job_ticks(jobs: &[&str], runs: u64, limit: Duration) {
    let ticks = |job: &str| job_runs(job, Outcome::Done) + job_runs(job, Outcome::Skipped);
    let since: Vec<u64> = jobs.iter().map(|job| ticks(job)).collect();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let behind: Vec<&str> = jobs
            .iter()
            .zip(&since)
            .filter(|(job, since)| ticks(job) < *since + runs)
            .map(|(job, _)| *job)
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "background jobs {behind:?} did not tick {runs} times within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for job in jobs {
        assert_eq!(
            job_runs(job, Outcome::Failed),
            0,
            "background job {job} failed (see its warning in the log, PHOENIX_TEST_LOG=warn)"
        );
    }
}

/// Waits until `count` (SQL answering one `bigint`) answers `expected` on `pool`, polling every
/// 20 ms; panics after `limit` with the last answer: for a test that waits for background jobs
/// to finish some work.
pub async fn await_count(pool: &PgPool, count: &str, expected: i64, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let now: i64 = sqlx::query_scalar(count)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{count}: {e}"));
        if now == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} still answers {now}, not {expected}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every event of the schema's `events` table has its stream position (the
/// sequencers of every replica take turns giving them), then asserts each has exactly one and
/// the positions have no gap.
pub async fn assert_events_positioned_once(pool: &PgPool, limit: Duration) {
    await_count(
        pool,
        "SELECT count(*) FROM events e
         WHERE NOT EXISTS (SELECT 1 FROM event_positions p WHERE p.seq = e.seq)",
        0,
        limit,
    )
    .await;
    let (events, positioned, positions, span): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), count(DISTINCT seq), count(*),
                coalesce(max(position) - min(position) + 1, 0)
         FROM event_positions",
    )
    .fetch_one(pool)
    .await
    .expect("count positions");
    assert_eq!(
        (positioned, positions, span),
        (events, events, events),
        "each of {events} events has one position, without a gap"
    );
}

/// Proves `spec`'s idempotency-key sweep `job` (see `phoenix_runtime::idempotency`) with two
/// replicas on one database and sweeps every 40 ms: expired keys are all removed, live ones all
/// kept, and no sweep of either replica fails (no lock waits or errors from the other).
pub async fn sweeps_expired_keys_once(spec: ServiceSpec, job: &str) {
    const EXPIRED: i64 = 3_000;
    const LIVE: i64 = 40;
    let replicas = spawn_replicas(spec, 2, |config| {
        config.jobs.set("*", Duration::from_millis(40));
    })
    .await;
    let insert = |count: i64, expires: &'static str, prefix: &'static str| {
        let sql = format!(
            "INSERT INTO request_keys
                 (scope, idempotency_key, method, fingerprint, outcome, created_at, expires_at)
             SELECT '', '{prefix}-' || n, 'Test', '\\x00', '{{}}', now() - interval '2 days', {expires}
             FROM generate_series(1, $1) n"
        );
        let pool = replicas.pool.clone();
        async move {
            sqlx::query(&sql)
                .bind(count)
                .execute(&pool)
                .await
                .expect("insert keys")
        }
    };
    insert(EXPIRED, "now() - interval '1 second'", "expired").await;
    insert(LIVE, "now() + interval '1 day'", "live").await;

    await_job_ticks(&[job], 6, Duration::from_secs(20)).await;

    let left: Vec<(String, i64)> = sqlx::query_as(
        "SELECT split_part(idempotency_key, '-', 1), count(*) FROM request_keys GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&replicas.pool)
    .await
    .expect("count keys");
    assert_eq!(
        left,
        vec![("live".to_owned(), LIVE)],
        "expired keys removed, live kept"
    );
    replicas.shutdown().await;
}
