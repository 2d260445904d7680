//! The time the rules judge by. Production reads the system clock; tests, staging and support
//! (reproducing a user's week, a DST night) run a manual clock that only moves when told to,
//! through the ClockService.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};

#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// Starts at the system time and moves only through `set` and `advance`.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    pub fn manual(start: DateTime<Utc>) -> Self {
        Clock::Manual(Arc::new(Mutex::new(start)))
    }

    /// Now, in microseconds: what PostgreSQL keeps, so an instant reads back from every store
    /// (SQL, the JSON file, an answer) exactly as it was written.
    pub fn now(&self) -> DateTime<Utc> {
        let now = match self {
            Clock::System => Utc::now(),
            Clock::Manual(now) => *now.lock().unwrap_or_else(|e| e.into_inner()),
        };
        now.trunc_subsecs(6)
    }

    /// Sets a manual clock; None for the system clock, which cannot be moved.
    pub fn set(&self, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Clock::System => None,
            Clock::Manual(now) => {
                let mut now = now.lock().unwrap_or_else(|e| e.into_inner());
                *now = to;
                Some(*now)
            }
        }
    }

    /// Moves a manual clock forward; None for the system clock.
    pub fn advance(&self, by: chrono::Duration) -> Option<DateTime<Utc>> {
        match self {
            Clock::System => None,
            Clock::Manual(now) => {
                let mut now = now.lock().unwrap_or_else(|e| e.into_inner());
                *now += by;
                Some(*now)
            }
        }
    }
}
