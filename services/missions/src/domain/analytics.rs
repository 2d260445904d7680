//! The weekly analytics read models: what the adherence and rewards views hold per user and
//! week, and how a page of them is asked for.

use chrono::NaiveDate;
use uuid::Uuid;

/// One user's local week of adherence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdherenceWeek {
    pub user_id: Uuid,
    /// Monday of the user's local week.
    pub week: NaiveDate,
    /// Local dates with at least one heartbeat.
    pub heartbeat_days: i64,
    /// Missed days a protecting effect covered.
    pub protected_days: i64,
    /// Missed days that cost a petal.
    pub petals_lost: i64,
    /// Runs that reached their target that week.
    pub runs_succeeded: i64,
}

/// One user's UTC week of claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardsWeek {
    pub user_id: Uuid,
    /// Monday of the UTC week.
    pub week: NaiveDate,
    pub xp_total: i64,
    /// Minor units.
    pub currency_total: i64,
    pub claims: i64,
}

/// Where a page ends: rows come newest week first, then by user id descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub(crate) week: NaiveDate,
    pub(crate) user_id: Uuid,
}

impl Default for PageToken {
    /// Before every row: the first page.
    fn default() -> Self {
        Self {
            week: NaiveDate::MAX,
            user_id: Uuid::max(),
        }
    }
}

impl PageToken {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.week, self.user_id.simple())
    }

    /// None for text `encode` did not write.
    pub fn decode(token: &str) -> Option<Self> {
        let (week, user_id) = token.split_once('.')?;
        Some(Self {
            week: week.parse().ok()?,
            user_id: Uuid::try_parse(user_id).ok()?,
        })
    }
}

/// Which rows a list call wants.
#[derive(Debug, Clone, Default)]
pub struct WeekFilter {
    /// One user's weeks; None: every user.
    pub user_id: Option<Uuid>,
    /// Weeks from this Monday on; None: all.
    pub from_week: Option<NaiveDate>,
    /// The previous page's token.
    pub after: Option<PageToken>,
    pub limit: i64,
}
