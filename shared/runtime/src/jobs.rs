//! Background jobs: the sweepers and schedules a service runs beside its RPCs, safe with any
//! number of replicas on one database.
//!
//! A job is started with [`ServiceContext::every`](crate::ServiceContext::every) (it runs on
//! every replica: refreshing a cache of this process) or
//! [`ServiceContext::singleton`](crate::ServiceContext::singleton) (one replica at a time: work
//! on the shared database). A singleton tick first tries a session advisory lock keyed by the
//! service's schema and the job's name, on a connection of the job's own (not one of the
//! pool's, so jobs waiting for pooled connections can never hold every one of them). A replica
//! that finds the lock taken skips its tick: the replica holding it is doing the work. So runs of
//! one job never overlap, each sees what the previous one committed, and no two replicas
//! contend for the same rows (no lock waits, deadlocks or unique violations to log).
//!
//! The lock goes with its connection: if the connection breaks during a run (the database
//! restarted), another replica may start the job before this run ends. Jobs therefore still
//! change each row under the same row locks as the RPCs do (or `FOR UPDATE SKIP LOCKED`), so the
//! lock is what keeps replicas out of each other's way, not the only thing that keeps the data
//! right.
//!
//! Every tick is counted in `phoenix_background_job_runs_total{job, outcome}` with `outcome`
//! `done`, `skipped` (a singleton another replica was running) or `failed` (logged as
//! `background job failed`). A panicking job is a failed run; the next tick still happens.
//!
//! Intervals are the service's defaults, overridden per job by `PHOENIX_JOB_INTERVALS`
//! ([`JobConfig`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::FutureExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::ServiceContext;

/// Where a job runs when a service has several replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// On every replica: work on the replica's own state (a cache reload).
    Each,
    /// On one replica at a time (the one that takes the job's advisory lock): work on the
    /// shared database.
    One,
}

/// What one tick of a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A singleton whose lock another replica held: nothing was done here.
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// The interval of a job by name, in place of the service's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInterval {
    /// A job's name (`remove-expired-keys`, `missions-day-close`…) or `*` for every job.
    pub job: String,
    pub interval: Duration,
}

/// Settings of the background jobs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobConfig {
    /// Intervals of background jobs, overriding their defaults: `job=duration` pairs separated
    /// by commas, e.g. `remove-expired-keys=10m,conversations-cleanup=30s`; `*=duration` sets
    /// every job not named. The job names are in the services' READMEs and in the
    /// `phoenix_background_job_runs_total` metric.
    #[arg(long = "job-intervals", env = "PHOENIX_JOB_INTERVALS", value_delimiter = ',', value_parser = job_interval)]
    pub intervals: Vec<JobInterval>,
}

impl JobConfig {
    /// The interval of `job`: its own override, else the `*` one, else `default`.
    pub fn interval_of(&self, job: &str, default: Duration) -> Duration {
        let find = |name: &str| {
            self.intervals
                .iter()
                .rev()
                .find(|each| each.job == name)
                .map(|each| each.interval)
        };
        find(job).or_else(|| find("*")).unwrap_or(default)
    }

    /// Sets the interval of `job` (`*`: every job not named).
    pub fn set(&mut self, job: &str, interval: Duration) -> &mut Self {
        self.intervals.push(JobInterval {
            job: job.to_owned(),
            interval,
        });
        self
    }
}

/// Parses one `job=duration` pair of `PHOENIX_JOB_INTERVALS`.
pub fn job_interval(value: &str) -> Result<JobInterval, String> {
    let (job, interval) = value.split_once('=').ok_or_else(|| {
        format!("{value:?}: expected job=duration, e.g. conversations-cleanup=30s")
    })?;
    let job = job.trim();
    if job.is_empty() {
        return Err(format!("{value:?}: the job name is empty"));
    }
    let interval =
        crate::config::positive_duration(interval.trim()).map_err(|e| format!("{value:?}: {e}"))?;
    Ok(JobInterval {
        job: job.to_owned(),
        interval,
    })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    outcome: String,
}

fn runs_family() -> &'static Family<JobLabels, Counter> {
    static RUNS: OnceLock<Family<JobLabels, Counter>> = OnceLock::new();
    RUNS.get_or_init(|| {
        crate::metrics::counter_family(
            "background_job_runs",
            "Ticks of background jobs, by job and outcome (done, skipped: another replica ran it, failed)",
        )
    })
}

/// How many ticks of `job` in this process ended with `outcome`.
pub fn runs(job: &str, outcome: Outcome) -> u64 {
    runs_family()
        .get_or_create(&JobLabels {
            job: job.to_owned(),
            outcome: outcome.as_str().to_owned(),
        })
        .get()
}

fn count(job: &str, outcome: Outcome) {
    runs_family()
        .get_or_create(&JobLabels {
            job: job.to_owned(),
            outcome: outcome.as_str().to_owned(),
        })
        .inc();
}

/// Runs `job` every `interval` (the first time one interval from now, the interval as
/// `PHOENIX_JOB_INTERVALS` may override it) until `context` shuts down, on the replicas
/// `replicas` says.
pub(crate) fn schedule<F, Fut>(
    context: &ServiceContext,
    name: &'static str,
    interval: Duration,
    replicas: Replicas,
    job: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let configured = context.config.jobs.interval_of(name, interval);
    if configured != interval {
        // Said once at start, so an operator sees the override took (a name that matches no
        // job is ignored).
        tracing::info!(job = name, interval = ?configured, default = ?interval, "job interval from PHOENIX_JOB_INTERVALS");
    }
    let interval = configured;
    let shutdown = context.shutdown.clone();
    let mut lease = match replicas {
        Replicas::Each => None,
        Replicas::One => Some(Lease::new(
            name,
            context.pool.connect_options().as_ref().clone(),
        )),
    };
    tokio::spawn(async move {
        // The first run is one interval after the start, not at it: a service that just
        // started (or a test that just spawned one) is not raced by its own schedules.
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Some(lease) = &mut lease {
                match lease.try_lock().await {
                    Ok(true) => {}
                    Ok(false) => {
                        count(name, Outcome::Skipped);
                        continue;
                    }
                    Err(error) => {
                        lease.connection = None;
                        tracing::warn!(job = name, %error, "background job failed: cannot take its lock");
                        count(name, Outcome::Failed);
                        continue;
                    }
                }
            }
            // Made before any await, so the job itself need not be `Sync`.
            let started = std::panic::catch_unwind(AssertUnwindSafe(&job));
            let outcome = run(name, started).await;
            if let Some(lease) = &mut lease {
                lease.unlock().await;
            }
            count(name, outcome);
        }
    });
}

/// One run of a job (`started`: its future, or the panic that making it raised), its error or
/// panic logged.
async fn run<Fut>(name: &'static str, started: std::thread::Result<Fut>) -> Outcome
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let finished = match started {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    match finished {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(error)) => {
            tracing::warn!(job = name, error = %format!("{error:#}"), "background job failed");
            Outcome::Failed
        }
        Err(_) => {
            tracing::error!(job = name, "background job panicked");
            Outcome::Failed
        }
    }
}

/// The advisory lock of one singleton job, on a connection of its own, opened on first use and
/// again after it broke.
struct Lease {
    job: &'static str,
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

/// The lock's two keys: the schema (the connection's `search_path` starts with the service's
/// own) and the job. Advisory locks are per database, so services sharing one never collide.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('phoenix.job.' || coalesce(current_schema(), '')), hashtext($1))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('phoenix.job.' || coalesce(current_schema(), '')), hashtext($1))";

impl Lease {
    fn new(job: &'static str, options: PgConnectOptions) -> Self {
        Self {
            job,
            options,
            connection: None,
        }
    }

    /// Tries the lock on the kept connection; when that connection no longer answers (it sat
    /// idle past a proxy's or the server's timeout, the database restarted), once more on a
    /// new one, so only a database that is really away fails the tick.
    async fn try_lock(&mut self) -> Result<bool, sqlx::Error> {
        if let Some(connection) = &mut self.connection {
            match Self::try_lock_on(connection, self.job).await {
                Ok(taken) => return Ok(taken),
                Err(error) => {
                    tracing::debug!(job = self.job, %error, "job lock connection lost; reconnecting");
                    self.connection = None;
                }
            }
        }
        let connection = self
            .connection
            .insert(PgConnection::connect_with(&self.options).await?);
        Self::try_lock_on(connection, self.job).await
    }

    async fn try_lock_on(connection: &mut PgConnection, job: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(TRY_LOCK)
            .bind(job)
            .fetch_one(connection)
            .await
    }

    async fn unlock(&mut self) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let unlocked: Result<bool, _> = sqlx::query_scalar(UNLOCK)
            .bind(self.job)
            .fetch_one(connection)
            .await;
        if !matches!(unlocked, Ok(true)) {
            // Lost with its session (then it is already free) or still held: closing the
            // connection frees it either way.
            tracing::debug!(
                job = self.job,
                ?unlocked,
                "job lock not released; closing its connection"
            );
            self.connection = None;
        }
    }
}

/// Tables of the pool's schema smaller than this are kept analyzed by
/// [`analyze_growing_tables`]; larger ones are autovacuum's alone.
pub const GROWING_TABLE_ROWS: i64 = 1_000_000;

/// Analyzes each table of the pool's schema (`current_schema()`) that holds at least 500 rows
/// and has never been analyzed, or has doubled since it last was, while it is under
/// [`GROWING_TABLE_ROWS`]; returns the tables it analyzed.
///
/// Why: autovacuum first visits a new database up to `autovacuum_naptime` (a minute) after it
/// starts, and then analyzes a table only once a tenth of it has changed. So the tables of a new
/// service go their first minute without statistics, and the plans its connections cache then
/// are made blind: on an empty data directory, the ledger's first minute of transfers took half
/// again as long to lock their accounts as on a used one. Doubling keeps a new table's
/// statistics near its size with a few analyses over its life (500, 1,000, 2,000 rows…), each
/// of a small table; a table that only changes rows (balances) is analyzed once.
pub async fn analyze_growing_tables(pool: &sqlx::PgPool) -> Result<Vec<String>, sqlx::Error> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', s.schemaname, s.relname)
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
         WHERE s.schemaname = current_schema()
           AND s.n_live_tup >= 500 AND s.n_live_tup < $1
           AND (c.reltuples < 0 OR s.n_live_tup >= 2 * c.reltuples)
         ORDER BY s.relname",
    )
    .bind(GROWING_TABLE_ROWS)
    .fetch_all(pool)
    .await?;
    let mut analyzed = Vec::with_capacity(due.len());
    for table in due {
        // The name comes quoted by `format('%I')`: a statement cannot take it as a parameter.
        match sqlx::query(&format!("ANALYZE {table}")).execute(pool).await {
            Ok(_) => analyzed.push(table),
            // Dropped since it was listed (a migration going down): nothing to analyze.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => {}
            Err(error) => return Err(error),
        }
    }
    Ok(analyzed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_the_jobs_own_then_the_wildcard_then_the_default() {
        let mut config = JobConfig::default();
        let default = Duration::from_secs(60);
        assert_eq!(config.interval_of("a", default), default);
        config.set("*", Duration::from_secs(5));
        config.set("a", Duration::from_millis(200));
        assert_eq!(config.interval_of("a", default), Duration::from_millis(200));
        assert_eq!(config.interval_of("b", default), Duration::from_secs(5));
    }

    #[test]
    fn a_pair_parses_or_says_what_is_wrong() {
        assert_eq!(
            job_interval(" conversations-cleanup = 30s").unwrap(),
            JobInterval {
                job: "conversations-cleanup".into(),
                interval: Duration::from_secs(30)
            }
        );
        assert!(
            job_interval("cleanup")
                .unwrap_err()
                .contains("expected job=duration")
        );
        assert!(
            job_interval("=5s")
                .unwrap_err()
                .contains("job name is empty")
        );
        assert!(
            job_interval("cleanup=0s")
                .unwrap_err()
                .contains("at least 1ms")
        );
    }
}
