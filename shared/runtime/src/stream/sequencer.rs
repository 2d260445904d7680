//! Gives committed events their positions, in the order they became visible.
//!
//! One pass is one statement (one round trip, one commit):
//! 1. take the `event_sequencer` row (`FOR UPDATE SKIP LOCKED`: when another process is in a
//!    pass, this one has nothing to do);
//! 2. read the visible events without a position, of transactions from the last pass's
//!    `low_txid` on, in insert order;
//! 3. give them the next positions, each aggregate's events taking that aggregate's slots in
//!    version order;
//! 4. store the next position and, as the new `low_txid`, the oldest transaction still running
//!    when the statement began (`pg_snapshot_xmin`): every event of an older transaction was
//!    visible to this pass, or was rolled back.
//!
//! An event of an aggregate is only ever appended after the previous version committed (the
//! writer holds the aggregate's lock), so when a pass sees version `v` it also sees `v - 1`:
//! an aggregate's events get increasing positions. A transaction that commits late is simply
//! sequenced by a later pass, after every event already delivered.
//!
//! Passes of one process run one after the other. Two processes (replicas) take turns on the
//! row lock; should one begin its statement just before the other's pass commits, it would try
//! to position an event a second time, and the unique key on `event_positions.seq` refuses the
//! whole pass, which is simply run again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::{COALESCE, IDLE_INTERVAL};
use crate::error::Error;

/// Events given positions per pass at most; a larger backlog takes several passes.
const MAX_PER_PASS: i64 = 10_000;

/// One pass: `$1` is [`MAX_PER_PASS`]; answers (events positioned, next position), or no row
/// when another process holds the sequencer.
const PASS: &str = "
WITH head AS (
    SELECT next_position, low_txid FROM event_sequencer FOR UPDATE SKIP LOCKED
), unpositioned AS (
    SELECT e.seq, e.tenant_id, e.aggregate_type, e.aggregate_id, e.aggregate_version
    FROM head, events e
    WHERE e.txid >= head.low_txid
      AND NOT EXISTS (SELECT 1 FROM event_positions p WHERE p.seq = e.seq)
    ORDER BY e.seq
    LIMIT $1
), ranked AS (
    SELECT seq, tenant_id, aggregate_type, aggregate_id,
           row_number() OVER (ORDER BY seq) AS slot,
           row_number() OVER (PARTITION BY tenant_id, aggregate_type, aggregate_id
                              ORDER BY seq) AS by_insert,
           row_number() OVER (PARTITION BY tenant_id, aggregate_type, aggregate_id
                              ORDER BY aggregate_version) AS by_version
    FROM unpositioned
), positioned AS (
    INSERT INTO event_positions (position, seq, tenant_id)
    SELECT head.next_position + slot.slot - 1, event.seq, event.tenant_id
    FROM head, ranked slot
    JOIN ranked event
      ON event.tenant_id = slot.tenant_id AND event.aggregate_type = slot.aggregate_type
     AND event.aggregate_id = slot.aggregate_id AND event.by_version = slot.by_insert
    RETURNING 1
), counted AS (
    SELECT count(*) AS events FROM unpositioned
)
UPDATE event_sequencer
SET next_position = event_sequencer.next_position + counted.events,
    low_txid = CASE WHEN counted.events < $1 THEN pg_snapshot_xmin(pg_current_snapshot())
                    ELSE event_sequencer.low_txid END
FROM head, counted
RETURNING counted.events, event_sequencer.next_position";

/// The background loop. While this process has subscribers, a pass runs as soon as a writer of
/// this process rings (at most one every [`COALESCE`]); otherwise, and for writers elsewhere,
/// every [`IDLE_INTERVAL`]. After each pass with news, `next_position` is told.
pub(super) async fn run(
    service: &'static str,
    pool: PgPool,
    appended: Arc<Notify>,
    followers: Arc<AtomicUsize>,
    next_position: watch::Sender<i64>,
    shutdown: CancellationToken,
) {
    let mut failing = false;
    loop {
        let followed = followers.load(Ordering::Relaxed) > 0;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = appended.notified(), if followed => {}
            () = tokio::time::sleep(IDLE_INTERVAL) => {}
        }
        loop {
            match pass_reporting(&pool).await {
                Ok((given, next)) => {
                    if failing {
                        tracing::info!(service, "event sequencer recovered");
                        failing = false;
                    }
                    if given > 0 {
                        crate::metrics::global().count_sequenced(service, given);
                        next_position.send_replace(next);
                    }
                    // A full pass means a backlog: go on at once.
                    if i64::try_from(given).unwrap_or(i64::MAX) < MAX_PER_PASS {
                        break;
                    }
                }
                // Another process's pass committed while this one began: run it again.
                Err(error) if raced(&error) => continue,
                Err(error) => {
                    if !failing {
                        tracing::warn!(service, %error, "event sequencer pass failed; retrying");
                        failing = true;
                    }
                    break;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(COALESCE) => {}
        }
    }
}

/// Whether a pass failed because another process positioned the same event first.
fn raced(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.code().as_deref() == Some("23505") && e.constraint() == Some("event_positions_seq_key")
    })
}

/// One pass; returns how many events got a position.
pub async fn pass(pool: &PgPool) -> Result<u64, Error> {
    loop {
        match pass_reporting(pool).await {
            Err(error) if raced(&error) => continue,
            result => return Ok(result?.0),
        }
    }
}

/// One pass: (events given a position, the next position to give).
async fn pass_reporting(pool: &PgPool) -> Result<(u64, i64), sqlx::Error> {
    let done: Option<(i64, i64)> = sqlx::query_as(PASS)
        .bind(MAX_PER_PASS)
        .fetch_optional(pool)
        .await?;
    Ok(done.map_or((0, 0), |(events, next)| {
        (u64::try_from(events).unwrap_or(0), next)
    }))
}
