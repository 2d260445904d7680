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

/// The first day a list may start from or a page token name: weeks are Mondays of lived dates,
/// and like every date a Phoenix service accepts they lie in the years 1 to 9999 (chrono
/// reads years PostgreSQL's `date` cannot hold).
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// The last day a list may start from or a page token name.
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(date) => date,
    None => NaiveDate::MAX,
};

/// A `YYYY-MM-DD` date between [`FIRST_DAY`] and [`LAST_DAY`]; None for anything else.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|day| (FIRST_DAY..=LAST_DAY).contains(day))
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
            week: parse_day(week)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_tokens_lie_in_the_years_1_to_9999() {
        assert_eq!(parse_day("0001-01-01"), Some(FIRST_DAY));
        assert_eq!(parse_day("9999-12-31"), Some(LAST_DAY));
        for text in [
            "-5000-01-01",
            "0000-12-31",
            "10000-01-01",
            "+10000-01-01",
            "2026-02-30",
        ] {
            assert_eq!(parse_day(text), None, "{text}");
        }
        let token = PageToken {
            week: parse_day("2026-06-01").expect("a day"),
            user_id: Uuid::now_v7(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Some(token));
        let far = format!("-5000-01-01.{}", Uuid::nil().simple());
        assert_eq!(PageToken::decode(&far), None);
    }
}
