//! The conversations context's types and rules as plain Rust: no I/O, no clock reads (the time
//! is passed in, and it is always the database's: `now()` of the statement's transaction, so
//! every lease and expiry is judged by one clock whatever the replica), refusals as values.
//!
//! Conventions every module here shares:
//! - A contact's id is its WhatsApp number as digits only ([`Phone`]); formatting a caller or a
//!   legacy file adds ("+57 300 123-4567") is removed, so one number written two ways is one
//!   contact.
//! - A buffer's messages carry a per-contact sequence that only grows; a worker's lease takes
//!   the messages up to a sequence, and its acknowledgement removes only those, so a message
//!   appended while a lease is held is delivered by the next lease ([`buffer`]).
//! - Every lease (a buffer's, a processing lease) has an expiry; an expired lease is nobody's,
//!   and what it covered is handed out again.
//! - Durations are bounded: a TTL or lease is positive and at most its maximum, a debounce or
//!   typing interval may be zero.

pub mod buffer;
pub mod contact;
pub mod lease;
pub mod legacy;
pub mod legacy_file;

pub use buffer::{BufferPolicy, TakenBuffer};
pub use contact::{CacheKind, Contact, ContactProfile, Phone, Thread, UserState};

use chrono::Duration;

/// Longest context or chat-info cache value, in characters.
pub const MAX_CACHE_CHARS: usize = 100_000;
/// Longest buffered message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16_384;
/// Longest channel message id.
pub const MAX_MESSAGE_ID_CHARS: usize = 128;
/// Longest worker or lease owner name.
pub const MAX_OWNER_CHARS: usize = 100;
/// Longest image reference and caption.
pub const MAX_IMAGE_REF_CHARS: usize = 2048;
pub const MAX_CAPTION_CHARS: usize = 4096;

/// Default and largest TTL of the caches (the seed: context 1 h, chat info 5 min).
pub fn default_ttl(kind: CacheKind) -> Duration {
    match kind {
        CacheKind::Context => Duration::hours(1),
        CacheKind::ChatInfo => Duration::minutes(5),
    }
}
pub const MAX_TTL: Duration = Duration::days(7);

/// Default and largest lease (buffer or processing).
pub const DEFAULT_LEASE: Duration = Duration::seconds(60);
pub const MAX_LEASE: Duration = Duration::hours(1);

/// Default and largest minimum interval between two typing stamps.
pub const DEFAULT_TYPING_INTERVAL: Duration = Duration::seconds(5);
pub const MAX_TYPING_INTERVAL: Duration = Duration::hours(1);

/// Typing stamps older than this are removed by the cleanup (they no longer hold anyone back).
pub const TYPING_RETENTION: Duration = Duration::days(1);
/// An empty buffer (every message acknowledged, no lease) idle this long is removed by the
/// cleanup; its sequence starts again at 1 when the contact writes again.
pub const EMPTY_BUFFER_RETENTION: Duration = Duration::hours(1);
