//! Goals: a learner's goal, its life cycle and its progress.
//!
//! PENDING → IN_PROGRESS or CANCELLED; IN_PROGRESS → COMPLETED, CANCELLED or back to PENDING;
//! COMPLETED and CANCELLED are final (closed: no task of the goal changes status any more).
//! The first move to IN_PROGRESS stamps `started_at`; COMPLETED stamps `completed_at`.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS, apply_text_path, json_object, required_choice,
};

pub const WRITABLE: &[&str] = &[
    "title",
    "description",
    "status",
    "priority",
    "ai_generated",
    "validation_criteria",
    "metadata",
    "due_time",
];
pub const READ_ONLY: &[&str] = &[
    "id",
    "user_id",
    "course_id",
    "progress_percentage",
    "create_time",
    "update_time",
    "start_time",
    "complete_time",
    "task_count",
    "done_task_count",
    "version",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoalStatus {
    Pending,
    InProgress,
    Completed,
    Cancelled,
}

impl GoalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::InProgress,
            Self::Completed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether a goal may move from `self` to `to` (staying is always allowed).
    pub fn may_become(self, to: Self) -> bool {
        use GoalStatus::{Cancelled, Completed, InProgress, Pending};
        self == to
            || matches!(
                (self, to),
                (Pending, InProgress | Cancelled) | (InProgress, Completed | Cancelled | Pending)
            )
    }

    /// COMPLETED and CANCELLED: the goal's tasks keep their status.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

/// How much a goal matters; sorts as it ranks (1 low … 4 critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GoalPriority {
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

impl GoalPriority {
    pub fn rank(self) -> i16 {
        self as i16
    }

    pub fn from_rank(rank: i16) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|p| p.rank() == rank)
    }
}

/// The fields of a goal a caller writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalFields {
    pub title: String,
    pub description: String,
    pub status: GoalStatus,
    pub priority: GoalPriority,
    pub ai_generated: bool,
    pub validation_criteria: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub due_at: Option<DateTime<Utc>>,
}

/// What a caller sent for them (`None`: unspecified).
#[derive(Debug, Clone, Default)]
pub struct GoalInput {
    pub title: String,
    pub description: String,
    pub status: Option<GoalStatus>,
    pub priority: Option<GoalPriority>,
    pub ai_generated: bool,
    pub validation_criteria: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub id: Uuid,
    pub user_id: Uuid,
    pub course_id: Option<Uuid>,
    pub fields: GoalFields,
    pub task_count: i32,
    pub done_task_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A goal's progress in hundredths of a percent: done tasks over all tasks, rounded down (a
/// goal reads 100% only when every task is done); 0 for a goal without tasks.
pub fn progress(done: i32, total: i32) -> i64 {
    if total <= 0 {
        return 0;
    }
    i64::from(done.clamp(0, total)) * 10_000 / i64::from(total)
}

impl GoalFields {
    /// A new goal's fields, validated whole; a new goal is PENDING (default) or IN_PROGRESS.
    pub fn new(input: &GoalInput) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let status = input.status.unwrap_or(GoalStatus::Pending);
        v.check(
            matches!(status, GoalStatus::Pending | GoalStatus::InProgress),
            "status",
            "INVALID_INITIAL_STATUS",
            "a new goal is PENDING or IN_PROGRESS",
        );
        let fields = Self {
            title: v.text("title", &input.title, MAX_TITLE_CHARS),
            description: v.free_text(
                "description",
                &input.description,
                MAX_DESCRIPTION_CHARS,
                false,
            ),
            status,
            priority: input.priority.unwrap_or(GoalPriority::Medium),
            ai_generated: input.ai_generated,
            validation_criteria: json_object(
                &mut v,
                "validation_criteria",
                &input.validation_criteria,
            ),
            metadata: json_object(&mut v, "metadata", &input.metadata),
            due_at: input.due_at,
        };
        v.finish()?;
        Ok(fields)
    }

    /// These fields with those named by `paths` taken from `input` (violations named
    /// `{prefix}{path}`). The status is only read here; [`Goal::transition`] decides the move.
    pub fn with(&self, input: &GoalInput, paths: &[String], prefix: &str) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let mut next = self.clone();
        for path in paths {
            let field = format!("{prefix}{path}");
            let texts = (&mut next.title, &mut next.description);
            if apply_text_path(
                &mut v,
                path,
                &field,
                texts,
                (&input.title, &input.description),
            ) {
                continue;
            }
            match path.as_str() {
                "status" => {
                    required_choice(
                        &mut v,
                        &field,
                        input.status,
                        &mut next.status,
                        "the status to move to",
                    );
                }
                "priority" => required_choice(
                    &mut v,
                    &field,
                    input.priority,
                    &mut next.priority,
                    "LOW, MEDIUM, HIGH or CRITICAL",
                ),
                "ai_generated" => next.ai_generated = input.ai_generated,
                "validation_criteria" => {
                    next.validation_criteria =
                        json_object(&mut v, &field, &input.validation_criteria);
                }
                "metadata" => next.metadata = json_object(&mut v, &field, &input.metadata),
                "due_time" => next.due_at = input.due_at,
                _ => v.add(field, "UNKNOWN_FIELD", "is not a goal field"),
            }
        }
        v.finish()?;
        Ok(next)
    }

    /// Validates the values of the fields named by `paths` alone, before anything is read.
    pub fn check_paths(input: &GoalInput, paths: &[String], prefix: &str) -> Result<(), Refusal> {
        let any = Self {
            title: String::new(),
            description: String::new(),
            status: GoalStatus::Pending,
            priority: GoalPriority::Medium,
            ai_generated: false,
            validation_criteria: Map::new(),
            metadata: Map::new(),
            due_at: None,
        };
        any.with(input, paths, prefix).map(|_| ())
    }
}

/// The times a status move leaves: (started_at, completed_at).
pub type Stamps = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

impl Goal {
    /// Progress in hundredths of a percent.
    pub fn progress(&self) -> i64 {
        progress(self.done_task_count, self.task_count)
    }

    /// The start and completion times after moving to `to` at `now`; FAILED_PRECONDITION
    /// `INVALID_GOAL_TRANSITION` for a move the life cycle does not allow.
    pub fn transition(&self, to: GoalStatus, now: DateTime<Utc>) -> Result<Stamps, Refusal> {
        let from = self.fields.status;
        if !from.may_become(to) {
            return Err(Refusal::precondition(
                "INVALID_GOAL_TRANSITION",
                format!(
                    "goal {} cannot move from {} to {}",
                    self.id,
                    from.as_str(),
                    to.as_str()
                ),
            )
            .at("goal.status")
            .with("goal_id", self.id)
            .with("from", from.as_str())
            .with("to", to.as_str()));
        }
        Ok(stamps(self.started_at, self.completed_at, to, now))
    }

    /// FAILED_PRECONDITION `GOAL_CLOSED` when the goal is COMPLETED or CANCELLED.
    pub fn require_open(&self) -> Result<(), Refusal> {
        if self.fields.status.is_closed() {
            return Err(Refusal::precondition(
                "GOAL_CLOSED",
                format!(
                    "goal {} is {}: its tasks no longer change status",
                    self.id,
                    self.fields.status.as_str()
                ),
            )
            .with("goal_id", self.id)
            .with("status", self.fields.status.as_str()));
        }
        Ok(())
    }
}

/// A new goal's times, as a move from nothing.
pub fn initial_stamps(status: GoalStatus, now: DateTime<Utc>) -> Stamps {
    stamps(None, None, status, now)
}

fn stamps(
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    to: GoalStatus,
    now: DateTime<Utc>,
) -> Stamps {
    let started = match to {
        GoalStatus::InProgress => started.or(Some(now)),
        _ => started,
    };
    let completed = match to {
        GoalStatus::Completed => completed.or(Some(now)),
        _ => None,
    };
    (started, completed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use GoalStatus::{Cancelled, Completed, InProgress, Pending};

    const ALL: [GoalStatus; 4] = [Pending, InProgress, Completed, Cancelled];

    #[test]
    fn only_the_life_cycle_moves_are_allowed() {
        let allowed = [
            (Pending, InProgress),
            (Pending, Cancelled),
            (InProgress, Completed),
            (InProgress, Cancelled),
            (InProgress, Pending),
        ];
        for from in ALL {
            for to in ALL {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(from.may_become(to), expected, "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn progress_is_done_over_all_rounded_down() {
        assert_eq!(progress(0, 0), 0);
        assert_eq!(progress(0, 3), 0);
        assert_eq!(progress(1, 3), 3333);
        assert_eq!(progress(2, 3), 6666);
        assert_eq!(progress(3, 3), 10_000);
        assert_eq!(progress(5, 3), 10_000, "clamped");
    }

    #[test]
    fn moves_stamp_start_once_and_completion_while_completed() {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        let t1 = DateTime::from_timestamp(2_000, 0).unwrap_or_default();
        assert_eq!(initial_stamps(InProgress, t0), (Some(t0), None));
        assert_eq!(stamps(Some(t0), None, InProgress, t1), (Some(t0), None));
        assert_eq!(stamps(Some(t0), None, Completed, t1), (Some(t0), Some(t1)));
        assert_eq!(stamps(Some(t0), Some(t1), Cancelled, t1), (Some(t0), None));
    }

    #[test]
    fn a_new_goal_is_validated_whole() {
        let refusal = GoalFields::new(&GoalInput {
            status: Some(Completed),
            ..GoalInput::default()
        })
        .expect_err("invalid");
        let reasons: Vec<_> = refusal
            .violations
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [("status", "INVALID_INITIAL_STATUS"), ("title", "REQUIRED")]
        );
    }
}
