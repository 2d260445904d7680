//! The cleanup: expired cache entries, empty acknowledged buffers, expired leases and old
//! typing stamps, counted in metrics (`phoenix_conversations_cleaned_total{kind}`).

use phoenix_runtime::Error;

use super::Conversations;
use crate::metrics;
pub use crate::store::cleanup::Removed;

/// Most rows of each kind one pass removes (the next pass takes the rest).
pub const CLEANUP_BATCH: i64 = 10_000;

impl Conversations {
    /// One cleanup pass now. It never removes a message that was not acknowledged.
    pub async fn cleanup(&self) -> Result<Removed, Error> {
        let removed = crate::store::cleanup::run(&self.pool, CLEANUP_BATCH).await?;
        let cleaned = &metrics::get().cleaned;
        for (kind, count) in [
            ("context_entry", removed.context_entries),
            ("chat_info_entry", removed.chat_info_entries),
            ("acknowledged_buffer", removed.acknowledged_buffers),
            ("expired_lease", removed.expired_leases),
            ("typing_stamp", removed.typing_stamps),
            ("idempotency_key", removed.idempotency_keys),
        ] {
            metrics::count(cleaned, kind, count);
        }
        Ok(removed)
    }
}
