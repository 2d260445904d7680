//! `AnalyticsService`: requests decoded and validated, then one query.

use chrono::{DateTime, NaiveDate, Utc};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::analytics_service_server::AnalyticsService;
use phoenix_runtime::auth::Access;
use phoenix_runtime::error::{Violations, quote};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::store;
use crate::bus::{BUS_ADMIN_ROLE, domain};

/// Longest time range of one query, in days.
const MAX_RANGE_DAYS: i64 = 366;

/// The tonic face of analytics.
#[derive(Debug, Clone)]
pub struct AnalyticsApi {
    pool: sqlx::PgPool,
}

impl AnalyticsApi {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }
}

/// Page token of QueryEvents: `<occurred_at micros>.<event id>`.
fn token(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{id}", at.timestamp_micros())
}

fn parse_token(value: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = value.split_once('.')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::try_parse(id).ok()?,
    ))
}

fn day(violations: &mut Violations, field: &str, value: &str) -> Option<NaiveDate> {
    if value.is_empty() {
        violations.add(field, "REQUIRED", "is required: a day, YYYY-MM-DD");
        return None;
    }
    let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
    if parsed.is_none() {
        violations.add(
            field,
            "INVALID_DAY",
            format!("{}: must be a day, YYYY-MM-DD", quote(value)),
        );
    }
    parsed
}

fn event_types(violations: &mut Violations, values: &[String]) -> Vec<String> {
    if values.len() > 32 {
        violations.add(
            "event_types",
            "TOO_MANY_EVENT_TYPES",
            format!("at most 32, got {}", values.len()),
        );
    }
    for (i, value) in values.iter().enumerate() {
        domain::check_event_type(violations, &format!("event_types[{i}]"), value);
    }
    values.to_vec()
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        Access::of(&request, BUS_ADMIN_ROLE).admin()?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let user_id = violations.optional_uuid("user_id", &r.user_id);
        let event_types = event_types(&mut violations, &r.event_types);
        let from = violations.timestamp("from_time", r.from_time.as_ref());
        let to = violations.timestamp("to_time", r.to_time.as_ref());
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                violations.add("to_time", "INVALID_TIME_RANGE", "must be after from_time");
            } else if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
                violations.add(
                    "to_time",
                    "INVALID_TIME_RANGE",
                    format!("must be at most {MAX_RANGE_DAYS} days after from_time"),
                );
            }
        }
        let limit = violations.page_size(r.page_size, 100, 1_000);
        let before = violations.page_token(&r.page_token, parse_token);
        violations.finish()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(phoenix_runtime::Error::invariant(
                "DECODED_WITHOUT_VALUE",
                "a time range passed validation without its bounds",
            )
            .into());
        };
        let mut events = store::query_events(
            &self.pool,
            &store::EventQuery {
                user_id,
                event_types,
                from,
                to,
                before,
                limit: limit + 1,
            },
        )
        .await?;
        let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = match events.last() {
            Some(last) if more => token(last.occurred_at, last.event_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::QueryEventsResponse {
            events: events
                .into_iter()
                .map(|e| pb::AnalyticsEvent {
                    event_id: e.event_id.to_string(),
                    event_type: e.event_type,
                    catalog_type: e.catalog_type.unwrap_or_default(),
                    user_id: e.user_id.map(|u| u.to_string()).unwrap_or_default(),
                    occurred_at: Some(phoenix_runtime::convert::timestamp(e.occurred_at)),
                    source: e.source,
                    payload: Some(prost_types::Any {
                        type_url: format!("type.googleapis.com/{}", e.payload_type),
                        value: e.payload,
                    }),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_daily_metrics(
        &self,
        request: Request<pb::GetDailyMetricsRequest>,
    ) -> Result<Response<pb::GetDailyMetricsResponse>, Status> {
        Access::of(&request, BUS_ADMIN_ROLE).admin()?;
        let r = request.get_ref();
        let mut violations = Violations::new();
        let from = day(&mut violations, "from_day", &r.from_day);
        let to = day(&mut violations, "to_day", &r.to_day);
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                violations.add(
                    "to_day",
                    "INVALID_TIME_RANGE",
                    "must not be before from_day",
                );
            } else if (to - from).num_days() > MAX_RANGE_DAYS {
                violations.add(
                    "to_day",
                    "INVALID_TIME_RANGE",
                    format!("must be at most {MAX_RANGE_DAYS} days after from_day"),
                );
            }
        }
        if !r.event_type.is_empty() {
            domain::check_event_type(&mut violations, "event_type", &r.event_type);
        }
        violations.finish()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(phoenix_runtime::Error::invariant(
                "DECODED_WITHOUT_VALUE",
                "a day range passed validation without its bounds",
            )
            .into());
        };
        let rows = store::daily_metrics(
            &self.pool,
            from,
            to,
            (!r.event_type.is_empty()).then_some(r.event_type.as_str()),
        )
        .await?;
        Ok(Response::new(pb::GetDailyMetricsResponse {
            metrics: rows
                .into_iter()
                .map(|(day, event_type, events, users)| pb::DailyMetric {
                    day: day.format("%Y-%m-%d").to_string(),
                    event_type,
                    events,
                    users,
                })
                .collect(),
        }))
    }
}
