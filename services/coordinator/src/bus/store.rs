//! Every SQL statement of the bus.

use std::time::Duration;

use chrono::{DateTime, Utc};
use phoenix_runtime::error::{Error, Refusal};
use sqlx::PgPool;
use uuid::Uuid;

use super::domain::{self, Patterns, Waiting};

/// Advisory lock every ingesting transaction takes, so `bus_seq` order is commit order.
const INGEST_LOCK: i64 = 0x7068_6f65_6e69_7862; // "phoenixb"
/// Events looked at per fan-out statement, and statements per lease pass at most.
const FANOUT_BATCH: i64 = 5_000;
const FANOUT_ROUNDS: usize = 10;
/// Rows of the line read per query while looking for deliveries to hand out.
const LINE_PAGE: i64 = 1_000;
/// Rows of the line a lease pass looks at, at most (leased and backed-off ones included).
const LINE_SCAN: usize = 20_000;

/// An event to put on the bus.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub event_id: Uuid,
    pub source: String,
    pub source_position: i64,
    pub event_type: String,
    pub catalog_type: Option<String>,
    pub aggregate_key: String,
    pub priority: i16,
    pub occurred_at: DateTime<Utc>,
    /// The encoded `phoenix.events.v1.Event`.
    pub envelope: Vec<u8>,
}

/// Puts `events` on the bus in one transaction; answers how many were new (the others' ids were
/// already on it). With `relay`, the source's position moves to `relay.2` in the same
/// transaction, only while `relay.1` holds its lease (renewed for [`super::relay::SOURCE_LEASE`]): `None` when
/// it no longer does.
pub async fn ingest(
    pool: &PgPool,
    events: &[Ingest],
    relay: Option<(&str, Uuid, i64)>,
) -> Result<Option<u64>, Error> {
    let mut tx = pool.begin().await?;
    if let Some((source, owner, position)) = relay {
        let held = sqlx::query(
            "UPDATE bus_sources
             SET position = $3, relayed = relayed + $4, updated_at = now(),
                 lease_until = now() + $5 * interval '1 millisecond'
             WHERE source = $1 AND lease_owner = $2 AND lease_until > now()",
        )
        .bind(source)
        .bind(owner)
        .bind(position)
        .bind(i64::try_from(events.len()).unwrap_or(i64::MAX))
        .bind(millis(super::relay::SOURCE_LEASE))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held == 0 {
            return Ok(None);
        }
    }
    if events.is_empty() {
        tx.commit().await?;
        return Ok(Some(0));
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(INGEST_LOCK)
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO bus_events (event_id, source, source_position, event_type, catalog_type,
                                 aggregate_key, priority, occurred_at, envelope)
         SELECT e.id, e.source, e.position, e.type, e.catalog, e.key, e.priority, e.at, e.envelope
         FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                     $7::smallint[], $8::timestamptz[], $9::bytea[])
              WITH ORDINALITY AS e(id, source, position, type, catalog, key, priority, at,
                                   envelope, n)
         ORDER BY e.n
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(column(events, |e| e.event_id))
    .bind(column(events, |e| e.source.as_str()))
    .bind(column(events, |e| e.source_position))
    .bind(column(events, |e| e.event_type.as_str()))
    .bind(column(events, |e| e.catalog_type.as_deref()))
    .bind(column(events, |e| e.aggregate_key.as_str()))
    .bind(column(events, |e| e.priority))
    .bind(column(events, |e| e.occurred_at))
    .bind(column(events, |e| e.envelope.as_slice()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Some(inserted))
}

/// Takes or renews the lease of a source's relay for `owner`: its stored position when the
/// lease is (now) `owner`'s, `None` while another coordinator holds it.
pub async fn lease_source(
    pool: &PgPool,
    source: &str,
    owner: Uuid,
    lease: Duration,
) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar(
        "INSERT INTO bus_sources (source, lease_owner, lease_until)
         VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (source) DO UPDATE
             SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
             WHERE bus_sources.lease_owner = excluded.lease_owner
                OR bus_sources.lease_until IS NULL OR bus_sources.lease_until < now()
         RETURNING position",
    )
    .bind(source)
    .bind(owner)
    .bind(millis(lease))
    .fetch_optional(pool)
    .await?)
}

/// Gives up `owner`'s lease of a source (at shutdown), so another coordinator takes over at once.
pub async fn release_source(pool: &PgPool, source: &str, owner: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE bus_sources SET lease_until = NULL WHERE source = $1 AND lease_owner = $2")
        .bind(source)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(())
}

/// Creates the group with `patterns`, or checks that an existing one has the same set;
/// `max_deliveries` (when given) is set on it.
pub async fn join_group(
    pool: &PgPool,
    group: &str,
    patterns: &Patterns,
    max_deliveries: Option<i32>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO bus_groups (name, patterns, like_patterns, max_deliveries)
         VALUES ($1, $2, $3, coalesce($4, 5))
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(group)
    .bind(&patterns.given)
    .bind(&patterns.like)
    .bind(max_deliveries)
    .execute(pool)
    .await?;
    let stored: Vec<String> = sqlx::query_scalar(
        "UPDATE bus_groups SET max_deliveries = coalesce($2, max_deliveries)
         WHERE name = $1 RETURNING patterns",
    )
    .bind(group)
    .bind(max_deliveries)
    .fetch_one(pool)
    .await?;
    if stored != patterns.given {
        return Err(Refusal::precondition(
            "CONSUMER_GROUP_PATTERNS_DIFFER",
            format!(
                "consumer group {group} receives {}; subscribe with those patterns or use another group",
                stored.join(", ")
            ),
        )
        .at("patterns")
        .with("consumer_group", group)
        .with("patterns", stored.join(","))
        .into());
    }
    Ok(())
}

/// Whether the group exists.
pub async fn group_exists(pool: &PgPool, group: &str) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM bus_groups WHERE name = $1)")
            .bind(group)
            .fetch_one(pool)
            .await?,
    )
}

/// A delivery handed out by [`lease`].
#[derive(Debug, Clone)]
pub struct Leased {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub envelope: Vec<u8>,
    pub catalog_type: Option<String>,
    pub source: String,
    pub source_position: i64,
    pub event_type: String,
}

/// One lease pass of `group` for the stream `member`: fans the group's new events out from the
/// bus, turns expired leases into redeliveries (or dead letters past the group's maximum), and
/// hands out up to `limit` deliveries minus what `member` holds, each leased for `ack_timeout`.
/// Passes of one group take turns (an advisory lock), so two coordinators never hand out the
/// same delivery.
pub async fn lease(
    pool: &PgPool,
    group: &str,
    member: Uuid,
    limit: i64,
    ack_timeout: Duration,
) -> Result<Vec<Leased>, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('phoenix.bus.group.' || $1, 0))")
        .bind(group)
        .execute(&mut *tx)
        .await?;
    // A group far behind is fanned out a few batches per pass, so its line soon holds enough
    // of the backlog for priorities to count.
    for _ in 0..FANOUT_ROUNDS {
        if fan_out(&mut tx, group).await? < FANOUT_BATCH {
            break;
        }
    }
    // A late ack (or a member's release) may hold some of these rows: they are skipped, not
    // waited for, so the two never deadlock; what is left expires on the next pass.
    sqlx::query(
        "WITH expired AS (
             SELECT bus_seq FROM bus_deliveries
             WHERE group_name = $1 AND state = 'leased' AND lease_until < now()
             FOR UPDATE SKIP LOCKED)
         UPDATE bus_deliveries d
         SET state = CASE WHEN d.attempts >= g.max_deliveries THEN 'dead' ELSE 'ready' END,
             dead_at = CASE WHEN d.attempts >= g.max_deliveries THEN now() END,
             visible_at = now(),
             last_error = 'not acknowledged within the ack timeout',
             lease_until = NULL, delivery_id = NULL, member = NULL
         FROM bus_groups g, expired x
         WHERE g.name = $1 AND d.group_name = $1 AND d.bus_seq = x.bus_seq",
    )
    .bind(group)
    .execute(&mut *tx)
    .await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bus_deliveries WHERE member = $1 AND state = 'leased'",
    )
    .bind(member)
    .fetch_one(&mut *tx)
    .await?;
    let room = usize::try_from(limit - held).unwrap_or(0);
    if room == 0 {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let chosen = choose(&mut tx, group, room).await?;
    if chosen.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    type Row = (i64, Uuid, i32, Vec<u8>, Option<String>, String, i64, String);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH chosen AS (
             SELECT bus_seq FROM bus_deliveries
             WHERE group_name = $1 AND bus_seq = ANY($2) AND state = 'ready'
             FOR UPDATE SKIP LOCKED),
         leased AS (
             UPDATE bus_deliveries d
             SET state = 'leased', attempts = d.attempts + 1, delivery_id = gen_random_uuid(),
                 member = $3, lease_until = now() + $4 * interval '1 millisecond'
             FROM chosen c
             WHERE d.group_name = $1 AND d.bus_seq = c.bus_seq
             RETURNING d.bus_seq, d.delivery_id, d.attempts)
         SELECT l.bus_seq, l.delivery_id, l.attempts, e.envelope, e.catalog_type, e.source,
                e.source_position, e.event_type
         FROM leased l JOIN bus_events e ON e.bus_seq = l.bus_seq",
    )
    .bind(group)
    .bind(&chosen)
    .bind(member)
    .bind(millis(ack_timeout))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut by_seq: std::collections::HashMap<i64, Leased> = rows
        .into_iter()
        .map(|r| {
            (
                r.0,
                Leased {
                    delivery_id: r.1,
                    attempt: r.2,
                    envelope: r.3,
                    catalog_type: r.4,
                    source: r.5,
                    source_position: r.6,
                    event_type: r.7,
                },
            )
        })
        .collect();
    // In line order, as chosen.
    Ok(chosen.iter().filter_map(|seq| by_seq.remove(seq)).collect())
}

/// Makes the group's deliveries of the events that reached the bus since its position.
async fn fan_out(tx: &mut sqlx::PgConnection, group: &str) -> Result<i64, Error> {
    let scanned: Option<i64> = sqlx::query_scalar(
        "WITH g AS (SELECT position, like_patterns FROM bus_groups WHERE name = $1),
         batch AS (
             SELECT e.bus_seq, e.priority, e.aggregate_key, e.event_type, e.catalog_type
             FROM bus_events e, g WHERE e.bus_seq > g.position
             ORDER BY e.bus_seq LIMIT $2),
         made AS (
             INSERT INTO bus_deliveries (group_name, bus_seq, priority, aggregate_key)
             SELECT $1, b.bus_seq, b.priority, b.aggregate_key FROM batch b, g
             WHERE b.event_type LIKE ANY (g.like_patterns)
                OR b.catalog_type LIKE ANY (g.like_patterns)
             ON CONFLICT DO NOTHING)
         UPDATE bus_groups SET position = (SELECT max(bus_seq) FROM batch)
         WHERE name = $1 AND EXISTS (SELECT 1 FROM batch)
         RETURNING (SELECT count(*) FROM batch)",
    )
    .bind(group)
    .bind(FANOUT_BATCH)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(scanned.unwrap_or(0))
}

/// Reads the line in order until `room` deliveries can be handed out
/// ([`domain::take_from_line`]).
async fn choose(tx: &mut sqlx::PgConnection, group: &str, room: usize) -> Result<Vec<i64>, Error> {
    let mut line: Vec<Waiting> = Vec::new();
    let mut after: Option<(i16, i64)> = None;
    loop {
        let rows: Vec<(i64, i16, String, bool)> = sqlx::query_as(
            "SELECT bus_seq, priority, aggregate_key, state = 'ready' AND visible_at <= now()
             FROM bus_deliveries
             WHERE group_name = $1 AND state <> 'dead'
               AND ($2::smallint IS NULL OR (priority, -bus_seq) < ($2, -$3::bigint))
             ORDER BY priority DESC, bus_seq LIMIT $4",
        )
        .bind(group)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(LINE_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let full = rows.len() == usize::try_from(LINE_PAGE).unwrap_or(usize::MAX);
        if let Some(last) = rows.last() {
            after = Some((last.1, last.0));
        }
        line.extend(rows.into_iter().map(|r| Waiting {
            bus_seq: r.0,
            priority: r.1,
            aggregate_key: r.2,
            available: r.3,
        }));
        let taken = domain::take_from_line(&line, room);
        if taken.len() >= room || !full || line.len() >= LINE_SCAN {
            return Ok(taken);
        }
    }
}

/// Acknowledges `ids` of `group`; answers how many were outstanding.
pub async fn ack(pool: &PgPool, group: &str, ids: &[Uuid]) -> Result<u64, Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "DELETE FROM bus_deliveries
         WHERE group_name = $1 AND delivery_id = ANY($2) AND state = 'leased'",
    )
    .bind(group)
    .bind(ids)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Records failed deliveries: each waits out its backoff before it is delivered again, or
/// becomes a dead letter when it has had the group's maximum of deliveries.
pub async fn fail(pool: &PgPool, group: &str, failures: &[(Uuid, String)]) -> Result<u64, Error> {
    if failures.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let attempts: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT delivery_id, attempts FROM bus_deliveries
         WHERE group_name = $1 AND delivery_id = ANY($2) AND state = 'leased' FOR UPDATE",
    )
    .bind(group)
    .bind(failures.iter().map(|f| f.0).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    let delay = |id: &Uuid| {
        attempts
            .iter()
            .find(|a| a.0 == *id)
            .map_or(0, |a| millis(domain::redelivery_delay(a.1)))
    };
    let updated = sqlx::query(
        "UPDATE bus_deliveries d
         SET state = CASE WHEN d.attempts >= g.max_deliveries THEN 'dead' ELSE 'ready' END,
             dead_at = CASE WHEN d.attempts >= g.max_deliveries THEN now() END,
             visible_at = now() + f.delay * interval '1 millisecond',
             last_error = f.error, lease_until = NULL, delivery_id = NULL, member = NULL
         FROM bus_groups g, UNNEST($2::uuid[], $3::text[], $4::bigint[]) AS f(id, error, delay)
         WHERE g.name = $1 AND d.group_name = $1 AND d.delivery_id = f.id AND d.state = 'leased'",
    )
    .bind(group)
    .bind(failures.iter().map(|f| f.0).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.1.as_str()).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| delay(&f.0)).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(updated)
}

/// Hands `member`'s leases back to the line (its stream ended), to be delivered again at once.
pub async fn release_member(pool: &PgPool, member: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE bus_deliveries
         SET state = 'ready', visible_at = now(), lease_until = NULL, delivery_id = NULL,
             member = NULL, last_error = 'the subscriber went away before acknowledging'
         WHERE member = $1 AND state = 'leased'",
    )
    .bind(member)
    .execute(pool)
    .await?;
    Ok(())
}

/// A dead letter as stored.
#[derive(Debug, Clone)]
pub struct Dead {
    pub bus_seq: i64,
    pub envelope: Vec<u8>,
    pub catalog_type: Option<String>,
    pub attempts: i32,
    pub last_error: String,
    pub dead_at: DateTime<Utc>,
    pub source: String,
}

/// A dead letter as read: (bus_seq, envelope, catalog_type, attempts, last_error, dead_at,
/// source), from either backend's table.
pub(crate) type DeadRow = (
    i64,
    Vec<u8>,
    Option<String>,
    i32,
    String,
    DateTime<Utc>,
    String,
);

impl From<DeadRow> for Dead {
    fn from(row: DeadRow) -> Self {
        let (bus_seq, envelope, catalog_type, attempts, last_error, dead_at, source) = row;
        Self {
            bus_seq,
            envelope,
            catalog_type,
            attempts,
            last_error,
            dead_at,
            source,
        }
    }
}

/// Up to `limit` dead letters of `group` after `after` (dead_at, bus_seq), oldest first.
pub async fn dead_letters(
    pool: &PgPool,
    group: &str,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Dead>, Error> {
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT d.bus_seq, e.envelope, e.catalog_type, d.attempts, d.last_error, d.dead_at,
                e.source
         FROM bus_deliveries d JOIN bus_events e ON e.bus_seq = d.bus_seq
         WHERE d.group_name = $1 AND d.state = 'dead'
           AND ($2::timestamptz IS NULL OR (d.dead_at, d.bus_seq) > ($2, $3::bigint))
         ORDER BY d.dead_at, d.bus_seq LIMIT $4",
    )
    .bind(group)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Dead::from).collect())
}

/// Puts dead letters of `group` back in its line with a fresh count: those of `event_ids`, or
/// every one when `None`. Answers how many.
pub async fn replay(pool: &PgPool, group: &str, event_ids: Option<&[Uuid]>) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE bus_deliveries d
         SET state = 'ready', attempts = 0, visible_at = now(), dead_at = NULL
         FROM bus_events e
         WHERE d.group_name = $1 AND d.state = 'dead' AND e.bus_seq = d.bus_seq
           AND ($2::uuid[] IS NULL OR e.event_id = ANY($2))",
    )
    .bind(group)
    .bind(event_ids)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Per group: events on the bus it has not had delivered and acknowledged yet (those past its
/// position, whether they match or not, plus its outstanding deliveries), and its dead letters.
pub async fn group_lag(pool: &PgPool) -> Result<Vec<(String, i64, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT g.name,
                greatest(coalesce((SELECT max(bus_seq) FROM bus_events), 0) - g.position, 0)
                  + (SELECT count(*) FROM bus_deliveries d
                     WHERE d.group_name = g.name AND d.state <> 'dead'),
                (SELECT count(*) FROM bus_deliveries d
                 WHERE d.group_name = g.name AND d.state = 'dead')
         FROM bus_groups g ORDER BY g.name",
    )
    .fetch_all(pool)
    .await?)
}

/// Deletes up to `limit` events that reached the bus more than `retention` ago, that every
/// group's position has passed and that no delivery (outstanding or dead) still needs.
/// Answers how many. Every coordinator purges: rows another one is deleting are skipped, so
/// two purges share the work instead of waiting on (or deadlocking over) the same rows.
pub async fn purge(pool: &PgPool, retention: Duration, limit: i64) -> Result<u64, Error> {
    Ok(sqlx::query(
        "DELETE FROM bus_events WHERE bus_seq IN (
             SELECT e.bus_seq FROM bus_events e
             WHERE e.received_at < now() - $1 * interval '1 millisecond'
               AND e.bus_seq <= coalesce((SELECT min(position) FROM bus_groups), e.bus_seq)
               AND NOT EXISTS (SELECT 1 FROM bus_deliveries d WHERE d.bus_seq = e.bus_seq)
             ORDER BY e.bus_seq LIMIT $2
             FOR UPDATE OF e SKIP LOCKED)",
    )
    .bind(millis(retention))
    .bind(limit)
    .execute(pool)
    .await?
    .rows_affected())
}

/// One column of `rows`, as an array parameter of an `UNNEST` insert.
pub(crate) fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
