//! The directory's background work: forgetting the idempotency keys of VIP changes once they
//! expire ([`IDEMPOTENCY_TTL`](crate::app::IDEMPOTENCY_TTL)), so `request_keys` does not grow
//! without end. One replica at a time runs it (a singleton); the others skip their tick.

use std::time::Duration;

use phoenix_runtime::ServiceContext;

/// How often expired keys are deleted.
const KEY_SWEEP: Duration = Duration::from_secs(60);
/// Most keys deleted per sweep.
const KEY_BATCH: i64 = 10_000;

pub fn start(context: &ServiceContext) {
    phoenix_runtime::idempotency::sweep_expired_keys(
        context,
        "directory-remove-expired-keys",
        KEY_SWEEP,
        KEY_BATCH,
    );
}
