//! Protobuf well-known types ⇄ chrono, the same way in every service.

use chrono::{DateTime, Datelike, Utc};

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the first and last seconds a protobuf
/// Timestamp may hold.
pub const FIRST_SECOND: i64 = -62_135_596_800;
pub const LAST_SECOND: i64 = 253_402_300_799;

/// A UTC time as a protobuf `Timestamp`, which must lie in the years 1 to 9999 (clients refuse
/// others). A time computed past that (the day after 9999-12-31, from a clock at its end) is
/// sent as the last microsecond of 9999 (PostgreSQL keeps microseconds), one before the year 1
/// as its first instant.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    let seconds = time.timestamp();
    if seconds > LAST_SECOND {
        return prost_types::Timestamp {
            seconds: LAST_SECOND,
            nanos: 999_999_000,
        };
    }
    if seconds < FIRST_SECOND {
        return prost_types::Timestamp {
            seconds: FIRST_SECOND,
            nanos: 0,
        };
    }
    prost_types::Timestamp {
        seconds,
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

/// A protobuf `Struct` as a JSON object (`None` as `{}`). Numbers that are not finite (which
/// JSON cannot hold) become `null`.
pub fn json_from_struct(
    value: Option<&prost_types::Struct>,
) -> serde_json::Map<String, serde_json::Value> {
    value
        .map(|s| {
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), json_from_value(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn json_from_value(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(json_from_value).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(json_from_struct(Some(s))),
    }
}

/// A JSON object as a protobuf `Struct`.
pub fn struct_from_json(
    object: &serde_json::Map<String, serde_json::Value>,
) -> prost_types::Struct {
    prost_types::Struct {
        fields: object
            .iter()
            .map(|(k, v)| (k.clone(), value_from_json(v)))
            .collect(),
    }
}

fn value_from_json(value: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(values) => Kind::ListValue(prost_types::ListValue {
            values: values.iter().map(value_from_json).collect(),
        }),
        serde_json::Value::Object(object) => Kind::StructValue(struct_from_json(object)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_and_json_objects_round_trip() {
        let object = serde_json::json!({"a": 1.5, "b": [true, null, "x"], "c": {"d": "e"}});
        let object = object.as_object().expect("object").clone();
        assert_eq!(json_from_struct(Some(&struct_from_json(&object))), object);
        assert!(json_from_struct(None).is_empty());
    }

    #[test]
    fn times_beyond_the_protobuf_range_are_sent_at_its_ends() {
        let after = DateTime::from_timestamp(LAST_SECOND + 86_400, 5).expect("valid");
        let shown = timestamp(after);
        assert_eq!((shown.seconds, shown.nanos), (LAST_SECOND, 999_999_000));
        let before = DateTime::from_timestamp(FIRST_SECOND - 86_400, 0).expect("valid");
        assert_eq!(timestamp(before).seconds, FIRST_SECOND);
    }

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
