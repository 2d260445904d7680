//! Every SQL statement of analytics.

use chrono::{DateTime, NaiveDate, Utc};
use phoenix_runtime::error::Error;
use sqlx::PgPool;
use uuid::Uuid;

use crate::bus::store::column;

/// An event to record.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event_type: String,
    pub catalog_type: Option<String>,
    pub user_id: Option<Uuid>,
    pub source: String,
    pub payload_type: String,
    pub payload: Vec<u8>,
}

/// Lock taken while partitions are created or detached, so replicas take turns.
const PARTITION_LOCK: i64 = 0x7068_6f65_6e69_7861; // "phoenixa"

/// Records `events` (their partitions exist) and rolls them into the daily metrics, in one
/// transaction; an event id already recorded is skipped. Answers how many were new.
///
/// Every insert goes in key order, so the writers of several coordinators, whose batches
/// share days and types, wait for each other's rows instead of deadlocking on them.
pub async fn record(pool: &PgPool, events: &[Recorded]) -> Result<u64, Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut events: Vec<&Recorded> = events.iter().collect();
    events.sort_unstable_by_key(|e| (e.event_id, e.occurred_at));
    let events = events.as_slice();
    let new: i64 = sqlx::query_scalar(
        "WITH new AS (
             INSERT INTO analytics_events (event_id, occurred_at, event_type, catalog_type,
                                           user_id, source, payload_type, payload)
             SELECT e.id, e.at, e.type, e.catalog, e.user_id, e.source, e.payload_type,
                    e.payload
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::text[],
                         $5::uuid[], $6::text[], $7::text[], $8::bytea[])
                  WITH ORDINALITY AS e(id, at, type, catalog, user_id, source, payload_type,
                                       payload, n)
             ORDER BY e.n
             ON CONFLICT DO NOTHING
             RETURNING (occurred_at AT TIME ZONE 'UTC')::date AS day,
                       coalesce(catalog_type, event_type) AS event_type, user_id),
         counted_users AS (
             INSERT INTO analytics_daily_users (day, event_type, user_id)
             SELECT DISTINCT day, event_type, user_id FROM new WHERE user_id IS NOT NULL
             ORDER BY day, event_type, user_id
             ON CONFLICT DO NOTHING
             RETURNING day, event_type),
         users AS (SELECT day, event_type, count(*) AS users FROM counted_users GROUP BY 1, 2),
         counts AS (SELECT day, event_type, count(*) AS events FROM new GROUP BY 1, 2),
         rolled AS (
             INSERT INTO analytics_daily_metrics (day, event_type, events, users)
             SELECT c.day, c.event_type, c.events, coalesce(u.users, 0)
             FROM counts c LEFT JOIN users u USING (day, event_type)
             ORDER BY c.day, c.event_type
             ON CONFLICT (day, event_type) DO UPDATE
                 SET events = analytics_daily_metrics.events + excluded.events,
                     users = analytics_daily_metrics.users + excluded.users
             RETURNING 1)
         SELECT count(*) FROM new",
    )
    .bind(column(events, |e| e.event_id))
    .bind(column(events, |e| e.occurred_at))
    .bind(column(events, |e| e.event_type.as_str()))
    .bind(column(events, |e| e.catalog_type.as_deref()))
    .bind(column(events, |e| e.user_id))
    .bind(column(events, |e| e.source.as_str()))
    .bind(column(events, |e| e.payload_type.as_str()))
    .bind(column(events, |e| e.payload.as_slice()))
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(new).unwrap_or(0))
}

/// The months that have an attached partition.
pub async fn attached_months(pool: &PgPool) -> Result<Vec<NaiveDate>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT month FROM analytics_partitions WHERE detached_at IS NULL ORDER BY month",
    )
    .fetch_all(pool)
    .await?)
}

/// The table name of a month's partition.
pub fn partition_name(month: NaiveDate) -> String {
    format!("analytics_events_{}", month.format("%Y_%m"))
}

/// Creates the partitions of `months` that were never made (a month already made, attached or
/// detached, is left alone). Answers the months created.
pub async fn create_partitions(
    pool: &PgPool,
    months: &[NaiveDate],
) -> Result<Vec<NaiveDate>, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut *tx)
        .await?;
    let mut created = Vec::new();
    for &month in months {
        let name = partition_name(month);
        let made: Option<NaiveDate> = sqlx::query_scalar(
            "INSERT INTO analytics_partitions (month, table_name) VALUES ($1, $2)
             ON CONFLICT (month) DO NOTHING RETURNING month",
        )
        .bind(month)
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?;
        if made.is_none() {
            continue;
        }
        let next = next_month(month);
        // Names and bounds are made here from dates, never from input.
        sqlx::query(&format!(
            "CREATE TABLE {name} PARTITION OF analytics_events
             FOR VALUES FROM ('{month}T00:00:00Z') TO ('{next}T00:00:00Z')"
        ))
        .execute(&mut *tx)
        .await?;
        created.push(month);
    }
    tx.commit().await?;
    Ok(created)
}

/// Detaches the attached partitions of months before `before`. Answers the months detached.
pub async fn detach_partitions(pool: &PgPool, before: NaiveDate) -> Result<Vec<NaiveDate>, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut *tx)
        .await?;
    let old: Vec<(NaiveDate, String)> = sqlx::query_as(
        "SELECT month, table_name FROM analytics_partitions
         WHERE detached_at IS NULL AND month < $1 ORDER BY month FOR UPDATE",
    )
    .bind(before)
    .fetch_all(&mut *tx)
    .await?;
    for (month, name) in &old {
        sqlx::query(&format!(
            "ALTER TABLE analytics_events DETACH PARTITION {name}"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE analytics_partitions SET detached_at = now() WHERE month = $1")
            .bind(month)
            .execute(&mut *tx)
            .await?;
    }
    // The users counted for days whose partition is gone are no longer needed.
    sqlx::query("DELETE FROM analytics_daily_users WHERE day < $1")
        .bind(before)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(old.into_iter().map(|(month, _)| month).collect())
}

/// The first day of the month after `month`.
pub fn next_month(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

/// A query of recorded events.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub user_id: Option<Uuid>,
    pub event_types: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Continue after this (occurred_at, event_id), newest first.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Recorded events matching `query`, newest first.
pub async fn query_events(pool: &PgPool, query: &EventQuery) -> Result<Vec<Recorded>, Error> {
    type Row = (
        Uuid,
        DateTime<Utc>,
        String,
        Option<String>,
        Option<Uuid>,
        String,
        String,
        Vec<u8>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event_id, occurred_at, event_type, catalog_type, user_id, source, payload_type,
                payload
         FROM analytics_events
         WHERE occurred_at >= $1 AND occurred_at < $2
           AND ($3::uuid IS NULL OR user_id = $3)
           AND (cardinality($4::text[]) = 0 OR event_type = ANY($4) OR catalog_type = ANY($4))
           AND ($5::timestamptz IS NULL OR (occurred_at, event_id) < ($5, $6::uuid))
         ORDER BY occurred_at DESC, event_id DESC LIMIT $7",
    )
    .bind(query.from)
    .bind(query.to)
    .bind(query.user_id)
    .bind(&query.event_types)
    .bind(query.before.map(|b| b.0))
    .bind(query.before.map(|b| b.1))
    .bind(query.limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Recorded {
            event_id: r.0,
            occurred_at: r.1,
            event_type: r.2,
            catalog_type: r.3,
            user_id: r.4,
            source: r.5,
            payload_type: r.6,
            payload: r.7,
        })
        .collect())
}

/// The daily metrics from `from` to `to` (inclusive), of one type when given.
pub async fn daily_metrics(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    event_type: Option<&str>,
) -> Result<Vec<(NaiveDate, String, i64, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT day, event_type, events, users FROM analytics_daily_metrics
         WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR event_type = $3)
         ORDER BY day, event_type",
    )
    .bind(from)
    .bind(to)
    .bind(event_type)
    .fetch_all(pool)
    .await?)
}
