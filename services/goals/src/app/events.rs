//! The event log as a stream: catch up, then follow (the runtime's stream).

use phoenix_runtime::Error;
use phoenix_runtime::stream::EventStream;

use super::Goals;

impl Goals {
    /// The context's event stream (Subscribe answers from it).
    pub fn events(&self) -> &EventStream {
        &self.events
    }

    /// Runs one sequencer pass now (tools and tests).
    pub async fn sequence_events(&self) -> Result<u64, Error> {
        self.events.sequence_now().await
    }
}
