//! The conversations context's own refusals, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`]); the runtime maps them to gRPC, with ErrorInfo domain
//! `conversations.phoenix`.

use phoenix_runtime::{Refusal, quote};

use crate::domain::Phone;

pub fn contact_not_found(phone: &Phone) -> Refusal {
    Refusal::not_found("CONTACT_NOT_FOUND", format!("no contact has phone {phone}"))
        .with("phone", phone)
}

pub fn thread_not_found(phone: &Phone) -> Refusal {
    Refusal::not_found(
        "THREAD_NOT_FOUND",
        format!("contact {phone} has no active thread"),
    )
    .with("phone", phone)
}

pub fn thread_of_another_contact(thread_id: &str) -> Refusal {
    Refusal::precondition(
        "THREAD_OF_ANOTHER_CONTACT",
        format!("thread {} belongs to another contact", quote(thread_id)),
    )
    .with("thread_id", phoenix_runtime::fact(thread_id))
    .at("thread_id")
}
