//! The narrative's background work: forgetting the idempotency keys of progress changes once
//! they expire ([`IDEMPOTENCY_TTL`](crate::app::IDEMPOTENCY_TTL)), so `request_keys` does not
//! grow without end. One replica at a time runs it (a singleton); the others skip their tick.

use std::time::Duration;

use phoenix_runtime::ServiceContext;

/// How often expired keys are deleted, and how many at most per sweep.
const KEY_SWEEP: Duration = Duration::from_secs(60);
const KEY_BATCH: i64 = 10_000;

pub fn start(context: &ServiceContext) {
    phoenix_runtime::idempotency::sweep_expired_keys(
        context,
        "narrative-remove-expired-keys",
        KEY_SWEEP,
        KEY_BATCH,
    );
}
