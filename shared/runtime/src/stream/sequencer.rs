//! Gives committed events their positions, in the order they became visible.
//!
//! One pass, in one transaction:
//! 1. take the `event_sequencer` row (`FOR UPDATE SKIP LOCKED`: when another process is in a
//!    pass, this one has nothing to do);
//! 2. note the oldest transaction still running (`pg_snapshot_xmin`): every event of an older
//!    transaction is committed and visible now, or was rolled back;
//! 3. read the visible events without a position, of transactions from the last pass's
//!    `low_txid` on, in insert order;
//! 4. give them the next positions, an aggregate's events in version order;
//! 5. store the next position and the new `low_txid`, and commit.
//!
//! An event of an aggregate is only ever appended after the previous version committed (the
//! writer holds the aggregate's lock), so when a pass sees version `v` it also sees `v - 1`:
//! an aggregate's events get increasing positions. A transaction that commits late is simply
//! sequenced by a later pass, after every event already delivered.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{COALESCE, IDLE_INTERVAL};
use crate::error::Error;

/// Events given positions per pass at most; a larger backlog takes several passes.
const MAX_PER_PASS: i64 = 10_000;

/// The background loop: a pass when a writer of this process rang, or every
/// [`IDLE_INTERVAL`] for writers elsewhere; after each pass with news, `next_position` is told.
pub(super) async fn run(
    service: &'static str,
    pool: PgPool,
    appended: Arc<Notify>,
    next_position: watch::Sender<i64>,
    shutdown: CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = appended.notified() => {}
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

/// One pass; returns how many events got a position.
pub async fn pass(pool: &PgPool) -> Result<u64, Error> {
    Ok(pass_reporting(pool).await?.0)
}

/// One pass: (events given a position, the next position to give).
async fn pass_reporting(pool: &PgPool) -> Result<(u64, i64), Error> {
    let mut transaction = pool.begin().await?;
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT next_position, low_txid::text FROM event_sequencer FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *transaction)
    .await?;
    let Some((next_position, low_txid)) = head else {
        return Ok((0, 0));
    };
    let running_from: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(&mut *transaction)
            .await?;
    let unpositioned: Vec<(i64, Uuid, String, String, i64)> = sqlx::query_as(
        "SELECT e.seq, e.tenant_id, e.aggregate_type, e.aggregate_id, e.aggregate_version
         FROM events e
         WHERE e.txid >= $1::text::xid8
           AND NOT EXISTS (SELECT 1 FROM event_positions p WHERE p.seq = e.seq)
         ORDER BY e.seq LIMIT $2",
    )
    .bind(&low_txid)
    .bind(MAX_PER_PASS)
    .fetch_all(&mut *transaction)
    .await?;
    let count = unpositioned.len();
    // With a full page, older unpositioned events may remain: keep looking from the same
    // transaction next time.
    let low_txid = if i64::try_from(count).unwrap_or(i64::MAX) < MAX_PER_PASS {
        running_from
    } else {
        low_txid
    };
    let order = delivery_order(&unpositioned);
    let positions: Vec<i64> = (next_position..).take(count).collect();
    let seqs: Vec<i64> = order.iter().map(|&i| unpositioned[i].0).collect();
    let tenants: Vec<Uuid> = order.iter().map(|&i| unpositioned[i].1).collect();
    if count > 0 {
        sqlx::query(
            "INSERT INTO event_positions (position, seq, tenant_id)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::uuid[])",
        )
        .bind(&positions)
        .bind(&seqs)
        .bind(&tenants)
        .execute(&mut *transaction)
        .await?;
    }
    let next = next_position + i64::try_from(count).unwrap_or(i64::MAX);
    sqlx::query("UPDATE event_sequencer SET next_position = $1, low_txid = $2::text::xid8")
        .bind(next)
        .bind(&low_txid)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok((count as u64, next))
}

/// The order in which to give positions to `events` (sorted by insert order): insert order,
/// except that each aggregate's events take that aggregate's slots in version order, so a
/// transaction that inserted an aggregate's versions out of order cannot invert them.
fn delivery_order(events: &[(i64, Uuid, String, String, i64)]) -> Vec<usize> {
    let mut slots: HashMap<(Uuid, &str, &str), Vec<usize>> = HashMap::new();
    for (index, (_, tenant, kind, id, _)) in events.iter().enumerate() {
        slots
            .entry((*tenant, kind.as_str(), id.as_str()))
            .or_default()
            .push(index);
    }
    let mut order: Vec<usize> = (0..events.len()).collect();
    for indexes in slots.values() {
        let mut by_version = indexes.clone();
        by_version.sort_by_key(|&i| events[i].4);
        for (&slot, &event) in indexes.iter().zip(&by_version) {
            order[slot] = event;
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregates_versions_keep_their_order_in_their_own_slots() {
        let tenant = Uuid::nil();
        let event =
            |seq, id: &str, version| (seq, tenant, "account".to_owned(), id.to_owned(), version);
        let events = [
            event(1, "a", 2),
            event(2, "b", 7),
            event(3, "a", 1),
            event(4, "c", 1),
            event(5, "a", 3),
        ];
        let order = delivery_order(&events);
        let delivered: Vec<(&str, i64)> = order
            .iter()
            .map(|&i| (events[i].3.as_str(), events[i].4))
            .collect();
        assert_eq!(
            delivered,
            [("a", 1), ("b", 7), ("a", 2), ("c", 1), ("a", 3)]
        );
    }
}
