//! Contacts (a WhatsApp number and what the bot knows of it), threads, cache kinds and user
//! states.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, quote};
use uuid::Uuid;

/// Most digits of a number (E.164) and fewest we accept.
pub const MAX_PHONE_DIGITS: usize = 15;
pub const MIN_PHONE_DIGITS: usize = 8;
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_CHAT_ID_CHARS: usize = 100;
pub const MAX_LABELS: usize = 50;
pub const MAX_LABEL_CHARS: usize = 100;
pub const MAX_THREAD_ID_CHARS: usize = 100;

/// A WhatsApp number, digits only, with its country code: 8 to 15 digits, not starting with 0.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Phone(String);

/// What a number may be written with besides digits: a leading `+`, spaces, dashes, dots and
/// parentheses, and a WhatsApp chat suffix.
const SEPARATORS: &[char] = &[' ', '-', '.', '(', ')', '\u{a0}'];
const CHAT_SUFFIXES: &[&str] = &["@s.whatsapp.net", "@c.us"];

impl Phone {
    /// Normalises a number as a caller or a legacy file writes it: "+57 300 123-4567",
    /// "573001234567@s.whatsapp.net" and "573001234567" are the same phone.
    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Refusal::invalid(
                "phone",
                "REQUIRED",
                "is required: a WhatsApp number",
            ));
        }
        let bare = CHAT_SUFFIXES
            .iter()
            .find_map(|suffix| trimmed.strip_suffix(suffix))
            .unwrap_or(trimmed);
        let bare = bare.strip_prefix('+').unwrap_or(bare);
        let mut digits = String::with_capacity(bare.len());
        for c in bare.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
            } else if !SEPARATORS.contains(&c) {
                return Err(invalid_phone(
                    raw,
                    "may hold only digits, a leading +, spaces, dashes, dots and parentheses",
                ));
            }
        }
        if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len()) {
            return Err(invalid_phone(
                raw,
                &format!(
                    "must have {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits with the country code, got {}",
                    digits.len()
                ),
            ));
        }
        if digits.starts_with('0') {
            return Err(invalid_phone(raw, "must start with a country code, not 0"));
        }
        Ok(Self(digits))
    }

    /// A phone read back from the database (the schema's CHECK holds the same rule).
    pub fn stored(digits: String) -> Self {
        Self(digits)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The chat id a contact without one gets.
    pub fn default_chat_id(&self) -> String {
        format!("{}@s.whatsapp.net", self.0)
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid_phone(raw: &str, rule: &str) -> Refusal {
    Refusal::invalid("phone", "INVALID_PHONE", format!("{rule}: {}", quote(raw)))
}

/// What a contact's profile holds; SaveContact replaces it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactProfile {
    pub name: Option<String>,
    pub chat_id: String,
    pub labels: Vec<String>,
    pub directory_user_id: Option<Uuid>,
    pub last_activity_at: Option<DateTime<Utc>>,
}

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub phone: Phone,
    pub profile: ContactProfile,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// An assistant thread; at most one per contact is active (a partial unique index holds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub thread_id: String,
    pub phone: Phone,
    pub active: bool,
    pub user_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
}

/// Which cache an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Context,
    ChatInfo,
}

impl CacheKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Context => "context",
            Self::ChatInfo => "chat_info",
        }
    }
}

/// A contact's conversational state.
#[derive(Debug, Clone, PartialEq)]
pub struct UserState {
    pub phone: Phone,
    pub last_voice_input_at: Option<DateTime<Utc>>,
    pub preferences: serde_json::Map<String, serde_json::Value>,
    /// `None` when never written.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A display name: trimmed, empty is none, at most 255 characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<Option<String>, Refusal> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    plain_text(field, trimmed, MAX_NAME_CHARS)?;
    Ok(Some(trimmed.to_owned()))
}

/// A chat id: no whitespace or control characters, 1 to 100 characters; empty is the phone's
/// default.
pub fn chat_id(phone: &Phone, value: &str) -> Result<String, Refusal> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(phone.default_chat_id());
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Refusal::invalid(
            "chat_id",
            "INVALID_CHAT_ID",
            format!(
                "must not contain spaces or control characters, got {}",
                quote(trimmed)
            ),
        ));
    }
    plain_text("chat_id", trimmed, MAX_CHAT_ID_CHARS)?;
    Ok(trimmed.to_owned())
}

/// Labels: at most 50, each trimmed, 1 to 100 characters; order kept, duplicates removed.
pub fn labels(values: &[String]) -> Result<Vec<String>, Refusal> {
    if values.len() > MAX_LABELS {
        return Err(Refusal::invalid(
            "labels",
            "TOO_MANY_LABELS",
            format!(
                "must hold at most {MAX_LABELS} labels, got {}",
                values.len()
            ),
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let field = format!("labels[{i}]");
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(Refusal::invalid(
                &field,
                "REQUIRED",
                "a label must not be empty",
            ));
        }
        plain_text(&field, trimmed, MAX_LABEL_CHARS)?;
        if !kept.iter().any(|k| k == trimmed) {
            kept.push(trimmed.to_owned());
        }
    }
    Ok(kept)
}

/// An assistant thread id: 1 to 100 of `A-Z a-z 0-9 _ -` (OpenAI's `thread_abc123`).
pub fn thread_id(value: &str) -> Result<String, Refusal> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Refusal::invalid(
            "thread_id",
            "REQUIRED",
            "is required: the assistant's thread id",
        ));
    }
    let valid = trimmed.chars().count() <= MAX_THREAD_ID_CHARS
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(Refusal::invalid(
            "thread_id",
            "INVALID_THREAD_ID",
            format!(
                "must be 1 to {MAX_THREAD_ID_CHARS} of A-Z a-z 0-9 _ -, got {}",
                quote(trimmed)
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Text of at most `max` characters without control characters.
pub fn plain_text(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    let chars = value.chars().count();
    if chars > max {
        return Err(Refusal::invalid(
            field,
            "TOO_LONG",
            format!("must be at most {max} characters, got {chars}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Refusal::invalid(
            field,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(raw: &str) -> String {
        Phone::parse(raw)
            .expect("a valid phone")
            .as_str()
            .to_owned()
    }

    fn refused(raw: &str) -> String {
        Phone::parse(raw).expect_err("refused").reason
    }

    #[test]
    fn one_number_written_several_ways_is_one_phone() {
        assert_eq!(phone("573001234567"), "573001234567");
        assert_eq!(phone("+57 300 123-4567"), "573001234567");
        assert_eq!(phone(" +57 (300) 123.4567 "), "573001234567");
        assert_eq!(phone("573001234567@s.whatsapp.net"), "573001234567");
        assert_eq!(phone("573001234567@c.us"), "573001234567");
    }

    #[test]
    fn malformed_numbers_are_refused_with_their_reason() {
        assert_eq!(refused(""), "REQUIRED");
        assert_eq!(refused("   "), "REQUIRED");
        assert_eq!(refused("57300abc4567"), "INVALID_PHONE");
        assert_eq!(refused("1234567"), "INVALID_PHONE");
        assert_eq!(refused("1234567890123456"), "INVALID_PHONE");
        assert_eq!(refused("0573001234567"), "INVALID_PHONE");
        assert_eq!(refused("++573001234567"), "INVALID_PHONE");
        assert_eq!(refused("٥٧٣٠٠١٢٣٤٥٦٧"), "INVALID_PHONE");
        let long = Phone::parse(&"x".repeat(10_000)).expect_err("refused");
        assert!(long.message.len() < 300, "{}", long.message);
    }

    #[test]
    fn labels_are_trimmed_deduplicated_and_bounded() {
        let kept =
            labels(&[" Potencial ".into(), "Consulta".into(), "Potencial".into()]).expect("valid");
        assert_eq!(kept, vec!["Potencial", "Consulta"]);
        assert_eq!(
            labels(&["".into()]).expect_err("empty").field(),
            Some("labels[0]")
        );
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        assert_eq!(
            labels(&many).expect_err("too many").reason,
            "TOO_MANY_LABELS"
        );
    }

    #[test]
    fn thread_ids_and_chat_ids_follow_their_rules() {
        assert_eq!(
            thread_id(" thread_abc-123 ").expect("valid"),
            "thread_abc-123"
        );
        assert_eq!(
            thread_id("thread abc").expect_err("space").reason,
            "INVALID_THREAD_ID"
        );
        assert_eq!(thread_id("").expect_err("empty").reason, "REQUIRED");
        let p = Phone::parse("573001234567").expect("valid");
        assert_eq!(
            chat_id(&p, "").expect("default"),
            "573001234567@s.whatsapp.net"
        );
        assert_eq!(
            chat_id(&p, "a b").expect_err("space").reason,
            "INVALID_CHAT_ID"
        );
        assert_eq!(name("name", "  ").expect("empty is none"), None);
        assert_eq!(
            name("name", &"n".repeat(256)).expect_err("long").reason,
            "TOO_LONG"
        );
    }
}
