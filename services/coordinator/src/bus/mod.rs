//! The event bus: relays that follow every context's event stream, `Publish` for callers,
//! consumer groups with acknowledgements, redelivery, dead letters and priorities.

pub mod catalog;
