//! The directory's own refusals, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`]); the runtime maps them to gRPC, with ErrorInfo domain
//! `directory.phoenix`.

use phoenix_runtime::{Refusal, quote};
use uuid::Uuid;

pub fn user_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("USER_NOT_FOUND", format!("no user has id {id}")).with("user_id", id)
}

pub fn email_taken(email: &str) -> Refusal {
    Refusal::already_exists(
        "EMAIL_TAKEN",
        format!("a user with email {} already exists", quote(email)),
    )
    .with("email", email)
}
