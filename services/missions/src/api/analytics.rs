//! AnalyticsService: the weekly materialized views, read (a user its own weeks, the admin
//! role every user's) and refreshed (the admin role).

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::analytics_service_server::AnalyticsService;
use phoenix_runtime::{Refusal, Violations, quote};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{require_admin, require_owner};
use crate::app::Missions;
use crate::domain::analytics::{self, FIRST_DAY, LAST_DAY, PageToken, WeekFilter};

const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1_000;

/// The fields both list requests have: a user, a first week, a page.
trait WeekList {
    fn fields(&self) -> (&str, &str, i32, &str);
}

macro_rules! week_list {
    ($($request:ty),+) => {$(
        impl WeekList for $request {
            fn fields(&self) -> (&str, &str, i32, &str) {
                (&self.user_id, &self.from_week, self.page_size, &self.page_token)
            }
        }
    )+};
}

week_list!(pb::ListWeeklyAdherenceRequest, pb::ListWeeklyRewardsRequest);

/// The filter of a list request: an optional user, an optional first week, a page. With
/// authentication on, a caller reads its own weeks only (PERMISSION_DENIED `NOT_OWNER`), and
/// every user's (no `user_id`) with the admin role: like a board, a user's adherence and
/// rewards are its own.
fn filter<T: WeekList>(request: &Request<T>) -> Result<WeekFilter, Refusal> {
    let (user_id, from_week, page_size, page_token) = request.get_ref().fields();
    let mut violations = Violations::new();
    let user_id = violations.optional_uuid("user_id", user_id);
    let from_week = (!from_week.is_empty())
        .then(|| {
            let week = analytics::parse_day(from_week);
            if week.is_none() {
                violations.add(
                    "from_week",
                    "INVALID_DATE",
                    format!(
                        "must be a date between {FIRST_DAY} and {LAST_DAY}, YYYY-MM-DD, got {}",
                        quote(from_week)
                    ),
                );
            }
            week
        })
        .flatten();
    let after = violations.page_token(page_token, PageToken::decode);
    let limit = violations.page_size(page_size, DEFAULT_PAGE, MAX_PAGE);
    violations.finish()?;
    match user_id {
        Some(user_id) => require_owner(request, user_id)?,
        None => require_admin(request)?,
    }
    Ok(WeekFilter {
        user_id,
        from_week,
        after,
        limit,
    })
}

fn user(id: Uuid) -> String {
    id.to_string()
}

#[tonic::async_trait]
impl AnalyticsService for Missions {
    async fn list_weekly_adherence(
        &self,
        request: Request<pb::ListWeeklyAdherenceRequest>,
    ) -> Result<Response<pb::ListWeeklyAdherenceResponse>, Status> {
        let filter = filter(&request)?;
        let (rows, next) = self.weekly_adherence(&filter).await?;
        Ok(Response::new(pb::ListWeeklyAdherenceResponse {
            rows: rows
                .into_iter()
                .map(|row| pb::WeeklyAdherence {
                    user_id: user(row.user_id),
                    week: row.week.to_string(),
                    heartbeat_days: row.heartbeat_days,
                    protected_days: row.protected_days,
                    petals_lost: row.petals_lost,
                    runs_succeeded: row.runs_succeeded,
                })
                .collect(),
            next_page_token: next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn list_weekly_rewards(
        &self,
        request: Request<pb::ListWeeklyRewardsRequest>,
    ) -> Result<Response<pb::ListWeeklyRewardsResponse>, Status> {
        let filter = filter(&request)?;
        let (rows, next) = self.weekly_rewards(&filter).await?;
        Ok(Response::new(pb::ListWeeklyRewardsResponse {
            rows: rows
                .into_iter()
                .map(|row| pb::WeeklyRewards {
                    user_id: user(row.user_id),
                    week: row.week.to_string(),
                    xp_total: row.xp_total,
                    currency_total: row.currency_total,
                    claims: row.claims,
                })
                .collect(),
            next_page_token: next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn refresh_analytics(
        &self,
        request: Request<pb::RefreshAnalyticsRequest>,
    ) -> Result<Response<pb::RefreshAnalyticsResponse>, Status> {
        require_admin(&request)?;
        let elapsed = self.refresh_analytics().await?;
        Ok(Response::new(pb::RefreshAnalyticsResponse {
            elapsed_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        }))
    }
}
