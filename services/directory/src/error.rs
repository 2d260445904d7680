//! The directory's own refusals, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`]); the runtime maps them to gRPC, with ErrorInfo domain
//! `directory.phoenix`.

use phoenix_runtime::{FieldViolation, Refusal, quote};
use uuid::Uuid;

pub fn user_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("USER_NOT_FOUND", format!("no user has id {id}")).with("user_id", id)
}

/// A request that names a user who must exist (a course's owner) names an unknown one.
pub fn owner_not_found(id: Uuid) -> Refusal {
    Refusal::precondition("USER_NOT_FOUND", format!("no user has id {id}")).with("user_id", id)
}

pub fn no_user_with(key: &str, value: &str) -> Refusal {
    Refusal::not_found(
        "USER_NOT_FOUND",
        format!("no user has {key} {}", quote(value)),
    )
    .with(key, value)
}

pub fn course_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("COURSE_NOT_FOUND", format!("no course has id {id}")).with("course_id", id)
}

fn taken(field: &str, reason: &str, value: &str) -> Refusal {
    let mut refusal = Refusal::already_exists(
        reason,
        format!("a user with {field} {} already exists", quote(value)),
    )
    .with(field, value)
    .with("field", field);
    refusal.violations.push(FieldViolation::new(
        field,
        reason,
        "is taken by another user",
    ));
    refusal
}

pub fn email_taken(email: &str) -> Refusal {
    taken("email", "EMAIL_TAKEN", email)
}

pub fn username_taken(username: &str) -> Refusal {
    taken("username", "USERNAME_TAKEN", username)
}

pub fn telegram_id_taken(telegram_id: i64) -> Refusal {
    taken("telegram_id", "TELEGRAM_ID_TAKEN", &telegram_id.to_string())
}
