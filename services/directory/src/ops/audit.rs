//! `phoenix audit directory`: re-checks from the database what must always hold.
//!
//! - Every user with VIP access now (a trial or membership before its end) is in the VIP
//!   channel (seed 001); `EnsureChannelMembership` repairs one who is not.

use phoenix_runtime::AuditReport;
use sqlx::PgPool;

use crate::store::channels;

/// How many offending users a check lists by id.
const LISTED: i64 = 20;

pub async fn run(pool: &PgPool) -> anyhow::Result<AuditReport> {
    let now = chrono::Utc::now();
    let (ids, total) = channels::vips_outside_vip_channel(pool, now, LISTED)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await?;
    let mut lines = vec![format!(
        "check vip_channel: users with VIP access outside the VIP channel: {total}"
    )];
    lines.extend(ids.iter().map(|id| {
        format!("  violation vip_channel: user {id} has VIP access but is not in the VIP channel (EnsureChannelMembership repairs it)")
    }));
    if total > LISTED {
        lines.push(format!("  … and {} more", total - LISTED));
    }
    Ok(AuditReport {
        lines,
        violations: usize::try_from(total).unwrap_or(usize::MAX),
        scope: Some(format!("{users} users")),
    })
}
