//! `phoenix audit conversations`: re-checks from the database what must always hold.
//!
//! - A buffer's row agrees with its messages: `message_count` is how many it holds,
//!   `first_message_at` the oldest one's time, and no message or lease reaches its next
//!   sequence (a take and the readiness rule read only the row, so a row that disagrees would
//!   hold messages back or hand out a wrong range).

use phoenix_runtime::AuditReport;
use sqlx::PgPool;

use crate::store::audit;

/// How many offending buffers a check lists by phone.
const LISTED: i64 = 20;

pub async fn run(pool: &PgPool) -> anyhow::Result<AuditReport> {
    let (phones, total) = audit::inconsistent_buffers(pool, LISTED)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let buffers = audit::buffers(pool)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut lines = vec![format!(
        "check buffer_rows: buffers whose row disagrees with their messages: {total}"
    )];
    lines.extend(phones.iter().map(|phone| {
        format!("  violation buffer_rows: the buffer of {phone} disagrees with its messages (count, first time or sequence)")
    }));
    if total > LISTED {
        lines.push(format!("  … and {} more", total - LISTED));
    }
    Ok(AuditReport {
        lines,
        violations: usize::try_from(total).unwrap_or(usize::MAX),
        scope: Some(format!("{buffers} buffers")),
    })
}
