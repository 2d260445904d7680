//! The reconciliation's SQL: the sagas to check (the coordinator's own `sagas` table; their
//! steps come from the engine's log through [`crate::saga::SagaEngine::outcome`]), and the
//! record of each run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Finding, Reconciliation};

/// A saga the reconciliation checks: one that has ended, or is stuck.
#[derive(Debug, Clone)]
pub struct EndedSaga {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub state: String,
    pub user_id: String,
    pub input: serde_json::Value,
}

/// The sagas COMPLETED, COMPENSATED or STUCK, updated at or after `since` (every one when
/// `None`), oldest first.
pub async fn ended_sagas(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<EndedSaga>> {
    let rows: Vec<(Uuid, String, String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT saga_id, saga_type, state, user_id, input FROM sagas
          WHERE state IN ('COMPLETED', 'COMPENSATED', 'STUCK')
            AND ($1::timestamptz IS NULL OR updated_at >= $1)
          ORDER BY created_at, saga_id",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(saga_id, saga_type, state, user_id, input)| EndedSaga {
            saga_id,
            saga_type,
            state,
            user_id,
            input,
        })
        .collect())
}

/// Sagas still RUNNING or COMPENSATING: not checked (their participants' state is in motion).
pub async fn active_sagas(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM sagas WHERE state IN ('RUNNING', 'COMPENSATING')")
            .fetch_one(pool)
            .await?,
    )
}

/// How many sagas are in each state, every saga counted.
pub async fn sagas_by_state(pool: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT state, count(*) FROM sagas GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await?,
    )
}

/// Records one run and its findings, in one transaction.
pub async fn record_run(
    pool: &PgPool,
    started_at: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    outcome: Result<&Reconciliation, &str>,
) -> anyhow::Result<Uuid> {
    let run_id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let (checked, inconsistencies, stuck, error) = match outcome {
        Ok(run) => (
            i64::try_from(run.checked).unwrap_or(i64::MAX),
            i32::try_from(run.findings.len()).unwrap_or(i32::MAX),
            i32::try_from(run.stuck.len()).unwrap_or(i32::MAX),
            None,
        ),
        Err(error) => (0, 0, 0, Some(error.to_owned())),
    };
    sqlx::query(
        "INSERT INTO reconciliation_runs
             (run_id, started_at, finished_at, checked_since, sagas_checked, inconsistencies, stuck, error)
         VALUES ($1, $2, greatest(now(), $2), $3, $4, $5, $6, $7)",
    )
    .bind(run_id)
    .bind(started_at)
    .bind(since)
    .bind(checked)
    .bind(inconsistencies)
    .bind(stuck)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    if let Ok(run) = outcome {
        let findings: Vec<&Finding> = run.findings.iter().collect();
        for (index, finding) in findings.iter().enumerate() {
            sqlx::query(
                "INSERT INTO reconciliation_findings (run_id, seq, saga_id, saga_type, check_name, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(run_id)
            .bind(i32::try_from(index + 1).unwrap_or(i32::MAX))
            .bind(finding.saga_id)
            .bind(&finding.saga_type)
            .bind(finding.check)
            .bind(&finding.detail)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(run_id)
}

/// Whether a run that finished cleanly started less than 9/10 of `interval` ago: another
/// replica's (their schedules are offset), which makes this period's. A failed run does not
/// count, so another replica tries again at its next tick.
pub async fn ran_this_period(pool: &PgPool, interval: Duration) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM reconciliation_runs
                         WHERE error IS NULL
                           AND started_at > now() - $1 * interval '1 millisecond')",
    )
    .bind(i64::try_from(interval.as_millis() * 9 / 10).unwrap_or(i64::MAX))
    .fetch_one(pool)
    .await?)
}
