//! The analytics use cases: the weekly views, read a page at a time and refreshed.

use std::time::Duration;

use phoenix_runtime::Error;

use super::Missions;
use crate::domain::analytics::{AdherenceWeek, PageToken, RewardsWeek, WeekFilter};
use crate::store::analytics as store;

impl Missions {
    /// A page of weekly adherence and the next page's token.
    pub async fn weekly_adherence(
        &self,
        filter: &WeekFilter,
    ) -> Result<(Vec<AdherenceWeek>, Option<PageToken>), Error> {
        store::adherence(&self.pool, filter).await
    }

    /// A page of weekly rewards and the next page's token.
    pub async fn weekly_rewards(
        &self,
        filter: &WeekFilter,
    ) -> Result<(Vec<RewardsWeek>, Option<PageToken>), Error> {
        store::rewards(&self.pool, filter).await
    }

    /// Refreshes both views; answers how long it took.
    pub async fn refresh_analytics(&self) -> Result<Duration, Error> {
        store::refresh(&self.pool).await
    }
}
