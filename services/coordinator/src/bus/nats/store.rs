//! Every SQL statement of the NATS backend (tables of migration 0007_bus_nats).

use std::time::Duration;

use chrono::{DateTime, Utc};
use phoenix_runtime::error::Error;
use sqlx::PgPool;
use uuid::Uuid;

use super::super::store::{Dead, DeadRow, column};

/// A delivery as handed out: recorded so any coordinator can acknowledge it.
#[derive(Debug, Clone)]
pub struct Handed {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub stream_seq: i64,
    pub priority: i16,
    pub partition: i16,
    pub attempt: i32,
    pub reply: String,
}

/// A delivery taken back from the table by an ack, a failure or a closed subscription.
#[derive(Debug, Clone)]
pub struct Taken {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub stream_seq: i64,
    pub attempt: i32,
    pub reply: String,
}

/// A dead letter to record.
#[derive(Debug, Clone)]
pub struct NewDead {
    pub event_id: Uuid,
    pub priority: i16,
    pub partition: i16,
    pub envelope: Vec<u8>,
    pub catalog_type: Option<String>,
    pub event_type: String,
    pub source: String,
    pub source_position: i64,
    pub attempts: i32,
    pub last_error: String,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The unexpired deliveries of `group`: how many `member` holds, and the (priority,
/// partition) of each, whose consumers have their one message out.
pub async fn outstanding(
    pool: &PgPool,
    group: &str,
    member: Uuid,
) -> Result<(i64, Vec<(i16, i16)>), Error> {
    let rows: Vec<(i16, i16, bool)> = sqlx::query_as(
        "SELECT priority, partition, member = $2 FROM bus_nats_deliveries
         WHERE group_name = $1 AND lease_until > now()",
    )
    .bind(group)
    .bind(member)
    .fetch_all(pool)
    .await?;
    let held = rows.iter().filter(|r| r.2).count();
    Ok((
        i64::try_from(held).unwrap_or(i64::MAX),
        rows.into_iter().map(|r| (r.0, r.1)).collect(),
    ))
}

/// Records `handed` for `member` of `group` (a redelivery replaces the event's previous
/// delivery, whose id is then unknown), except the events the group has already processed:
/// those are answered, to be acknowledged to JetStream without a delivery.
pub async fn hand_out(
    pool: &PgPool,
    group: &str,
    member: Uuid,
    ack_timeout: Duration,
    handed: &[Handed],
) -> Result<Vec<Uuid>, Error> {
    if handed.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "WITH given AS (
             SELECT * FROM UNNEST($3::uuid[], $4::uuid[], $5::bigint[], $6::int[], $7::text[],
                                  $9::smallint[], $10::smallint[])
                 AS g(delivery_id, event_id, stream_seq, attempt, reply, priority, partition)),
         seen AS (
             SELECT g.event_id FROM given g
             JOIN bus_nats_processed p ON p.group_name = $1 AND p.event_id = g.event_id),
         recorded AS (
             INSERT INTO bus_nats_deliveries (delivery_id, group_name, event_id, stream_seq,
                                              priority, partition, attempt, reply, member,
                                              lease_until)
             SELECT g.delivery_id, $1, g.event_id, g.stream_seq, g.priority, g.partition,
                    g.attempt, g.reply, $2, now() + $8 * interval '1 millisecond'
             FROM given g WHERE g.event_id NOT IN (SELECT event_id FROM seen)
             ON CONFLICT (group_name, event_id) DO UPDATE
                 SET delivery_id = excluded.delivery_id, stream_seq = excluded.stream_seq,
                     priority = excluded.priority, partition = excluded.partition,
                     attempt = excluded.attempt, reply = excluded.reply,
                     member = excluded.member, lease_until = excluded.lease_until)
         SELECT event_id FROM seen",
    )
    .bind(group)
    .bind(member)
    .bind(column(handed, |h| h.delivery_id))
    .bind(column(handed, |h| h.event_id))
    .bind(column(handed, |h| h.stream_seq))
    .bind(column(handed, |h| h.attempt))
    .bind(column(handed, |h| h.reply.as_str()))
    .bind(millis(ack_timeout))
    .bind(column(handed, |h| h.priority))
    .bind(column(handed, |h| h.partition))
    .fetch_all(pool)
    .await?)
}

type TakenRow = (Uuid, Uuid, i64, i32, String);

fn taken(rows: Vec<TakenRow>) -> Vec<Taken> {
    rows.into_iter()
        .map(|r| Taken {
            delivery_id: r.0,
            event_id: r.1,
            stream_seq: r.2,
            attempt: r.3,
            reply: r.4,
        })
        .collect()
}

/// Acknowledges `ids` of `group`: their deliveries are removed and their events recorded as
/// processed, in one statement; answers what was outstanding.
pub async fn ack(pool: &PgPool, group: &str, ids: &[Uuid]) -> Result<Vec<Taken>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TakenRow> = sqlx::query_as(
        "WITH done AS (
             DELETE FROM bus_nats_deliveries
             WHERE group_name = $1 AND delivery_id = ANY($2)
             RETURNING delivery_id, event_id, stream_seq, attempt, reply),
         processed AS (
             INSERT INTO bus_nats_processed (group_name, event_id)
             SELECT $1, event_id FROM done ON CONFLICT DO NOTHING)
         SELECT delivery_id, event_id, stream_seq, attempt, reply FROM done",
    )
    .bind(group)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(taken(rows))
}

/// Takes the deliveries `ids` of `group` back (reported failed).
pub async fn take(pool: &PgPool, group: &str, ids: &[Uuid]) -> Result<Vec<Taken>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TakenRow> = sqlx::query_as(
        "DELETE FROM bus_nats_deliveries WHERE group_name = $1 AND delivery_id = ANY($2)
         RETURNING delivery_id, event_id, stream_seq, attempt, reply",
    )
    .bind(group)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(taken(rows))
}

/// Takes back what `member` holds (its stream ended).
pub async fn release_member(pool: &PgPool, member: Uuid) -> Result<Vec<Taken>, Error> {
    let rows: Vec<TakenRow> = sqlx::query_as(
        "DELETE FROM bus_nats_deliveries WHERE member = $1
         RETURNING delivery_id, event_id, stream_seq, attempt, reply",
    )
    .bind(member)
    .fetch_all(pool)
    .await?;
    Ok(taken(rows))
}

/// The group's maximum of deliveries (5 when the group is unknown).
pub async fn max_deliveries(pool: &PgPool, group: &str) -> Result<i32, Error> {
    Ok(
        sqlx::query_scalar("SELECT max_deliveries FROM bus_groups WHERE name = $1")
            .bind(group)
            .fetch_optional(pool)
            .await?
            .unwrap_or(5),
    )
}

/// Records a dead letter of `group` (replacing an older one of the same event) and drops
/// the event's outstanding delivery.
pub async fn bury(pool: &PgPool, group: &str, dead: &NewDead) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM bus_nats_deliveries WHERE group_name = $1 AND event_id = $2")
        .bind(group)
        .bind(dead.event_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO bus_nats_dead (group_name, event_id, priority, partition, envelope,
                                    catalog_type, event_type, source, source_position,
                                    attempts, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (group_name, event_id) DO UPDATE
             SET attempts = excluded.attempts, last_error = excluded.last_error,
                 dead_at = now()",
    )
    .bind(group)
    .bind(dead.event_id)
    .bind(dead.priority)
    .bind(dead.partition)
    .bind(&dead.envelope)
    .bind(dead.catalog_type.as_deref())
    .bind(&dead.event_type)
    .bind(&dead.source)
    .bind(dead.source_position)
    .bind(dead.attempts)
    .bind(&dead.last_error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Up to `limit` dead letters of `group` after `after` (dead_at, seq), oldest first.
pub async fn dead_letters(
    pool: &PgPool,
    group: &str,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Dead>, Error> {
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT seq, envelope, catalog_type, attempts, last_error, dead_at, source
         FROM bus_nats_dead
         WHERE group_name = $1
           AND ($2::timestamptz IS NULL OR (dead_at, seq) > ($2, $3::bigint))
         ORDER BY dead_at, seq LIMIT $4",
    )
    .bind(group)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Dead::from).collect())
}

/// Takes dead letters of `group` out for replay: those of `event_ids`, or every one.
pub async fn unbury(
    tx: &mut sqlx::PgConnection,
    group: &str,
    event_ids: Option<&[Uuid]>,
) -> Result<Vec<NewDead>, Error> {
    type Row = (
        Uuid,
        i16,
        i16,
        Vec<u8>,
        Option<String>,
        String,
        String,
        i64,
        i32,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "DELETE FROM bus_nats_dead
         WHERE group_name = $1 AND ($2::uuid[] IS NULL OR event_id = ANY($2))
         RETURNING event_id, priority, partition, envelope, catalog_type, event_type, source,
                   source_position, attempts, last_error",
    )
    .bind(group)
    .bind(event_ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| NewDead {
            event_id: r.0,
            priority: r.1,
            partition: r.2,
            envelope: r.3,
            catalog_type: r.4,
            event_type: r.5,
            source: r.6,
            source_position: r.7,
            attempts: r.8,
            last_error: r.9,
        })
        .collect())
}

/// Moves a relay's source to `position` after `relayed` more events went to the stream, while
/// `owner` holds its lease (renewed): false when it no longer does.
pub async fn advance_source(
    pool: &PgPool,
    source: &str,
    owner: Uuid,
    position: i64,
    relayed: usize,
) -> Result<bool, Error> {
    Ok(sqlx::query(
        "UPDATE bus_sources
         SET position = $3, relayed = relayed + $4, updated_at = now(),
             lease_until = now() + $5 * interval '1 millisecond'
         WHERE source = $1 AND lease_owner = $2 AND lease_until > now()",
    )
    .bind(source)
    .bind(owner)
    .bind(position)
    .bind(i64::try_from(relayed).unwrap_or(i64::MAX))
    .bind(millis(super::super::relay::SOURCE_LEASE))
    .execute(pool)
    .await?
    .rows_affected()
        > 0)
}

/// Forgets processed ids older than `retention` (the stream no longer holds such events) and
/// deliveries whose lease ran out that long ago.
pub async fn purge(pool: &PgPool, retention: Duration) -> Result<u64, Error> {
    let processed = sqlx::query(
        "DELETE FROM bus_nats_processed
         WHERE processed_at < now() - $1 * interval '1 millisecond'",
    )
    .bind(millis(retention.saturating_mul(2)))
    .execute(pool)
    .await?
    .rows_affected();
    let stale = sqlx::query(
        "DELETE FROM bus_nats_deliveries
         WHERE lease_until < now() - $1 * interval '1 millisecond'",
    )
    .bind(millis(retention))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(processed + stale)
}
