//! The context's background work: the cleanup (expired cache entries, empty acknowledged
//! buffers, expired leases, old typing stamps) every [`CLEANUP_INTERVAL`]. Each replica runs
//! it; concurrent deletes of the same rows are safe, and it never removes an unacknowledged
//! message.

use std::time::Duration;

use phoenix_runtime::ServiceContext;

use crate::app::Conversations;

/// How often the cleanup runs.
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

pub fn start(context: &ServiceContext, conversations: &Conversations) {
    let conversations = conversations.clone();
    context.every("conversations-cleanup", CLEANUP_INTERVAL, move || {
        let conversations = conversations.clone();
        async move {
            let removed = conversations.cleanup().await?;
            if removed != Default::default() {
                tracing::info!(?removed, "conversations cleanup");
            }
            Ok(())
        }
    });
}
