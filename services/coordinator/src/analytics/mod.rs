//! Analytics (issue 15, item 5; seed 001 sections 4.3 and 6.1.3): the analytics writer is a
//! consumer of the bus (group `analytics`, every type) that records each event once per event
//! id in `analytics_events`, partitioned by month, and keeps the daily rollup in the same
//! transaction; `maintain` creates the partitions of the coming months and detaches those past
//! the retention. [`api`] serves `AnalyticsService`.

pub mod api;
pub mod store;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use phoenix_proto::events::v1 as pb;
use phoenix_runtime::error::{Error, Violations};
use prost::Message;
use uuid::Uuid;

use crate::bus::{Bus, Leased, catalog, domain::Patterns};

/// The writer's consumer group on the bus.
pub const GROUP: &str = "analytics";
/// Deliveries the writer takes per pass.
const BATCH: i64 = 500;
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// How far analytics partitions reach.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Months kept before the current one; older partitions are detached (default 13).
    pub months: u32,
    /// Months created ahead of the current one (default 3).
    pub ahead: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            months: 13,
            ahead: 3,
        }
    }
}

impl Retention {
    /// From `PHOENIX_ANALYTICS_RETENTION_MONTHS` and `PHOENIX_ANALYTICS_MONTHS_AHEAD`.
    pub fn from_env() -> anyhow::Result<Self> {
        let read = |name: &str, default: u32| -> anyhow::Result<u32> {
            match std::env::var(name) {
                Ok(value) => value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (1..=120).contains(v))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{name}: must be a number of months from 1 to 120, got {value:?}"
                        )
                    }),
                Err(_) => Ok(default),
            }
        };
        let defaults = Self::default();
        Ok(Self {
            months: read("PHOENIX_ANALYTICS_RETENTION_MONTHS", defaults.months)?,
            ahead: read("PHOENIX_ANALYTICS_MONTHS_AHEAD", defaults.ahead)?,
        })
    }

    /// The oldest month kept at `now`.
    pub fn first_kept(&self, now: DateTime<Utc>) -> NaiveDate {
        month_of(now)
            .checked_sub_months(Months::new(self.months))
            .unwrap_or(NaiveDate::MIN)
    }
}

/// The first day of the month of `time`.
pub fn month_of(time: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(time.year(), time.month(), 1).unwrap_or(NaiveDate::MIN)
}

/// What a maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintained {
    pub created: Vec<NaiveDate>,
    pub detached: Vec<NaiveDate>,
}

/// Creates the partitions from the current month to `ahead` months after it, and detaches
/// those before the retention, as of `now`.
pub async fn maintain(
    pool: &sqlx::PgPool,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Maintained, Error> {
    let current = month_of(now);
    let months: Vec<NaiveDate> = (0..=retention.ahead)
        .filter_map(|n| current.checked_add_months(Months::new(n)))
        .collect();
    let created = store::create_partitions(pool, &months).await?;
    let detached = store::detach_partitions(pool, retention.first_kept(now)).await?;
    Ok(Maintained { created, detached })
}

/// The analytics writer.
#[derive(Debug)]
pub struct Writer {
    pool: sqlx::PgPool,
    retention: Retention,
    /// Months whose partition this process knows exists.
    partitions: Mutex<HashSet<NaiveDate>>,
}

impl Writer {
    pub fn new(pool: sqlx::PgPool, retention: Retention) -> Self {
        Self {
            pool,
            retention,
            partitions: Mutex::new(HashSet::new()),
        }
    }

    /// Consumes the bus until shutdown.
    pub async fn run(self, bus: Bus) {
        let mut violations = Violations::new();
        let patterns = Patterns::parse(&mut violations, "patterns", &["*".to_owned()]);
        let writer = std::sync::Arc::new(self);
        bus.consume(GROUP, &patterns, BATCH, ACK_TIMEOUT, |leased| {
            let writer = writer.clone();
            async move { writer.handle(leased, Utc::now()).await }
        })
        .await;
    }

    /// Records a batch of deliveries: answers the ids done (recorded, already recorded, or
    /// older than the retention) and failed.
    pub async fn handle(
        &self,
        leased: Vec<Leased>,
        now: DateTime<Utc>,
    ) -> (Vec<Uuid>, Vec<(Uuid, String)>) {
        let ids: Vec<Uuid> = leased.iter().map(|l| l.delivery_id).collect();
        match self.record(&leased, now).await {
            Ok(()) => (ids, Vec::new()),
            Err(error) => {
                tracing::warn!(%error, "analytics writer could not record a batch");
                let reason = error.to_string();
                (
                    Vec::new(),
                    ids.into_iter().map(|id| (id, reason.clone())).collect(),
                )
            }
        }
    }

    async fn record(&self, leased: &[Leased], now: DateTime<Utc>) -> Result<(), Error> {
        let first_kept = self.retention.first_kept(now);
        let mut rows = Vec::with_capacity(leased.len());
        for delivery in leased {
            let Some(row) = recorded(delivery) else {
                tracing::error!(event_type = %delivery.event_type, "undecodable envelope on the bus; skipped");
                continue;
            };
            if month_of(row.occurred_at) < first_kept {
                continue;
            }
            rows.push(row);
        }
        let months: HashSet<NaiveDate> = rows.iter().map(|r| month_of(r.occurred_at)).collect();
        let missing: Vec<NaiveDate> = {
            let known = self
                .partitions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        if !missing.is_empty() {
            store::create_partitions(&self.pool, &missing).await?;
            self.partitions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(missing);
        }
        store::record(&self.pool, &rows).await?;
        Ok(())
    }
}

/// The row of a delivered event.
fn recorded(delivery: &Leased) -> Option<store::Recorded> {
    let event = pb::Event::decode(delivery.envelope.as_slice()).ok()?;
    let payload = event.payload.unwrap_or_default();
    let payload_type = payload
        .type_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let user_id = catalog::user_of(
        &event.r#type,
        delivery.catalog_type.as_deref(),
        &payload.value,
    )
    .and_then(|u| Uuid::try_parse(&u).ok());
    Some(store::Recorded {
        event_id: Uuid::try_parse(&event.id).ok()?,
        occurred_at: event
            .occurred_at
            .as_ref()
            .and_then(phoenix_runtime::convert::time_from_proto)?,
        event_type: event.r#type,
        catalog_type: delivery.catalog_type.clone(),
        user_id,
        source: delivery.source.clone(),
        payload_type,
        payload: payload.value,
    })
}
