//! The goals context's own refusals, on top of the runtime's vocabulary
//! ([`phoenix_runtime::Error`]); the runtime maps them to gRPC, with ErrorInfo domain
//! `goals.phoenix`.

use phoenix_runtime::{Refusal, quote};
use uuid::Uuid;

pub fn goal_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("GOAL_NOT_FOUND", format!("no goal has id {id}")).with("goal_id", id)
}

pub fn task_not_found(id: Uuid) -> Refusal {
    Refusal::not_found("TASK_NOT_FOUND", format!("no task has id {id}")).with("task_id", id)
}

/// A request names a course the directory does not know.
pub fn course_not_found(id: Uuid) -> Refusal {
    Refusal::precondition("COURSE_NOT_FOUND", format!("no course has id {id}"))
        .at("course_id")
        .with("course_id", id)
}

/// A request names a model that was never registered.
pub fn model_not_found(name: &str, field: &str) -> Refusal {
    Refusal::precondition(
        "MODEL_NOT_FOUND",
        format!(
            "no embedding model is named {}; register it with RegisterEmbeddingModel first",
            quote(name)
        ),
    )
    .at(field)
    .with("model", name)
}

/// A model registered again with another dimension.
pub fn model_dimension_mismatch(name: &str, registered: i32, asked: i32) -> Refusal {
    Refusal::precondition(
        "MODEL_DIMENSION_MISMATCH",
        format!(
            "model {} is registered with {registered} dimensions, not {asked}",
            quote(name)
        ),
    )
    .at("model.dimensions")
    .with("model", name)
    .with("dimensions", registered)
}
