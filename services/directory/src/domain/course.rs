//! Courses (seed 002): a user's course, its life cycle and the rules for changing one.
//!
//! DRAFT → ACTIVE or ARCHIVED; ACTIVE → COMPLETED or ARCHIVED; COMPLETED → ARCHIVED; ARCHIVED
//! is final. Becoming COMPLETED stamps `completed_at`; staying in a status is no transition.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{hundredths, metadata};

pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Progress is 0.00 to 100.00 percent.
pub const MAX_PROGRESS: i64 = 10_000;

pub const WRITABLE: &[&str] = &[
    "title",
    "description",
    "status",
    "progress_percentage",
    "metadata",
];
pub const READ_ONLY: &[&str] = &[
    "id",
    "owner_user_id",
    "create_time",
    "update_time",
    "complete_time",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourseStatus {
    Draft,
    Active,
    Completed,
    Archived,
}

impl CourseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Archived => "archived",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "draft" => Some(Self::Draft),
            "active" => Some(Self::Active),
            "completed" => Some(Self::Completed),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }

    /// Whether a course may move from `self` to `to`.
    pub fn may_become(self, to: Self) -> bool {
        use CourseStatus::{Active, Archived, Completed, Draft};
        matches!(
            (self, to),
            (Draft, Active | Archived) | (Active, Completed | Archived) | (Completed, Archived)
        ) || self == to
    }
}

/// The fields of a course a caller writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseFields {
    pub title: String,
    pub description: String,
    pub status: CourseStatus,
    /// Hundredths of a percent.
    pub progress: i32,
    pub metadata: Map<String, Value>,
}

/// What a caller sent for them (`status: None` is "unspecified").
#[derive(Debug, Clone, Default)]
pub struct CourseInput {
    pub title: String,
    pub description: String,
    pub status: Option<CourseStatus>,
    pub progress_percentage: f64,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub fields: CourseFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl CourseFields {
    /// A new course's fields: every field validated; a new course is DRAFT or ACTIVE.
    pub fn new(input: &CourseInput) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let status = input.status.unwrap_or(CourseStatus::Draft);
        v.check(
            matches!(status, CourseStatus::Draft | CourseStatus::Active),
            "status",
            "INVALID_INITIAL_STATUS",
            "a new course is DRAFT or ACTIVE",
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
            progress: progress(&mut v, "progress_percentage", input.progress_percentage),
            metadata: metadata(&mut v, "metadata", input.metadata.clone()),
        };
        v.finish()?;
        Ok(fields)
    }

    /// These fields with those named by `paths` taken from `input` (violations named
    /// `{prefix}{path}`). The status is only validated here; [`Course::transition`] decides
    /// whether the move is allowed.
    pub fn with(
        &self,
        input: &CourseInput,
        paths: &[String],
        prefix: &str,
    ) -> Result<Self, Refusal> {
        let mut v = Violations::new();
        let mut next = self.clone();
        for path in paths {
            let field = format!("{prefix}{path}");
            match path.as_str() {
                "title" => next.title = v.text(&field, &input.title, MAX_TITLE_CHARS),
                "description" => {
                    next.description =
                        v.free_text(&field, &input.description, MAX_DESCRIPTION_CHARS, false);
                }
                "status" => match input.status {
                    Some(status) => next.status = status,
                    None => v.add(field, "REQUIRED", "is required: the status to move to"),
                },
                "progress_percentage" => {
                    next.progress = progress(&mut v, &field, input.progress_percentage);
                }
                "metadata" => next.metadata = metadata(&mut v, &field, input.metadata.clone()),
                _ => v.add(field, "UNKNOWN_FIELD", "is not a course field"),
            }
        }
        v.finish()?;
        Ok(next)
    }
}

impl CourseFields {
    /// The values of the fields named by `paths` alone (see `Profile::check_paths`).
    pub fn check_paths(input: &CourseInput, paths: &[String], prefix: &str) -> Result<(), Refusal> {
        let any = Self {
            title: String::new(),
            description: String::new(),
            status: CourseStatus::Draft,
            progress: 0,
            metadata: Map::new(),
        };
        any.with(input, paths, prefix).map(|_| ())
    }
}

impl Course {
    /// The completion time after moving to `to` at `now`; FAILED_PRECONDITION
    /// `INVALID_COURSE_TRANSITION` for a move the life cycle does not allow.
    pub fn transition(
        &self,
        to: CourseStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Refusal> {
        let from = self.fields.status;
        if !from.may_become(to) {
            return Err(Refusal::precondition(
                "INVALID_COURSE_TRANSITION",
                format!(
                    "course {} cannot move from {} to {}",
                    self.id,
                    from.as_str(),
                    to.as_str()
                ),
            )
            .with("course_id", self.id)
            .with("from", from.as_str())
            .with("to", to.as_str()));
        }
        Ok(match (from, to) {
            (CourseStatus::Active, CourseStatus::Completed) => Some(now),
            (_, CourseStatus::Completed | CourseStatus::Archived) => self.completed_at,
            _ => None,
        })
    }
}

fn progress(v: &mut Violations, field: &str, value: f64) -> i32 {
    // In 0..=10000, so it fits.
    i32::try_from(hundredths(v, field, value, MAX_PROGRESS)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CourseStatus::{Active, Archived, Completed, Draft};

    #[test]
    fn only_the_life_cycle_moves_are_allowed() {
        let allowed = [
            (Draft, Active),
            (Draft, Archived),
            (Active, Completed),
            (Active, Archived),
            (Completed, Archived),
        ];
        for from in [Draft, Active, Completed, Archived] {
            for to in [Draft, Active, Completed, Archived] {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(from.may_become(to), expected, "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn a_new_course_is_validated_whole() {
        let refusal = CourseFields::new(&CourseInput {
            title: String::new(),
            status: Some(Completed),
            progress_percentage: 101.0,
            ..CourseInput::default()
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
                ("status", "INVALID_INITIAL_STATUS"),
                ("title", "REQUIRED"),
                ("progress_percentage", "OUT_OF_RANGE")
            ]
        );
    }
}
