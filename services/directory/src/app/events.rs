//! The directory's event stream.

use futures_util::Stream;
use phoenix_runtime::Error;
use phoenix_runtime::stream::StoredEvent;

use super::Directory;

impl Directory {
    /// The events after position `after` (0: from the first), then each new one as it gets its
    /// position, until the service shuts down or the caller drops the stream. NOT_FOUND for a
    /// position that is not one of an event.
    pub async fn follow_events(
        &self,
        after: i64,
    ) -> Result<impl Stream<Item = Result<StoredEvent, Error>> + Send + 'static, Error> {
        self.events.follow(None, after).await
    }

    /// Runs one sequencer pass now (tools and tests).
    pub async fn sequence_events(&self) -> Result<u64, Error> {
        self.events.sequence_now().await
    }
}
