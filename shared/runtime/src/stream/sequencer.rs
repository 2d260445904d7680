//! Gives committed events their positions, in the order they became visible.
//!
//! One pass is one transaction of two statements and one commit:
//! 1. take the `event_sequencer` row (`FOR UPDATE SKIP LOCKED`: when another process is in a
//!    pass, this one has nothing to do);
//! 2. read the visible events without a position of the transactions the last pass left open:
//!    those that had not started when it looked (`from_txid` on) and those still running then
//!    (`open_txids`), in insert order;
//! 3. give them the next positions, each aggregate's events taking that aggregate's slots in
//!    version order;
//! 4. store the next position and what this pass leaves open, from the statement's own
//!    snapshot: its xmax and its list of running transactions. Every other transaction had
//!    ended when the snapshot was taken, so its events were visible to this pass (or were
//!    rolled back); a transaction running now can only add events with its own id, or later.
//!
//! An event of an aggregate is only ever appended after the previous version committed (the
//! writer holds the aggregate's lock), so when a pass sees version `v` it also sees `v - 1`:
//! an aggregate's events get increasing positions. A transaction that commits late is simply
//! sequenced by a later pass, after every event already delivered.
//!
//! Passes of one process run one after the other; two processes (replicas) take turns on the
//! row lock, and a pass's second statement sees whatever the previous pass committed. Should an
//! event be positioned twice anyway, the unique key on `event_positions.seq` refuses the whole
//! pass, which is simply run again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::{COALESCE, IDLE_INTERVAL};
use crate::error::Error;

/// Events given positions per pass at most; a larger backlog takes several passes.
const MAX_PER_PASS: i64 = 10_000;

/// The pass, after the sequencer row is locked: `$1` is the next position, `$2`
/// [`MAX_PER_PASS`]; `{from}` and `{open}` are the transactions the last pass left open, written
/// into the text (see [`pass_reporting`]). Answers (events positioned, next position).
///
/// Its cost follows the events of those transactions, never the size of the tables: the
/// candidates come through the `txid` index alone (materialized, so no `ORDER BY seq LIMIT`
/// can turn them into a walk of `events` in `seq` order), and each is looked up in
/// `event_positions` by its own index probe. A `NOT EXISTS` was planned as a hash anti-join
/// that read every position on every pass: on 84,000 positions, 13 ms of a 55 ms pass went to
/// hashing them, a share that grows with the table.
const PASS: &str = "
WITH candidates AS MATERIALIZED (
    SELECT e.seq, e.tenant_id, e.aggregate_type, e.aggregate_id, e.aggregate_version
    FROM events e
    WHERE e.txid >= '{from}'::xid8 OR e.txid = ANY ('{open}'::xid8[])
), unpositioned AS (
    SELECT c.seq, c.tenant_id, c.aggregate_type, c.aggregate_id, c.aggregate_version
    FROM candidates c
    LEFT JOIN LATERAL (SELECT true AS positioned FROM event_positions p
                       WHERE p.seq = c.seq LIMIT 1) p ON true
    WHERE p.positioned IS NULL
    ORDER BY c.seq
    LIMIT $2
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
    SELECT $1 + slot.slot - 1, event.seq, event.tenant_id
    FROM ranked slot
    JOIN ranked event
      ON event.tenant_id = slot.tenant_id AND event.aggregate_type = slot.aggregate_type
     AND event.aggregate_id = slot.aggregate_id AND event.by_version = slot.by_insert
    RETURNING 1
), counted AS (
    SELECT count(*) AS events FROM unpositioned
)
UPDATE event_sequencer
SET next_position = $1 + counted.events,
    -- A full page may have left events behind: look where this pass looked again.
    from_txid = CASE WHEN counted.events < $2 THEN pg_snapshot_xmax(pg_current_snapshot())
                     ELSE event_sequencer.from_txid END,
    open_txids = CASE WHEN counted.events < $2
                      THEN ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot()))
                      ELSE event_sequencer.open_txids END
FROM counted
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
            match pass_reporting(&pool, Waiting::SkipIfBusy).await {
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
                Err(Failed::Raced) => continue,
                Err(Failed::Broken(error)) => {
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

/// Why a pass did not happen.
#[derive(Debug)]
enum Failed {
    /// Another process positioned one of the same events first: run the pass again.
    Raced,
    /// The database, or the sequencer's own row, said no.
    Broken(Error),
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        let raced = error.as_database_error().is_some_and(|e| {
            e.code().as_deref() == Some("23505")
                && e.constraint() == Some("event_positions_seq_key")
        });
        if raced {
            Self::Raced
        } else {
            Self::Broken(error.into())
        }
    }
}

/// One pass; returns how many events got a position. A pass already running elsewhere is
/// not waited for: this one then positions nothing.
pub async fn pass(pool: &PgPool) -> Result<u64, Error> {
    pass_with(pool, Waiting::SkipIfBusy).await
}

/// One pass that waits for a pass running elsewhere (the service's own job) to commit, then
/// positions what is still unpositioned: when it returns, every event committed before the
/// call has a position. What a reader that must see all of them (an export) calls.
pub async fn pass_waiting(pool: &PgPool) -> Result<u64, Error> {
    pass_with(pool, Waiting::Wait).await
}

/// What a pass does when another one holds the sequencer's row.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    SkipIfBusy,
    Wait,
}

async fn pass_with(pool: &PgPool, waiting: Waiting) -> Result<u64, Error> {
    loop {
        match pass_reporting(pool, waiting).await {
            Ok((given, _)) => return Ok(given),
            Err(Failed::Raced) => continue,
            Err(Failed::Broken(error)) => return Err(error),
        }
    }
}

/// One pass: (events given a position, the next position to give). The row lock comes first,
/// in its own statement, so the pass's statement sees everything the previous pass committed.
async fn pass_reporting(pool: &PgPool, waiting: Waiting) -> Result<(u64, i64), Failed> {
    let mut transaction = pool.begin().await?;
    let head: Option<(i64, String, Vec<String>)> = sqlx::query_as(match waiting {
        Waiting::SkipIfBusy => {
            "SELECT next_position, from_txid::text, open_txids::text[]
             FROM event_sequencer FOR UPDATE SKIP LOCKED"
        }
        Waiting::Wait => {
            "SELECT next_position, from_txid::text, open_txids::text[]
             FROM event_sequencer FOR UPDATE"
        }
    })
    .fetch_optional(&mut *transaction)
    .await?;
    let Some((next_position, from_txid, open_txids)) = head else {
        return Ok((0, 0));
    };
    // Transaction ids are unsigned integers, checked here, and written into the statement
    // rather than bound: the planner then sees how few recent events they select and walks the
    // `txid` index; with parameters (and the pool's generic plans) it assumes a third of the
    // table and scans all of it on every pass.
    let is_txid = |t: &String| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !is_txid(&from_txid) || !open_txids.iter().all(is_txid) {
        return Err(Failed::Broken(Error::invariant(
            "SEQUENCER_TXID",
            format!(
                "event_sequencer holds a transaction id that is not one: {from_txid} {open_txids:?}"
            ),
        )));
    }
    let sql = PASS
        .replace("{from}", &from_txid)
        .replace("{open}", &format!("{{{}}}", open_txids.join(",")));
    let (events, next): (i64, i64) = sqlx::query_as(&sql)
        .persistent(false)
        .bind(next_position)
        .bind(MAX_PER_PASS)
        .fetch_one(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok((u64::try_from(events).unwrap_or(0), next))
}
