//! Tasks: the steps toward a goal, their life cycle and their fields.
//!
//! TODO → IN_PROGRESS or BLOCKED; IN_PROGRESS → REVIEW, DONE, BLOCKED or back to TODO;
//! REVIEW → DONE or back to IN_PROGRESS; BLOCKED → TODO or IN_PROGRESS; DONE is final, so a
//! task completes once (and `TaskCompleted` is appended once per task). The first move to
//! IN_PROGRESS stamps `started_at`, DONE stamps `completed_at`. A task of a closed goal keeps
//! its status (`Goal::require_open`).

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS, apply_text_path, json_object, required_choice,
};

/// Task priorities: 0 to this, lower first.
pub const MAX_PRIORITY: i32 = 10_000;
pub const DEFAULT_PRIORITY: i32 = 100;
/// Hours are 0.00 to 10,000.00, kept as hundredths.
pub const MAX_HOURS: i64 = 1_000_000;

pub const WRITABLE: &[&str] = &[
    "title",
    "description",
    "type",
    "status",
    "priority",
    "estimated_hours",
    "actual_hours",
    "validation_result",
    "ai_feedback",
    "metadata",
];
pub const READ_ONLY: &[&str] = &[
    "id",
    "goal_id",
    "user_id",
    "create_time",
    "update_time",
    "start_time",
    "complete_time",
    "version",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskType {
    Code,
    Reading,
    Exercise,
    Quiz,
    Project,
}

impl TaskType {
    pub const ALL: [Self; 5] = [
        Self::Code,
        Self::Reading,
        Self::Exercise,
        Self::Quiz,
        Self::Project,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Reading => "reading",
            Self::Exercise => "exercise",
            Self::Quiz => "quiz",
            Self::Project => "project",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    Todo,
    InProgress,
    Review,
    Done,
    Blocked,
}

impl TaskStatus {
    pub const ALL: [Self; 5] = [
        Self::Todo,
        Self::InProgress,
        Self::Review,
        Self::Done,
        Self::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Review => "review",
            Self::Done => "done",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether a task may move from `self` to `to` (staying is always allowed).
    pub fn may_become(self, to: Self) -> bool {
        use TaskStatus::{Blocked, Done, InProgress, Review, Todo};
        self == to
            || matches!(
                (self, to),
                (Todo, InProgress | Blocked)
                    | (InProgress, Review | Done | Blocked | Todo)
                    | (Review, Done | InProgress)
                    | (Blocked, Todo | InProgress)
            )
    }
}

/// The fields of a task a caller writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFields {
    pub title: String,
    pub description: String,
    pub task_type: TaskType,
    pub status: TaskStatus,
    pub priority: i32,
    /// Hundredths of an hour.
    pub estimated_hours: Option<i64>,
    pub actual_hours: Option<i64>,
    pub validation_result: Map<String, Value>,
    pub ai_feedback: String,
    pub metadata: Map<String, Value>,
}

/// What a caller sent for them (`None`: unspecified or unset).
#[derive(Debug, Clone, Default)]
pub struct TaskInput {
    pub title: String,
    pub description: String,
    pub task_type: Option<TaskType>,
    pub status: Option<TaskStatus>,
    pub priority: Option<i32>,
    pub estimated_hours: Option<f64>,
    pub actual_hours: Option<f64>,
    pub validation_result: Map<String, Value>,
    pub ai_feedback: String,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: Uuid,
    pub goal_id: Uuid,
    pub user_id: Uuid,
    pub fields: TaskFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub version: i64,
}

fn hours(v: &mut Violations, field: &str, value: Option<f64>) -> Option<i64> {
    value.map(|h| v.hundredths(field, h, MAX_HOURS))
}

fn priority(v: &mut Violations, field: &str, value: Option<i32>) -> i32 {
    let value = value.unwrap_or(DEFAULT_PRIORITY);
    v.range(field, value, 0..=MAX_PRIORITY, None)
}

impl TaskFields {
    /// A new task's fields, validated whole; a new task is TODO.
    pub fn new(input: &TaskInput) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let fields = Self {
            title: v.text("title", &input.title, MAX_TITLE_CHARS),
            description: v.free_text(
                "description",
                &input.description,
                MAX_DESCRIPTION_CHARS,
                false,
            ),
            task_type: input.task_type.unwrap_or(TaskType::Code),
            status: TaskStatus::Todo,
            priority: priority(&mut v, "priority", input.priority),
            estimated_hours: hours(&mut v, "estimated_hours", input.estimated_hours),
            actual_hours: None,
            validation_result: Map::new(),
            ai_feedback: String::new(),
            metadata: json_object(&mut v, "metadata", &input.metadata),
        };
        v.finish()?;
        Ok(fields)
    }

    /// These fields with those named by `paths` taken from `input` (violations named
    /// `{prefix}{path}`); an unset hours field clears it. The status is only read here:
    /// [`Task::transition`] decides the move.
    pub fn with(&self, input: &TaskInput, paths: &[String], prefix: &str) -> Result<Self, Refusal> {
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
                "type" => {
                    required_choice(
                        &mut v,
                        &field,
                        input.task_type,
                        &mut next.task_type,
                        "the task's type",
                    );
                }
                "status" => {
                    required_choice(
                        &mut v,
                        &field,
                        input.status,
                        &mut next.status,
                        "the status to move to",
                    );
                }
                "priority" => next.priority = priority(&mut v, &field, input.priority),
                "estimated_hours" => {
                    next.estimated_hours = hours(&mut v, &field, input.estimated_hours);
                }
                "actual_hours" => next.actual_hours = hours(&mut v, &field, input.actual_hours),
                "validation_result" => {
                    next.validation_result = json_object(&mut v, &field, &input.validation_result);
                }
                "ai_feedback" => {
                    next.ai_feedback =
                        v.free_text(&field, &input.ai_feedback, MAX_DESCRIPTION_CHARS, false);
                }
                "metadata" => next.metadata = json_object(&mut v, &field, &input.metadata),
                _ => v.add(field, "UNKNOWN_FIELD", "is not a task field"),
            }
        }
        v.finish()?;
        Ok(next)
    }

    /// Validates the values of the fields named by `paths` alone, before anything is read.
    pub fn check_paths(input: &TaskInput, paths: &[String], prefix: &str) -> Result<(), Refusal> {
        let any = Self {
            title: String::new(),
            description: String::new(),
            task_type: TaskType::Code,
            status: TaskStatus::Todo,
            priority: DEFAULT_PRIORITY,
            estimated_hours: None,
            actual_hours: None,
            validation_result: Map::new(),
            ai_feedback: String::new(),
            metadata: Map::new(),
        };
        any.with(input, paths, prefix).map(|_| ())
    }
}

/// What a status move does to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The task became DONE by this move: the goal's done count grows, TaskCompleted is due.
    pub completes: bool,
}

impl Task {
    /// The move to `to` at `now`; FAILED_PRECONDITION `INVALID_TASK_TRANSITION` for one the
    /// life cycle does not allow.
    pub fn transition(&self, to: TaskStatus, now: DateTime<Utc>) -> Result<Move, Refusal> {
        let from = self.fields.status;
        if !from.may_become(to) {
            return Err(Refusal::precondition(
                "INVALID_TASK_TRANSITION",
                format!(
                    "task {} cannot move from {} to {}",
                    self.id,
                    from.as_str(),
                    to.as_str()
                ),
            )
            .at("task.status")
            .with("task_id", self.id)
            .with("from", from.as_str())
            .with("to", to.as_str()));
        }
        let started_at = match to {
            TaskStatus::InProgress => self.started_at.or(Some(now)),
            _ => self.started_at,
        };
        let completes = from != TaskStatus::Done && to == TaskStatus::Done;
        let completed_at = if completes {
            Some(now)
        } else {
            self.completed_at
        };
        Ok(Move {
            started_at,
            completed_at,
            completes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::{Blocked, Done, InProgress, Review, Todo};

    #[test]
    fn only_the_life_cycle_moves_are_allowed() {
        let allowed = [
            (Todo, InProgress),
            (Todo, Blocked),
            (InProgress, Review),
            (InProgress, Done),
            (InProgress, Blocked),
            (InProgress, Todo),
            (Review, Done),
            (Review, InProgress),
            (Blocked, Todo),
            (Blocked, InProgress),
        ];
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(from.may_become(to), expected, "{from:?} → {to:?}");
            }
        }
    }

    fn task(status: TaskStatus) -> Task {
        let input = TaskInput {
            title: "t".into(),
            ..TaskInput::default()
        };
        let mut fields = TaskFields::new(&input).expect("valid");
        fields.status = status;
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        Task {
            id: Uuid::nil(),
            goal_id: Uuid::nil(),
            user_id: Uuid::nil(),
            fields,
            created_at: t0,
            updated_at: t0,
            started_at: None,
            completed_at: None,
            version: 1,
        }
    }

    #[test]
    fn done_completes_once_and_stamps() {
        let now = DateTime::from_timestamp(2_000, 0).unwrap_or_default();
        let moved = task(Review).transition(Done, now).expect("allowed");
        assert!(moved.completes);
        assert_eq!(moved.completed_at, Some(now));
        let mut done = task(Done);
        done.completed_at = Some(now);
        let again = done.transition(Done, now).expect("staying");
        assert!(!again.completes, "staying DONE completes nothing");
        let refused = done.transition(InProgress, now).expect_err("final");
        assert_eq!(refused.reason, "INVALID_TASK_TRANSITION");
        assert_eq!(refused.field(), Some("task.status"));
        assert_eq!(
            task(Todo)
                .transition(InProgress, now)
                .expect("ok")
                .started_at,
            Some(now)
        );
    }

    #[test]
    fn fields_are_validated_whole() {
        let refusal = TaskFields::new(&TaskInput {
            priority: Some(-1),
            estimated_hours: Some(f64::NAN),
            ..TaskInput::default()
        })
        .expect_err("invalid");
        let reasons: Vec<_> = refusal
            .violations
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("title", "REQUIRED"),
                ("priority", "OUT_OF_RANGE"),
                ("estimated_hours", "OUT_OF_RANGE")
            ]
        );
    }
}
