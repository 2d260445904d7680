//! Protobuf well-known types ⇄ chrono, the same way in every service.

use chrono::{DateTime, Datelike, Utc};

/// A UTC time as a protobuf `Timestamp`.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Below one second, so it fits; a leap second's 1_000_000_000+ is clamped.
        nanos: i32::try_from(time.timestamp_subsec_nanos().min(999_999_999)).unwrap_or(0),
    }
}

/// An optional UTC time as an optional `Timestamp`.
pub fn optional_timestamp(time: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    time.map(timestamp)
}

/// A `Timestamp` as a UTC time, if it is a valid one between the years 1 and 9999 (the range
/// protobuf's JSON mapping, and PostgreSQL's `timestamptz` comfortably, can hold).
pub fn time_from_proto(value: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(value.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    DateTime::from_timestamp(value.seconds, nanos).filter(|t| (1..=9999).contains(&t.year()))
}

/// A `Duration` as a chrono duration, if it is one chrono can hold.
pub fn duration_from_proto(value: &prost_types::Duration) -> Option<chrono::Duration> {
    chrono::Duration::try_seconds(value.seconds)?
        .checked_add(&chrono::Duration::nanoseconds(i64::from(value.nanos)))
}

/// A chrono duration as a protobuf `Duration`.
pub fn duration(value: chrono::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: value.num_seconds(),
        nanos: value.subsec_nanos(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_out_of_range_ones_are_none() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid");
        assert_eq!(time_from_proto(&timestamp(time)), Some(time));
        for (seconds, nanos) in [
            (i64::MAX, 0),
            (-62_135_596_801, 0),
            (0, -1),
            (0, 1_000_000_000),
        ] {
            assert_eq!(
                time_from_proto(&prost_types::Timestamp { seconds, nanos }),
                None,
                "{seconds}s {nanos}ns"
            );
        }
        let year_10000 = prost_types::Timestamp {
            seconds: 253_402_300_800,
            nanos: 0,
        };
        assert_eq!(time_from_proto(&year_10000), None);
    }
}
