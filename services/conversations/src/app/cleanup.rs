//! The cleanup: expired cache entries, empty acknowledged buffers, expired leases and old
//! typing stamps, counted in metrics (`phoenix_conversations_cleaned_total{kind}`).

use std::sync::OnceLock;

use phoenix_runtime::Error;
use phoenix_runtime::metrics::{self, KindLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::Conversations;
pub use crate::store::cleanup::Removed;

/// Most rows of each kind one pass removes (the next pass takes the rest).
pub const CLEANUP_BATCH: i64 = 10_000;

fn cleaned() -> &'static Family<KindLabels, Counter> {
    static CLEANED: OnceLock<Family<KindLabels, Counter>> = OnceLock::new();
    CLEANED.get_or_init(|| {
        metrics::counter_family(
            "conversations_cleaned",
            "Rows the conversations cleanup removed, by kind",
        )
    })
}

impl Conversations {
    /// One cleanup pass now. It never removes a message that was not acknowledged.
    pub async fn cleanup(&self) -> Result<Removed, Error> {
        let removed = crate::store::cleanup::run(&self.pool, CLEANUP_BATCH).await?;
        for (kind, count) in [
            ("context_entry", removed.context_entries),
            ("chat_info_entry", removed.chat_info_entries),
            ("acknowledged_buffer", removed.acknowledged_buffers),
            ("expired_lease", removed.expired_leases),
            ("typing_stamp", removed.typing_stamps),
        ] {
            if count > 0 {
                cleaned()
                    .get_or_create(&KindLabels {
                        kind: kind.to_owned(),
                    })
                    .inc_by(count);
            }
        }
        Ok(removed)
    }
}
