//! The story: fragments, the decisions they offer, and the rule that keeps next-fragment links
//! from looping.
//!
//! A decision points to the fragment the story goes to next. The links form a directed graph
//! that must stay acyclic: a loop of next fragments would walk (and unlock, and pay) forever.
//! A story that returns to a hub does so through a new fragment, not a link back.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rules::{CheckStatus, RequirementCheck, Requirements, Rewards};

/// Longest fragment content, in characters.
pub const MAX_CONTENT_CHARS: usize = 65_536;
pub const MAX_PREVIEW_CHARS: usize = 1_000;
pub const MAX_TITLE_CHARS: usize = 200;
/// Highest level a fragment may complete, and highest experience sequence.
pub const MAX_LEVEL: i32 = 10_000;

/// What an author writes of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentInput {
    pub id: Uuid,
    pub title: String,
    pub content: String,
    pub preview: String,
    pub vip_exclusive: bool,
    /// The experience and the place in it.
    pub experience: Option<(Uuid, i32)>,
    pub requirements: Requirements,
    pub rewards: Rewards,
    pub completes_level: i32,
}

/// The engagement metrics the service keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub view_count: i64,
    pub visitor_count: i64,
    pub completion_count: i64,
    pub time_spent_ms: i64,
}

impl Metrics {
    /// Completions per visitor, in hundredths of a percent (0..=10000).
    pub fn completion_rate_hundredths(&self) -> i64 {
        if self.visitor_count == 0 {
            return 0;
        }
        (self.completion_count.min(self.visitor_count) * 10_000) / self.visitor_count
    }

    /// Mean time spent per visit, in milliseconds.
    pub fn average_time_spent_ms(&self) -> i64 {
        if self.view_count == 0 {
            0
        } else {
            self.time_spent_ms / self.view_count
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub input: FragmentInput,
    pub metrics: Metrics,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: Uuid,
    pub fragment_id: Uuid,
    pub label: String,
    pub next_fragment: Option<Uuid>,
    pub rewards: Rewards,
    pub position: i32,
}

/// What taking `decision` on `fragment` answers: the fragment's rewards and the decision's
/// together, and the level it completes (0: none).
pub fn decision_rewards(fragment: &Fragment, decision: &Decision) -> (Rewards, i32) {
    (
        fragment.input.rewards.plus(&decision.rewards),
        fragment.input.completes_level,
    )
}

/// Whether a fragment's content is shown: to a caller that resolved the external facts itself
/// (`include_content`, a trusted caller), or when every requirement is met (for no user:
/// when the fragment needs nothing at all).
pub fn shows_content(check: &RequirementCheck, include_content: bool) -> bool {
    include_content || check.status == CheckStatus::Met
}

/// The loop that a link `from → to` would close, given the other links `edges` (each
/// `(fragment, next fragment)`): the fragments along it, starting and ending at `from`. `None`
/// when the link keeps the graph acyclic.
pub fn cycle_through(from: Uuid, to: Uuid, edges: &[(Uuid, Uuid)]) -> Option<Vec<Uuid>> {
    if from == to {
        return Some(vec![from, from]);
    }
    let mut next: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (a, b) in edges {
        next.entry(*a).or_default().push(*b);
    }
    // Breadth-first from `to`, remembering how each fragment was reached.
    let mut came_from: HashMap<Uuid, Uuid> = HashMap::new();
    let mut seen: HashSet<Uuid> = HashSet::from([to]);
    let mut queue = VecDeque::from([to]);
    while let Some(at) = queue.pop_front() {
        for &following in next.get(&at).map(Vec::as_slice).unwrap_or_default() {
            if !seen.insert(following) {
                continue;
            }
            came_from.insert(following, at);
            if following == from {
                let mut path = vec![from];
                let mut step = from;
                while let Some(&previous) = came_from.get(&step) {
                    path.push(previous);
                    step = previous;
                }
                path.push(from);
                path.reverse();
                return Some(path);
            }
            queue.push_back(following);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    #[test]
    fn a_link_back_to_an_ancestor_is_a_cycle_with_its_path() {
        let f = ids(4);
        let edges = [(f[0], f[1]), (f[1], f[2]), (f[2], f[3])];
        // f3 → f0 closes f0 → f1 → f2 → f3 → f0.
        let cycle = cycle_through(f[3], f[0], &edges).expect("a cycle");
        assert_eq!(cycle, [f[3], f[0], f[1], f[2], f[3]]);
        assert_eq!(cycle_through(f[1], f[1], &edges), Some(vec![f[1], f[1]]));
    }

    #[test]
    fn branches_that_meet_again_are_not_a_cycle() {
        let f = ids(5);
        // A diamond: f0 → f1 → f3, f0 → f2 → f3, and f3 → f4.
        let edges = [(f[0], f[1]), (f[0], f[2]), (f[1], f[3]), (f[2], f[3])];
        assert_eq!(cycle_through(f[3], f[4], &edges), None);
        assert_eq!(cycle_through(f[4], f[0], &edges), None);
        assert!(cycle_through(f[3], f[0], &edges).is_some());
    }

    #[test]
    fn metrics_rates_are_bounded_and_zero_without_visits() {
        let none = Metrics::default();
        assert_eq!(none.completion_rate_hundredths(), 0);
        assert_eq!(none.average_time_spent_ms(), 0);
        let some = Metrics {
            view_count: 4,
            visitor_count: 3,
            completion_count: 1,
            time_spent_ms: 10_000,
        };
        assert_eq!(some.completion_rate_hundredths(), 3333);
        assert_eq!(some.average_time_spent_ms(), 2500);
    }
}
