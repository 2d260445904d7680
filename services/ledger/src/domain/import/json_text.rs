//! A document's JSON as the source wrote it, and its canonical form.
//!
//! The import stores the text a source sent (cast to jsonb by PostgreSQL, which keeps every
//! number exactly: `12345678901234567890123` stays that, where an `f64` would round it), and
//! decides whether two records of one document are the same by their canonical form: keys
//! sorted (a repeated key keeps its last value, as jsonb does), strings re-escaped one way,
//! numbers by their decimal value (`1`, `1.0` and `10e-1` are one number, as jsonb's equality
//! says). The same rule holds within a call and against what earlier calls imported, so
//! whether a repeat is a duplicate never depends on how records were split into calls.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// The canonical form of a JSON text (see the module doc); an error when it is not JSON.
pub fn canonical(text: &str) -> Result<String, serde_json::Error> {
    let raw: &RawValue = serde_json::from_str(text)?;
    let mut out = String::with_capacity(text.len());
    write(raw, &mut out)?;
    Ok(out)
}

fn write(raw: &RawValue, out: &mut String) -> Result<(), serde_json::Error> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            let entries: BTreeMap<String, &RawValue> = serde_json::from_str(text)?;
            out.push('{');
            for (index, (key, value)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key)?);
                out.push(':');
                write(value, out)?;
            }
            out.push('}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Some(b'"') => {
            let string: String = serde_json::from_str(text)?;
            out.push_str(&serde_json::to_string(&string)?);
        }
        Some(b'-' | b'0'..=b'9') => out.push_str(&number(text)),
        _ => out.push_str(text),
    }
    Ok(())
}

/// A JSON number (already checked by the parser) as `digits` `e` `exponent`, with no leading
/// or trailing zeros: one spelling per decimal value.
fn number(text: &str) -> String {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    if trimmed.is_empty() {
        return "0".to_owned();
    }
    let fraction_len = i64::try_from(fraction.len()).unwrap_or(i64::MAX);
    let dropped = i64::try_from(digits.len() - trimmed.len()).unwrap_or(0);
    let exponent = exponent
        .saturating_sub(fraction_len)
        .saturating_add(dropped);
    format!("{}{trimmed}e{exponent}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_has_one_canonical_spelling() {
        for same in ["1", "1.0", "10e-1", "0.1e1", "1.000E0"] {
            assert_eq!(canonical(same).unwrap(), "1e0", "{same}");
        }
        assert_eq!(canonical("-0.0").unwrap(), "0");
        assert_eq!(canonical("0").unwrap(), "0");
        assert_eq!(canonical("1200").unwrap(), "12e2");
        assert_eq!(
            canonical("12345678901234567890123").unwrap(),
            "12345678901234567890123e0"
        );
        assert_ne!(
            canonical("12345678901234567890123").unwrap(),
            canonical("12345678901234567890124").unwrap()
        );
        assert_eq!(canonical("-2.50").unwrap(), "-25e-1");
    }

    #[test]
    fn objects_are_compared_by_content_not_spelling() {
        let a = canonical(r#"{"b": [1, "x\u0041"], "a": {"n": 2.0}}"#).unwrap();
        let b = canonical(r#"{"a":{"n":2},"b":[1.0,"xA"]}"#).unwrap();
        assert_eq!(a, b);
        // A repeated key keeps its last value, as jsonb does.
        assert_eq!(
            canonical(r#"{"a": 1, "a": 2}"#).unwrap(),
            canonical(r#"{"a": 2}"#).unwrap()
        );
        assert_ne!(a, canonical(r#"{"a":{"n":3},"b":[1,"xA"]}"#).unwrap());
    }
}
