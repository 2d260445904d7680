//! A legacy file's bytes as its records, read strictly enough that nothing is lost silently.
//!
//! `serde_json::from_str::<Value>` alone would lose data without a word: a key written twice
//! (at the top level, a whole record; inside a record, a field) keeps only the last value, and
//! one record with a lone UTF-16 surrogate escape (what JavaScript's `slice()` leaves of an
//! emoji) refuses the whole file. So the file is read as one object of raw records, and each
//! record is then parsed on its own:
//! - a UTF-8 byte order mark is skipped; bytes that are not UTF-8 refuse the file (`NOT_UTF8`),
//!   since reading them "lossily" would import changed text;
//! - a key repeated at the top level keeps the first record and reports the repeat as
//!   `DUPLICATE_PHONE`;
//! - a record whose text cannot be read (`INVALID_JSON`) or that repeats a field at any depth
//!   (`DUPLICATE_KEY`, with the field's path) is rejected alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use super::legacy::Rejection;

/// A record of a file: read, or broken on its own (the rest of the file is still read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRecord {
    Read(Value),
    /// Rejected before its fields are looked at: (field path, rule, message).
    Broken {
        field: String,
        rule: String,
        message: String,
    },
}

/// A file's records by key, and the repeated keys (each a `DUPLICATE_PHONE` rejection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRecords {
    pub records: BTreeMap<String, FileRecord>,
    /// Each read record's text exactly as in the file (key order, number spelling, spacing),
    /// with its place among the file's records, so the export can write it back unchanged.
    pub sources: BTreeMap<String, Source>,
    pub repeats: Vec<Rejection>,
}

/// A record's text as written in its file, and its place (0 for the file's first record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub text: String,
    pub position: usize,
}

impl FileRecords {
    /// The records that could be read, as JSON.
    pub fn values(&self) -> Map<String, Value> {
        self.records
            .iter()
            .filter_map(|(key, record)| match record {
                FileRecord::Read(value) => Some((key.clone(), value.clone())),
                FileRecord::Broken { .. } => None,
            })
            .collect()
    }
}

impl From<Map<String, Value>> for FileRecords {
    fn from(records: Map<String, Value>) -> Self {
        FileRecords {
            records: records
                .into_iter()
                .map(|(key, value)| (key, FileRecord::Read(value)))
                .collect(),
            sources: BTreeMap::new(),
            repeats: Vec::new(),
        }
    }
}

/// A file's bytes as its records, or the reason it cannot be read at all (then nothing of the
/// import may be written: a contact would lose the other file's half).
pub fn file_records(file: &str, bytes: &[u8]) -> Result<FileRecords, Rejection> {
    let whole = |rule: &str, message: String| Rejection {
        file: file.to_owned(),
        key: String::new(),
        field: String::new(),
        rule: rule.to_owned(),
        message,
    };
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(whole(
            "NOT_UTF8",
            "the file is UTF-16 text (it starts with a UTF-16 byte order mark); convert it to UTF-8"
                .into(),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        whole(
            "NOT_UTF8",
            format!(
                "the file is not UTF-8 text (invalid byte at offset {}); convert it to UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    let top: TopLevel =
        serde_json::from_str(text).map_err(|e| whole("INVALID_JSON", format!("not JSON: {e}")))?;
    let TopLevel::Object(entries) = top else {
        return Err(whole(
            "NOT_AN_OBJECT",
            "the file must be one JSON object keyed by phone".into(),
        ));
    };
    let mut out = FileRecords::default();
    for (position, (key, raw)) in entries.into_iter().enumerate() {
        if out.records.contains_key(&key) {
            out.repeats.push(Rejection {
                file: file.to_owned(),
                key,
                field: String::new(),
                rule: "DUPLICATE_PHONE".into(),
                message: "the same key appears earlier in the file; the first record is kept"
                    .into(),
            });
            continue;
        }
        let record = match serde_json::from_str::<Strict>(raw.get()) {
            Ok(Strict {
                duplicate: Some(path),
                ..
            }) => FileRecord::Broken {
                field: path,
                rule: "DUPLICATE_KEY".into(),
                message: "this field is written twice in the record; which one holds is unclear"
                    .into(),
            },
            Ok(Strict { value, .. }) => {
                let text = raw.get().to_owned();
                out.sources.insert(key.clone(), Source { text, position });
                FileRecord::Read(value)
            }
            Err(e) => FileRecord::Broken {
                field: String::new(),
                rule: "INVALID_JSON".into(),
                message: phoenix_runtime::error::json_error_reason(&e),
            },
        };
        out.records.insert(key, record);
    }
    Ok(out)
}

/// A record's text as its fields in order, each with its text as written (`None` when the text
/// is not one JSON object).
pub fn fields_of(text: &str) -> Option<Vec<(String, Box<RawValue>)>> {
    match serde_json::from_str(text).ok()? {
        TopLevel::Object(fields) => Some(fields),
        TopLevel::Other => None,
    }
}

/// The file's top level: its entries in file order (repeats included), or another JSON type.
enum TopLevel {
    Object(Vec<(String, Box<RawValue>)>),
    Other,
}

impl<'de> de::Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = TopLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.push((key, map.next_value::<Box<RawValue>>()?));
                }
                Ok(TopLevel::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_unit<E>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
        }
        deserializer.deserialize_any(Top)
    }
}

/// A JSON value, with the path of the first key written twice in one object, if any.
struct Strict {
    value: Value,
    duplicate: Option<String>,
}

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StrictSeed.deserialize(deserializer)
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Strict;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

fn plain(value: Value) -> Strict {
    Strict {
        value,
        duplicate: None,
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(plain(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(plain(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(plain(Value::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(plain(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(plain(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(plain(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(plain(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        let mut duplicate = None;
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            if duplicate.is_none()
                && let Some(path) = item.duplicate
            {
                duplicate = Some(format!("[{}]{}", items.len(), dotted(&path)));
            }
            items.push(item.value);
        }
        Ok(Strict {
            value: Value::Array(items),
            duplicate,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut entries = Map::new();
        let mut duplicate = None;
        while let Some(key) = map.next_key::<String>()? {
            let item = map.next_value_seed(StrictSeed)?;
            if duplicate.is_none() {
                if entries.contains_key(&key) {
                    duplicate = Some(key.clone());
                } else if let Some(path) = item.duplicate {
                    duplicate = Some(format!("{key}{}", dotted(&path)));
                }
            }
            entries.entry(key).or_insert(item.value);
        }
        Ok(Strict {
            value: Value::Object(entries),
            duplicate,
        })
    }
}

/// A child's path appended to its parent's: `.field` or `[i]`.
fn dotted(path: &str) -> String {
    if path.starts_with('[') {
        path.to_owned()
    } else {
        format!(".{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn broken(records: &FileRecords, key: &str) -> (String, String) {
        match &records.records[key] {
            FileRecord::Broken { field, rule, .. } => (field.clone(), rule.clone()),
            FileRecord::Read(value) => unreachable!("{key} read as {value}"),
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let records =
            file_records("f", b"\xEF\xBB\xBF{\"573001234567\": {\"name\": \"A\"}}").expect("read");
        assert_eq!(
            records.records["573001234567"],
            FileRecord::Read(json!({"name": "A"}))
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_refuse_the_file() {
        let refused =
            file_records("f", b"{\"573001234567\": {\"name\": \"Jos\xE9\"}}").expect_err("latin-1");
        assert_eq!(refused.rule, "NOT_UTF8");
        assert!(refused.message.contains("offset 30"), "{}", refused.message);
        let utf16 = file_records("f", b"\xFF\xFE{\x00}\x00").expect_err("utf-16");
        assert_eq!(utf16.rule, "NOT_UTF8");
        assert!(utf16.message.contains("UTF-16"), "{}", utf16.message);
    }

    #[test]
    fn a_key_written_twice_keeps_the_first_record_and_reports_the_second() {
        let records = file_records(
            "f",
            br#"{"573001234567": {"name": "A"}, "573001234567": {"name": "B"}}"#,
        )
        .expect("read");
        assert_eq!(
            records.records["573001234567"],
            FileRecord::Read(json!({"name": "A"}))
        );
        assert_eq!(records.sources["573001234567"].text, r#"{"name": "A"}"#);
        assert_eq!(records.repeats.len(), 1);
        assert_eq!(records.repeats[0].rule, "DUPLICATE_PHONE");
        assert_eq!(records.repeats[0].key, "573001234567");
    }

    #[test]
    fn a_field_written_twice_at_any_depth_rejects_its_record_with_the_path() {
        let records = file_records(
            "f",
            br#"{"1": {"name": "A", "name": "B"}, "2": {"x": [1, {"y": 1, "y": 2}]}, "3": {"ok": {"a": 1}}}"#,
        )
        .expect("read");
        assert_eq!(
            broken(&records, "1"),
            ("name".into(), "DUPLICATE_KEY".into())
        );
        assert_eq!(
            broken(&records, "2"),
            ("x[1].y".into(), "DUPLICATE_KEY".into())
        );
        assert_eq!(
            records.records["3"],
            FileRecord::Read(json!({"ok": {"a": 1}}))
        );
    }

    #[test]
    fn a_record_with_a_lone_surrogate_is_rejected_alone() {
        let records = file_records(
            "f",
            br#"{"573001234567": {"name": "\ud83d"}, "573001234568": {"name": "B"}}"#,
        )
        .expect("the rest of the file is read");
        assert_eq!(
            broken(&records, "573001234567"),
            (String::new(), "INVALID_JSON".into())
        );
        assert_eq!(
            records.records["573001234568"],
            FileRecord::Read(json!({"name": "B"}))
        );
    }

    #[test]
    fn a_file_that_is_not_one_object_is_refused_whole() {
        for (text, rule) in [
            (&b"{"[..], "INVALID_JSON"),
            (b"", "INVALID_JSON"),
            (b"[{}]", "NOT_AN_OBJECT"),
            (b"null", "NOT_AN_OBJECT"),
            (b"\"{}\"", "NOT_AN_OBJECT"),
            (b"{} {}", "INVALID_JSON"),
        ] {
            assert_eq!(file_records("f", text).expect_err("refused").rule, rule);
        }
    }
}
