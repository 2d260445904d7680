//! The context's background work: the cleanup (expired cache entries, empty acknowledged
//! buffers, expired leases, old typing stamps) every [`CLEANUP_INTERVAL`] (or as
//! `PHOENIX_JOB_INTERVALS` says). It is a singleton
//! ([`ServiceContext::singleton`]): with several replicas one runs it at a time and the others
//! skip their tick, so no two cleanups contend for the same rows. It never removes an
//! unacknowledged message.

use std::time::Duration;

use phoenix_runtime::ServiceContext;

use crate::app::Conversations;

/// How often the cleanup runs.
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

pub fn start(context: &ServiceContext, conversations: &Conversations) {
    let conversations = conversations.clone();
    context.singleton("conversations-cleanup", CLEANUP_INTERVAL, move || {
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
