//! What JSON from outside holds that PostgreSQL cannot: where a value holds a NUL (its `text`
//! and `jsonb` cannot store one), and a parser's error explained when it is a lone UTF-16
//! surrogate. Both importers (missions backfill, Firebase import) quarantine such a record with
//! these words, never store it altered.

use serde_json::Value;

/// The first place in a JSON value holding a NUL (`\u0000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NulAt {
    /// The field's path, `a.b[2].c` (empty: the value itself); a NUL in a key is shown as
    /// `\u0000`.
    pub path: String,
    /// Whether the NUL is in the last key of `path` rather than in a string value.
    pub in_key: bool,
}

/// The first string or key of `value` (depth first, in order) holding a NUL.
pub fn json_nul(value: &Value) -> Option<NulAt> {
    find(value, String::new())
}

fn find(value: &Value, path: String) -> Option<NulAt> {
    match value {
        Value::String(text) if text.contains('\0') => Some(NulAt {
            path,
            in_key: false,
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| find(item, format!("{path}[{index}]"))),
        Value::Object(entries) => entries.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.replace('\0', "\\u0000")
            } else {
                format!("{path}.{}", key.replace('\0', "\\u0000"))
            };
            if key.contains('\0') {
                Some(NulAt {
                    path: child,
                    in_key: true,
                })
            } else {
                find(item, child)
            }
        }),
        _ => None,
    }
}

/// A JSON parser's error as a reason says it: when it is a broken `\u` escape, what that
/// usually is (a lone UTF-16 surrogate, as JavaScript's `slice()` leaves of an emoji) and that
/// the record is quarantined rather than read with its text changed.
pub fn json_error_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if error.is_syntax() && message.contains("escape") {
        format!(
            "not valid JSON text ({message}): an escape such as a lone UTF-16 surrogate \
             (\\ud83d without its pair) is no character; the record is quarantined rather than \
             read with its text changed"
        )
    } else {
        message
    }
}

/// What kind of JSON value this is, as an error names it ("a string", "an array", "null").
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_lone_surrogate_is_explained() {
        let error = serde_json::from_str::<Value>(r#"{"a": "x\ud83d"}"#).unwrap_err();
        assert!(json_error_reason(&error).contains("lone UTF-16 surrogate"));
        let other = serde_json::from_str::<Value>("{").unwrap_err();
        assert_eq!(json_error_reason(&other), other.to_string());
    }

    #[test]
    fn the_first_nul_is_found_with_its_path() {
        assert_eq!(json_nul(&json!({"a": [1, {"b": "ok"}]})), None);
        assert_eq!(
            json_nul(&json!({"a": [1, {"b": "x\u{0}y"}]})),
            Some(NulAt {
                path: "a[1].b".into(),
                in_key: false
            })
        );
        assert_eq!(
            json_nul(&json!({"a": {"k\u{0}": 1}})),
            Some(NulAt {
                path: "a.k\\u0000".into(),
                in_key: true
            })
        );
        assert_eq!(
            json_nul(&json!("\u{0}")),
            Some(NulAt {
                path: String::new(),
                in_key: false
            })
        );
    }
}
