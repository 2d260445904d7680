//! The directory's background work: forgetting the idempotency keys of VIP changes once they
//! expire ([`IDEMPOTENCY_TTL`](crate::app::IDEMPOTENCY_TTL)), so `request_keys` does not grow
//! without end. Each replica runs it; concurrent deletes of the same expired rows are safe.

use std::time::Duration;

use chrono::Utc;
use phoenix_runtime::ServiceContext;

use crate::app::Directory;

/// How often expired keys are deleted.
const KEY_SWEEP: Duration = Duration::from_secs(60);
/// Most keys deleted per sweep.
const KEY_BATCH: i64 = 10_000;

pub fn start(context: &ServiceContext, directory: &Directory) {
    let pool = directory.pool().clone();
    context.every("directory-remove-expired-keys", KEY_SWEEP, move || {
        let pool = pool.clone();
        async move {
            let removed =
                phoenix_runtime::idempotency::remove_expired(&pool, Utc::now(), KEY_BATCH).await?;
            if removed > 0 {
                tracing::info!(removed, "forgot expired idempotency keys");
            }
            Ok(())
        }
    });
}
