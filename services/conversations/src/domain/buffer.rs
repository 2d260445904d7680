//! Debounced message buffers and their leases.
//!
//! A contact's buffer is *ready* when it holds messages, no live lease covers it, and one of
//! three things happened ([`BufferPolicy::is_ready`]): no message arrived for the debounce
//! window (the timer each message resets), its first message waited the maximum wait, or it
//! holds the maximum count. The store's take statement is the same rule in SQL
//! (`store::buffers::READY`); the unit tests here are its specification.
//!
//! A take leases the buffer to one worker and records the last sequence it took; the
//! acknowledgement of that lease removes the messages up to that sequence and nothing after
//! ([`check_ack`]). An acknowledgement of a lease that is not the buffer's current one, or of
//! one that expired, is refused: the messages stay, and the next take hands them out again, in
//! sequence order, with whatever arrived since.

use chrono::{DateTime, Duration, Utc};
use phoenix_runtime::Refusal;
use uuid::Uuid;

/// When a buffer becomes ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferPolicy {
    pub debounce: Duration,
    pub max_wait: Duration,
    pub max_messages: i32,
}

pub const DEFAULT_DEBOUNCE: Duration = Duration::seconds(3);
pub const MAX_DEBOUNCE: Duration = Duration::minutes(10);
pub const DEFAULT_MAX_WAIT: Duration = Duration::seconds(30);
pub const MAX_MAX_WAIT: Duration = Duration::hours(1);
pub const DEFAULT_MAX_MESSAGES: i32 = 20;
pub const MAX_MAX_MESSAGES: i32 = 1000;

impl Default for BufferPolicy {
    fn default() -> Self {
        Self {
            debounce: DEFAULT_DEBOUNCE,
            max_wait: DEFAULT_MAX_WAIT,
            max_messages: DEFAULT_MAX_MESSAGES,
        }
    }
}

/// What readiness is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferClock {
    pub message_count: i32,
    pub first_message_at: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    /// The expiry of the lease that holds it, if one does.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl BufferPolicy {
    /// Whether the buffer may be taken at `now` (the rule of `store::buffers::READY`).
    pub fn is_ready(&self, buffer: &BufferClock, now: DateTime<Utc>) -> bool {
        let (Some(first), Some(last)) = (buffer.first_message_at, buffer.last_message_at) else {
            return false;
        };
        if buffer.message_count == 0 || buffer.lease_expires_at.is_some_and(|e| e > now) {
            return false;
        }
        last + self.debounce <= now
            || first + self.max_wait <= now
            || buffer.message_count >= self.max_messages
    }
}

/// A buffer's lease state as the acknowledgement reads it, under the buffer's row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseState {
    pub lease_id: Option<Uuid>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub taken_up_to: Option<i64>,
    pub last_acked_lease: Option<Uuid>,
}

/// What an acknowledgement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Remove the messages up to this sequence and free the buffer.
    Remove { up_to: i64 },
    /// The same lease was acknowledged already: answer as then, change nothing.
    Replay,
}

/// The acknowledgement of `lease` at `now`: only the live current lease removes messages.
pub fn check_ack(state: &LeaseState, lease: Uuid, now: DateTime<Utc>) -> Result<Ack, Refusal> {
    if state.lease_id == Some(lease) {
        let (Some(expires), Some(up_to)) = (state.lease_expires_at, state.taken_up_to) else {
            return Err(not_held(lease));
        };
        if expires <= now {
            return Err(Refusal::precondition(
                "LEASE_EXPIRED",
                format!(
                    "lease {lease} expired at {}; its messages stay buffered and will be taken again",
                    expires.to_rfc3339()
                ),
            )
            .with("lease_id", lease)
            .with("expire_time", expires.to_rfc3339())
            .at("lease_id"));
        }
        return Ok(Ack::Remove { up_to });
    }
    if state.last_acked_lease == Some(lease) {
        return Ok(Ack::Replay);
    }
    Err(not_held(lease))
}

/// The refusal of an acknowledgement by a lease that does not hold the buffer.
pub fn not_held(lease: Uuid) -> Refusal {
    Refusal::precondition(
        "LEASE_NOT_HELD",
        format!("lease {lease} does not hold this buffer (another worker took it, or it was never taken)"),
    )
    .with("lease_id", lease)
    .at("lease_id")
}

/// A buffer handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenBuffer {
    pub phone: super::Phone,
    pub lease_id: Uuid,
    pub lease_expires_at: DateTime<Utc>,
    pub messages: Vec<BufferedMessage>,
    pub redeliveries: i32,
}

/// One buffered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferedMessage {
    pub sequence: i64,
    pub body: String,
    pub message_id: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("valid")
    }

    fn policy() -> BufferPolicy {
        BufferPolicy {
            debounce: Duration::seconds(3),
            max_wait: Duration::seconds(30),
            max_messages: 5,
        }
    }

    fn buffer(count: i32, first: i64, last: i64) -> BufferClock {
        BufferClock {
            message_count: count,
            first_message_at: Some(at(first)),
            last_message_at: Some(at(last)),
            lease_expires_at: None,
        }
    }

    #[test]
    fn a_buffer_is_ready_once_the_debounce_window_passed_without_a_message() {
        let b = buffer(2, 0, 10);
        assert!(!policy().is_ready(&b, at(12)));
        assert!(policy().is_ready(&b, at(13)));
    }

    #[test]
    fn each_message_resets_the_timer_until_the_maximum_wait() {
        // Messages every 2 s never let the debounce pass; the maximum wait does.
        let b = buffer(4, 0, 28);
        assert!(!policy().is_ready(&b, at(29)));
        assert!(policy().is_ready(&b, at(30)));
    }

    #[test]
    fn the_maximum_count_makes_it_ready_at_once() {
        assert!(policy().is_ready(&buffer(5, 0, 0), at(0)));
        assert!(!policy().is_ready(&buffer(4, 0, 0), at(0)));
    }

    #[test]
    fn an_empty_or_leased_buffer_is_not_ready_until_the_lease_expires() {
        let empty = BufferClock {
            message_count: 0,
            first_message_at: None,
            last_message_at: None,
            lease_expires_at: None,
        };
        assert!(!policy().is_ready(&empty, at(100)));
        let leased = BufferClock {
            lease_expires_at: Some(at(60)),
            ..buffer(2, 0, 0)
        };
        assert!(!policy().is_ready(&leased, at(59)));
        assert!(policy().is_ready(&leased, at(60)));
    }

    #[test]
    fn only_the_live_current_lease_acknowledges() {
        let lease = Uuid::now_v7();
        let state = LeaseState {
            lease_id: Some(lease),
            lease_expires_at: Some(at(60)),
            taken_up_to: Some(7),
            last_acked_lease: None,
        };
        assert_eq!(
            check_ack(&state, lease, at(10)),
            Ok(Ack::Remove { up_to: 7 })
        );
        let expired = check_ack(&state, lease, at(60)).expect_err("expired");
        assert_eq!(expired.reason, "LEASE_EXPIRED");
        assert_eq!(expired.field(), Some("lease_id"));
        let other = check_ack(&state, Uuid::now_v7(), at(10)).expect_err("not held");
        assert_eq!(other.reason, "LEASE_NOT_HELD");
        let done = LeaseState {
            lease_id: None,
            lease_expires_at: None,
            taken_up_to: None,
            last_acked_lease: Some(lease),
        };
        assert_eq!(check_ack(&done, lease, at(100)), Ok(Ack::Replay));
    }
}
