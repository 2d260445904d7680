//! The narrative's types and rules as plain Rust: no I/O, no clock reads (the time is passed
//! in), refusals returned as values.
//!
//! Conventions every module here shares:
//! - Ids of this context (fragments, decisions, experiences) are UUIDs chosen by the author,
//!   so an upsert creates or replaces by id and a demo story has stable ids. Ids of other
//!   contexts (items, achievements, missions) are opaque strings of 1 to 64 characters.
//! - Amounts (besitos, item quantities) are integers, never negative; metrics are counters
//!   from which rates are computed at the read, in hundredths.
//! - What this context cannot know (VIP, level, items, achievements) is answered as an
//!   external fact, never guessed.
//! - Every change of a user's progress is a change of one aggregate, the user
//!   (`narrative_user`), whose events carry consecutive versions.

pub mod experience;
pub mod reaction;
pub mod rules;
pub mod story;

pub use experience::{Experience, Progress as ExperienceProgress, Target};
pub use reaction::{ContentKind, ContentRef, ReactionReward};
pub use rules::{
    CheckStatus, ExternalFact, ItemAmount, Known, RequirementCheck, Requirements, Rewards,
};
pub use story::{Decision, Fragment, FragmentInput, Metrics};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One user's progress on one fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentProgress {
    pub fragment_id: Uuid,
    pub unlocked_at: Option<DateTime<Utc>>,
    pub visit_count: i64,
    pub time_spent_ms: i64,
    pub first_visit_at: Option<DateTime<Utc>>,
    pub last_visit_at: Option<DateTime<Utc>>,
    pub decision: Option<(Uuid, DateTime<Utc>)>,
}

impl FragmentProgress {
    pub fn none(fragment_id: Uuid) -> Self {
        Self {
            fragment_id,
            unlocked_at: None,
            visit_count: 0,
            time_spent_ms: 0,
            first_visit_at: None,
            last_visit_at: None,
            decision: None,
        }
    }
}

/// A decision a user took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenDecision {
    pub user_id: Uuid,
    pub fragment_id: Uuid,
    pub decision_id: Uuid,
    pub taken_at: DateTime<Utc>,
}

/// A user's reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub user_id: Uuid,
    pub content: ContentRef,
    pub reaction: String,
    pub besitos: i64,
    pub created_at: DateTime<Utc>,
}

/// What a compensation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reverted {
    Reverted,
    /// Nothing to undo: never applied, or undone already.
    NotApplied,
}
