//! The goals context's types and rules as plain Rust: no I/O, no clock reads (the time is
//! passed in), refusals returned as values.
//!
//! Conventions every module here shares:
//! - Percentages, scores and hours are kept exactly, as integer hundredths: 12.34 is 1234. The
//!   API takes and gives them as decimals with at most two places.
//! - A goal's progress is never written by a caller: it is derived from its tasks (done over
//!   all, [`goal::progress`]), and the counts it is derived from change in the transaction that
//!   changes a task, under the goal's row lock.
//! - Statuses move only along their life cycle ([`goal::GoalStatus::may_become`],
//!   [`task::TaskStatus::may_become`]); staying in a status is no move. Entering a status may
//!   stamp a time (started, completed), which leaving it never erases, except `completed_at`,
//!   which holds exactly while a goal is COMPLETED or a task DONE.
//! - Updates name their fields with a field mask; text is trimmed.
//! - Vectors come from the caller: a model's dimension is fixed when it is registered, and a
//!   vector must have exactly that many finite components ([`embedding`]).

pub mod embedding;
pub mod goal;
pub mod snapshot;
pub mod task;

pub use goal::{Goal, GoalInput, GoalPriority, GoalStatus};
pub use snapshot::{CodeSnapshot, NewSnapshot};
pub use task::{Task, TaskInput, TaskStatus, TaskType};

use phoenix_runtime::Violations;
use serde_json::{Map, Value};

/// Longest metadata (or other JSON object) accepted, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// A JSON object field: at most [`MAX_METADATA_BYTES`], nothing jsonb cannot hold.
pub fn json_object(
    v: &mut Violations,
    field: &str,
    value: &Map<String, Value>,
) -> Map<String, Value> {
    v.json_object(field, value.clone(), MAX_METADATA_BYTES)
}

/// Applies the paths every record here shares, `title` and `description`, from the sent
/// values; `false` for any other path.
pub(crate) fn apply_text_path(
    v: &mut Violations,
    path: &str,
    field: &str,
    (title, description): (&mut String, &mut String),
    (sent_title, sent_description): (&str, &str),
) -> bool {
    match path {
        "title" => *title = v.text(field, sent_title, MAX_TITLE_CHARS),
        "description" => {
            *description = v.free_text(field, sent_description, MAX_DESCRIPTION_CHARS, false);
        }
        _ => return false,
    }
    true
}

/// A required enum of a masked path: the sent value, or `REQUIRED` naming `what`.
pub(crate) fn required_choice<T: Copy>(
    v: &mut Violations,
    field: &str,
    sent: Option<T>,
    target: &mut T,
    what: &str,
) {
    match sent {
        Some(value) => *target = value,
        None => v.add(field, "REQUIRED", format!("is required: {what}")),
    }
}

/// A hundredths value as the decimal the API shows.
pub fn decimal(hundredths: i64) -> f64 {
    hundredths as f64 / 100.0
}
