//! The time the rules judge by. Production reads the system clock; tests, staging and support
//! (reproducing a user's week, a DST night) run a manual clock that only moves when told to,
//! through the ClockService. A manual clock stays within the years 1 to 9999, like every
//! timestamp a Phoenix service accepts.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use phoenix_runtime::Refusal;

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

    /// Sets a manual clock to `to` (the caller checked it is within the years 1 to 9999).
    pub fn set(&self, to: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
        let mut now = self
            .manual_time()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *now = to;
        Ok(*now)
    }

    /// Moves a manual clock forward by `by`; a step that would leave the year 9999 is refused
    /// and moves nothing.
    pub fn advance(&self, by: chrono::Duration) -> Result<DateTime<Utc>, Refusal> {
        let mut now = self
            .manual_time()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let moved = now
            .checked_add_signed(by)
            .filter(|moved| moved.year() <= 9999)
            .ok_or_else(|| {
                Refusal::invalid(
                    "by",
                    "CLOCK_OUT_OF_RANGE",
                    format!("would move the clock from {} past 9999-12-31", *now),
                )
            })?;
        *now = moved;
        Ok(moved)
    }

    /// The manual clock's time; the system clock cannot be moved (the ClockService is only
    /// served with a manual clock, so this is a guard, not a path).
    fn manual_time(&self) -> Result<&Mutex<DateTime<Utc>>, Refusal> {
        match self {
            Clock::System => Err(Refusal::precondition(
                "SYSTEM_CLOCK",
                "the service runs on the system clock, which cannot be moved",
            )),
            Clock::Manual(now) => Ok(now),
        }
    }
}
