//! Experiences (seed 001's experiences module): ordered components, each a fragment of this
//! context or a mission of the missions context, and each user's progress through them.
//!
//! Components are completed in order: component n needs 1..n-1 first. The first completed
//! component starts the experience, the last completes it (and its rewards are answered once,
//! then). A started experience may be abandoned; an abandoned one takes no more progress. A
//! revert (a saga's compensation) undoes one completed component whatever the order, and a
//! completed experience it touches goes back to started.

use chrono::{DateTime, Utc};
use phoenix_runtime::Refusal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rules::Rewards;

/// Most components of one experience.
pub const MAX_COMPONENTS: usize = 50;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// What completes a component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Fragment(Uuid),
    Mission(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experience {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// In order: the first is sequence 1.
    pub components: Vec<Target>,
    pub rewards: Rewards,
}

impl Experience {
    /// The sequence (1-based) of the component completed by `target`.
    pub fn sequence_of(&self, target: &Target) -> Option<i32> {
        self.components
            .iter()
            .position(|t| t == target)
            .and_then(|i| i32::try_from(i + 1).ok())
    }

    pub fn component_count(&self) -> i32 {
        i32::try_from(self.components.len()).unwrap_or(i32::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    NotStarted,
    Started,
    Completed,
    Abandoned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Started => "started",
            Self::Completed => "completed",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "not_started" => Some(Self::NotStarted),
            "started" => Some(Self::Started),
            "completed" => Some(Self::Completed),
            "abandoned" => Some(Self::Abandoned),
            _ => None,
        }
    }
}

/// One user's progress in one experience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub experience_id: Uuid,
    pub status: Status,
    pub unlocked_at: Option<DateTime<Utc>>,
    /// Increasing.
    pub completed: Vec<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub abandoned_at: Option<DateTime<Utc>>,
    pub component_count: i32,
}

/// What completing a component did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// False: it was completed already (nothing changed).
    pub changed: bool,
    pub started_now: bool,
    pub completed_now: bool,
}

impl Progress {
    pub fn new(experience: &Experience) -> Self {
        Self {
            experience_id: experience.id,
            status: Status::NotStarted,
            unlocked_at: None,
            completed: Vec::new(),
            started_at: None,
            completed_at: None,
            abandoned_at: None,
            component_count: experience.component_count(),
        }
    }

    /// Completes component `sequence` of `experience` at `now`.
    pub fn complete(
        &mut self,
        experience: &Experience,
        sequence: i32,
        now: DateTime<Utc>,
    ) -> Result<Step, Refusal> {
        self.component_count = experience.component_count();
        if self.status == Status::Abandoned {
            return Err(Refusal::precondition(
                "EXPERIENCE_ABANDONED",
                "the user abandoned this experience; it takes no more progress",
            )
            .with("experience_id", self.experience_id));
        }
        if self.completed.contains(&sequence) {
            return Ok(Step {
                changed: false,
                started_now: false,
                completed_now: false,
            });
        }
        if let Some(missing) = (1..sequence).find(|s| !self.completed.contains(s)) {
            return Err(Refusal::precondition(
                "COMPONENT_OUT_OF_ORDER",
                format!("component {sequence} needs component {missing} completed first"),
            )
            .with("sequence", sequence)
            .with("missing_sequence", missing));
        }
        self.completed.push(sequence);
        self.completed.sort_unstable();
        let started_now = self.status == Status::NotStarted;
        if started_now {
            self.status = Status::Started;
            self.started_at = Some(now);
        }
        let completed_now = (1..=self.component_count).all(|s| self.completed.contains(&s));
        if completed_now {
            self.status = Status::Completed;
            self.completed_at = Some(now);
        }
        Ok(Step {
            changed: true,
            started_now,
            completed_now,
        })
    }

    /// Undoes component `sequence`; false when it was not completed.
    pub fn revert(&mut self, sequence: i32) -> bool {
        let Some(at) = self.completed.iter().position(|s| *s == sequence) else {
            return false;
        };
        self.completed.remove(at);
        if self.status == Status::Completed {
            self.status = Status::Started;
            self.completed_at = None;
        }
        if self.completed.is_empty() && self.status == Status::Started {
            self.status = Status::NotStarted;
            self.started_at = None;
        }
        true
    }

    /// Abandons a started experience; false when it was abandoned already.
    pub fn abandon(&mut self, now: DateTime<Utc>) -> Result<bool, Refusal> {
        match self.status {
            Status::Abandoned => Ok(false),
            Status::Started => {
                self.status = Status::Abandoned;
                self.abandoned_at = Some(now);
                Ok(true)
            }
            Status::NotStarted => Err(Refusal::precondition(
                "EXPERIENCE_NOT_STARTED",
                "only a started experience can be abandoned",
            )),
            Status::Completed => Err(Refusal::precondition(
                "EXPERIENCE_COMPLETED",
                "a completed experience cannot be abandoned",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experience(n: usize) -> Experience {
        Experience {
            id: Uuid::now_v7(),
            title: "t".into(),
            description: String::new(),
            components: (0..n).map(|i| Target::Mission(format!("m{i}"))).collect(),
            rewards: Rewards::default(),
        }
    }

    #[test]
    fn components_complete_in_order_and_the_last_completes_the_experience() {
        let e = experience(3);
        let now = Utc::now();
        let mut p = Progress::new(&e);
        let refused = p.complete(&e, 2, now).expect_err("out of order");
        assert_eq!(refused.reason, "COMPONENT_OUT_OF_ORDER");
        let first = p.complete(&e, 1, now).expect("first");
        assert!(first.changed && first.started_now && !first.completed_now);
        assert_eq!(p.status, Status::Started);
        let again = p.complete(&e, 1, now).expect("again");
        assert!(!again.changed);
        p.complete(&e, 2, now).expect("second");
        let last = p.complete(&e, 3, now).expect("last");
        assert!(last.completed_now);
        assert_eq!(
            (p.status, p.completed.as_slice()),
            (Status::Completed, &[1, 2, 3][..])
        );
        assert_eq!(e.sequence_of(&Target::Mission("m2".into())), Some(3));
    }

    #[test]
    fn reverts_walk_back_and_abandoned_takes_no_progress() {
        let e = experience(2);
        let now = Utc::now();
        let mut p = Progress::new(&e);
        assert!(!p.revert(1), "nothing to revert");
        p.complete(&e, 1, now).expect("1");
        p.complete(&e, 2, now).expect("2");
        assert!(p.revert(2));
        assert_eq!(p.status, Status::Started);
        assert!(p.completed_at.is_none());
        assert!(p.revert(1));
        assert_eq!(p.status, Status::NotStarted);
        assert_eq!(
            p.abandon(now).expect_err("not started").reason,
            "EXPERIENCE_NOT_STARTED"
        );
        p.complete(&e, 1, now).expect("1");
        assert!(p.abandon(now).expect("abandoned"));
        assert!(!p.abandon(now).expect("twice is a no-op"));
        assert_eq!(
            p.complete(&e, 2, now).expect_err("abandoned").reason,
            "EXPERIENCE_ABANDONED"
        );
    }
}
