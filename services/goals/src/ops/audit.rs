//! `phoenix audit goals`: re-checks from the database what must always hold.
//!
//! - `progress`: every goal's task counts (what its progress is derived from) are those of its
//!   tasks.
//! - `owners`: every task has its goal's user, every snapshot its task's.
//! - `exports`: every export record names an event of the log (the foreign key says so; this
//!   also counts the events exported and not).

use phoenix_runtime::AuditReport;
use sqlx::PgPool;

/// How many offending rows a check lists by id.
const LISTED: usize = 20;

/// One check: its name, what it counts, and the statement answering the offending ids.
const CHECKS: &[(&str, &str, &str)] = &[
    (
        "progress",
        "goals whose task counts differ from their tasks",
        "SELECT g.id::text FROM goals g
         LEFT JOIN (SELECT goal_id, count(*)::int AS total,
                           (count(*) FILTER (WHERE status = 'done'))::int AS done
                    FROM tasks GROUP BY goal_id) t ON t.goal_id = g.id
         WHERE g.task_count <> coalesce(t.total, 0) OR g.done_task_count <> coalesce(t.done, 0)
         ORDER BY g.id",
    ),
    (
        "owners",
        "tasks or snapshots of another user than their goal's or task's",
        "SELECT 'task ' || t.id FROM tasks t JOIN goals g ON g.id = t.goal_id
         WHERE t.user_id <> g.user_id
         UNION ALL
         SELECT 'snapshot ' || s.id FROM code_snapshots s JOIN tasks t ON t.id = s.task_id
         WHERE s.user_id <> t.user_id",
    ),
];

pub async fn run(pool: &PgPool) -> anyhow::Result<AuditReport> {
    let mut lines = Vec::new();
    let mut violations = 0;
    for (name, what, sql) in CHECKS {
        let found: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
        lines.push(format!("check {name}: {what}: {}", found.len()));
        lines.extend(
            found
                .iter()
                .take(LISTED)
                .map(|id| format!("  violation {name}: {id}")),
        );
        if found.len() > LISTED {
            lines.push(format!("  … and {} more", found.len() - LISTED));
        }
        violations += found.len();
    }
    let (goals, events, exported): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM goals), (SELECT count(*) FROM events),
                (SELECT count(*) FROM event_exports)",
    )
    .fetch_one(pool)
    .await?;
    lines.push(format!(
        "check exports: {exported} of {events} events exported to Parquet"
    ));
    Ok(AuditReport {
        lines,
        violations,
        scope: Some(format!("{goals} goals")),
    })
}
