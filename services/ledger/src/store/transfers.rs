//! Transfers, and the posting transaction's reads (referenced transfers, locked accounts, the
//! clock and the policies) and its one write.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::KeyRows;
use phoenix_runtime::stream::{self, EventRows, NewEvent, Origin};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::POLICY_GATE;
use super::accounts::{ACCOUNT_STREAM, labels};
use super::events::types;
use crate::domain::ledger::{
    AccountChange, AccountState, BalanceLimit, Balances, Entry, PendingState, Posting, Transfer,
    TransferKind,
};
use crate::domain::policy::{Policy, PolicyKind};
use crate::error;

type TransferRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    Uuid,
    Uuid,
    String,
    i64,
    Option<Uuid>,
    Option<Uuid>,
    Option<DateTime<Utc>>,
    String,
    serde_json::Value,
    Option<String>,
    DateTime<Utc>,
    Option<String>,
);

/// The columns of a transfer, and the kind of whatever resolved it (for a pending one).
const TRANSFER_COLUMNS: &str = "t.tenant_id, t.id, t.batch_id, t.kind, t.debit_account_id,
    t.credit_account_id, t.asset_code, t.amount, t.pending_id, t.reversal_of, t.expires_at,
    t.code, t.metadata, t.idempotency_key, t.created_at,
    (SELECT r.kind FROM transfers r WHERE r.tenant_id = t.tenant_id AND r.pending_id = t.id)";

fn transfer(row: TransferRow) -> Result<Transfer, Error> {
    let kind = TransferKind::parse(&row.3).ok_or_else(|| error::unknown_stored("kind", &row.3))?;
    let pending_state = match (kind, row.15.as_deref()) {
        (TransferKind::Pending, None) => Some(PendingState::Open),
        (TransferKind::Pending, Some(resolution)) => {
            TransferKind::parse(resolution).and_then(PendingState::after)
        }
        _ => None,
    };
    Ok(Transfer {
        tenant_id: row.0,
        id: row.1,
        batch_id: row.2,
        kind,
        debit_account_id: row.4,
        credit_account_id: row.5,
        asset_code: row.6,
        amount: row.7,
        pending_id: row.8,
        reversal_of: row.9,
        expires_at: row.10,
        code: row.11,
        metadata: labels(row.12)?,
        idempotency_key: row.13,
        created_at: row.14,
        pending_state,
    })
}

pub async fn get_transfer(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Transfer>, Error> {
    let row: Option<TransferRow> = sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.tenant_id = $1 AND t.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(transfer).transpose()
}

/// The transfers among `ids` that exist in the tenant, in no particular order.
pub async fn get_transfers(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Transfer>, Error> {
    let rows: Vec<TransferRow> = sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.tenant_id = $1 AND t.id = ANY($2)"
    ))
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(transfer).collect()
}

/// The statement that begins a posting transaction holding the tenant's policy gate shared,
/// in one round trip, so every statement after it takes its snapshot with the gate held and
/// sees the policies in force. The gate comes first: a `BEGIN` after other statements of one
/// simple query takes them into its transaction, and should the gate fail (waited for past the
/// statement timeout) the query ends before its `BEGIN`, and the connection outside any
/// transaction. A simple query takes no parameters: the tenant id is written in, as the 36
/// characters a `Uuid` prints.
pub fn begin_posting(tenant_id: Uuid) -> String {
    format!(
        "SELECT pg_advisory_xact_lock_shared({POLICY_GATE}, hashtext('{}')); BEGIN",
        tenant_id.hyphenated()
    )
}

/// id, asset, limit, the four sums, entry version, event version; `None` on the one row a
/// posting of no known account gets.
type LockedRow = (
    DateTime<Utc>,
    serde_json::Value,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// What a posting transaction reads in one statement once [`begin_posting`] holds the gate:
/// the accounts it names, locked, the database clock read after the locks (which it may have
/// waited for) and the tenant's active policies.
#[derive(Debug)]
pub struct Locked {
    pub accounts: HashMap<Uuid, AccountState>,
    pub now: DateTime<Utc>,
    pub policies: Vec<Policy>,
}

/// Locks the accounts among `ids` (sorted, so concurrent postings lock in the same order and
/// never deadlock) and reads the clock and the policies, in one statement. The policies are
/// as of the statement's start, which is after the gate: no policy change can commit between.
/// The clock is read from the count of the locked rows, so only once every lock is held.
pub async fn lock_accounts(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Locked, Error> {
    let rows: Vec<LockedRow> = sqlx::query_as(
        "WITH locked AS MATERIALIZED (
             SELECT a.id, a.asset_code, a.balance_limit, a.debits_posted, a.credits_posted,
                    a.debits_pending, a.credits_pending, a.entry_version, a.event_version
             FROM accounts a
             WHERE a.tenant_id = $1 AND a.id = ANY($2)
             ORDER BY a.id
             FOR UPDATE OF a),
         context AS MATERIALIZED (
             SELECT (SELECT clock_timestamp() FROM (SELECT count(*) FROM locked) held) AS now,
                    (SELECT coalesce(json_agg(json_build_object(
                         'id', id, 'kind', kind, 'asset_code', asset_code,
                         'limit_amount', limit_amount, 'effective_from', effective_from)), '[]')
                     FROM policies WHERE tenant_id = $1 AND effective_to IS NULL) AS policies)
         SELECT c.now, c.policies, l.id, l.asset_code, l.balance_limit, l.debits_posted,
                l.credits_posted, l.debits_pending, l.credits_pending, l.entry_version,
                l.event_version
         FROM context c LEFT JOIN locked l ON true",
    )
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(&mut *connection)
    .await?;
    let Some((now, policies)) = rows.first().map(|row| (row.0, row.1.clone())) else {
        return Err(Error::invariant(
            "POSTING_CONTEXT_READ",
            "locking the accounts of a posting returned no row",
        ));
    };
    let mut accounts = HashMap::with_capacity(rows.len());
    for row in rows {
        // The account columns are NOT NULL: all of them, or none (no account found).
        let (
            _,
            _,
            Some(id),
            Some(asset_code),
            Some(limit),
            Some(dp),
            Some(cp),
            Some(dpe),
            Some(cpe),
            Some(ev),
            Some(vv),
        ) = row
        else {
            continue;
        };
        let balance_limit = BalanceLimit::parse(&limit)
            .ok_or_else(|| error::unknown_stored("balance_limit", &limit))?;
        accounts.insert(
            id,
            AccountState {
                id,
                asset_code,
                balance_limit,
                balances: Balances {
                    debits_posted: dp,
                    credits_posted: cp,
                    debits_pending: dpe,
                    credits_pending: cpe,
                },
                entry_version: ev,
                event_version: vv,
            },
        );
    }
    Ok(Locked {
        accounts,
        now,
        policies: decode_policies(tenant_id, policies)?,
    })
}

fn decode_policies(tenant_id: Uuid, value: serde_json::Value) -> Result<Vec<Policy>, Error> {
    let rows: Vec<PolicyRow> =
        serde_json::from_value(value).map_err(|e| error::undecodable_stored("policies", e))?;
    rows.into_iter()
        .map(|row| {
            Ok(Policy {
                id: row.id,
                tenant_id,
                kind: PolicyKind::parse(&row.kind)
                    .ok_or_else(|| error::unknown_stored("kind", &row.kind))?,
                asset_code: row.asset_code,
                limit: row.limit_amount,
                effective_from: row.effective_from,
                effective_to: None,
            })
        })
        .collect()
}

/// A policy as [`lock_accounts`] reads it.
#[derive(Debug, Deserialize)]
struct PolicyRow {
    id: Uuid,
    kind: String,
    asset_code: String,
    limit_amount: Option<i64>,
    effective_from: DateTime<Utc>,
}

/// What a posting of posts, voids or reversals reads once the accounts are locked: which of
/// the transfers it refers to are pendings still open, and how much of each was reversed.
#[derive(Debug)]
pub struct ReferencedState {
    pub open: Vec<Uuid>,
    pub reversed: HashMap<Uuid, i64>,
}

/// Reads the [`ReferencedState`] of `referenced` in one statement. After the locks, in a
/// statement of its own: a statement sees the data as of its start, and the locks may have
/// been waited for (a concurrent post of the same pending, committed meanwhile).
pub async fn referenced_state(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    referenced: &[Uuid],
) -> Result<ReferencedState, Error> {
    let (open, reversed): (Vec<Uuid>, serde_json::Value) = sqlx::query_as(
        "SELECT ARRAY(SELECT transfer_id FROM open_pendings
                      WHERE tenant_id = $1 AND transfer_id = ANY($2)),
                (SELECT coalesce(json_object_agg(reversal_of, reversed), '{}') FROM (
                     SELECT reversal_of, sum(amount) AS reversed FROM transfers
                     WHERE tenant_id = $1 AND reversal_of = ANY($2)
                     GROUP BY reversal_of) r)",
    )
    .bind(tenant_id)
    .bind(referenced)
    .fetch_one(&mut *connection)
    .await?;
    let reversed = serde_json::from_value::<HashMap<Uuid, serde_json::Number>>(reversed)
        .map_err(|e| error::undecodable_stored("reversed", e))?
        .into_iter()
        .map(|(id, sum)| (id, sum.as_i64().unwrap_or(i64::MAX)))
        .collect();
    Ok(ReferencedState { open, reversed })
}

/// New debits (posted or pending) of each account since the start of `now`'s UTC day.
pub async fn debited_today(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    accounts: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, i64>, Error> {
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT debit_account_id, sum(amount)::bigint FROM transfers
         WHERE tenant_id = $1 AND debit_account_id = ANY($2) AND created_at >= $3
           AND kind IN ('POSTED', 'PENDING')
         GROUP BY debit_account_id",
    )
    .bind(tenant_id)
    .bind(accounts)
    .bind(day_start)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The posting write: transfers, entries, balances, pendings opened and resolved, the
/// accounts' events, the snapshots that fell due and the calls' idempotency keys, in a single
/// statement (one round trip). Parameters: tenant, the transfers' columns ($2-$15, batch id
/// first), the entries' ($16-$22), the accounts' ($23-$29), pendings opened and resolved ($30,
/// $31), the events' ($32-$42), the snapshots' ($43-$47), then the keys' ($48-$54). It returns
/// the keys it took.
static POSTING_WRITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH
         t AS (INSERT INTO transfers (tenant_id, id, batch_id, kind, debit_account_id,
                   credit_account_id, asset_code, amount, pending_id, reversal_of, expires_at,
                   code, metadata, idempotency_key, created_at)
               SELECT $1, u.id, u.batch, u.kind, u.debit, u.credit, u.asset, u.amount,
                      u.pending_id, u.reversal_of, u.expires_at, u.code, u.metadata, u.key,
                      u.created_at
               FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::uuid[],
                           $7::text[], $8::bigint[], $9::uuid[], $10::uuid[],
                           $11::timestamptz[], $12::text[], $13::jsonb[], $14::text[],
                           $15::timestamptz[])
                    AS u(batch, id, kind, debit, credit, asset, amount, pending_id,
                         reversal_of, expires_at, code, metadata, key, created_at)),
         e AS (INSERT INTO entries (tenant_id, account_id, version, transfer_id, asset_code,
                   amount, balance, created_at)
               SELECT $1, u.* FROM UNNEST($16::uuid[], $17::bigint[], $18::uuid[], $19::text[],
                                          $20::bigint[], $21::bigint[], $22::timestamptz[]) AS u),
         a AS (UPDATE accounts AS a
               SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpe,
                   credits_pending = u.cpe, entry_version = u.ev, event_version = u.vv
               FROM UNNEST($23::uuid[], $24::bigint[], $25::bigint[], $26::bigint[],
                           $27::bigint[], $28::bigint[], $29::bigint[])
                    AS u(id, dp, cp, dpe, cpe, ev, vv)
               -- `id = ANY`: the accounts are found by their key; joined on `u` alone, the
               -- generic plan hashed `u` and read every account of the tenant.
               WHERE a.tenant_id = $1 AND a.id = ANY($23) AND a.id = u.id),
         o AS (INSERT INTO open_pendings (tenant_id, transfer_id, debit_account_id,
                   credit_account_id, amount, expires_at)
               SELECT $1, u.id, u.debit, u.credit, u.amount, u.expires_at
               FROM UNNEST($3::uuid[], $5::uuid[], $6::uuid[], $8::bigint[], $11::timestamptz[])
                    AS u(id, debit, credit, amount, expires_at)
               WHERE u.id = ANY($30)),
         d AS (DELETE FROM open_pendings WHERE tenant_id = $1 AND transfer_id = ANY($31)),
         v AS ({events}),
         s AS (INSERT INTO snapshots (tenant_id, aggregate_type, aggregate_id,
                   aggregate_version, state, created_at)
               SELECT $1, $43, u.id, u.version, u.state, $47
               FROM UNNEST($44::text[], $45::bigint[], $46::jsonb[]) AS u(id, version, state)
               ON CONFLICT DO NOTHING),
         -- The latest three snapshots of an aggregate are kept: the one written here and
         -- the two newest before it (this statement does not see its own insert). Found per
         -- aggregate by a short backward index scan; a window over all of them, planned on
         -- stale statistics, once made this a nested loop of seconds for a large batch.
         r AS (DELETE FROM snapshots k USING (
                   SELECT u.id, (SELECT o.aggregate_version FROM snapshots o
                                 WHERE o.tenant_id = $1 AND o.aggregate_type = $43
                                   AND o.aggregate_id = u.id
                                 ORDER BY o.aggregate_version DESC OFFSET 1 LIMIT 1) AS oldest_kept
                   FROM UNNEST($44::text[]) AS u(id)) kept
               WHERE k.tenant_id = $1 AND k.aggregate_type = $43 AND k.aggregate_id = kept.id
                 AND k.aggregate_version < kept.oldest_kept),
         k AS ({keys})
         SELECT k.idempotency_key FROM k",
        events = EventRows::insert(1, 32),
        keys = KeyRows::insert(48),
    )
});

/// One posting call to write: what it posts, and the call it came from when that is not the
/// writing task's (its events carry that call's trace).
#[derive(Debug, Clone, Copy)]
pub struct PostingWrite<'p> {
    pub posting: &'p Posting,
    pub origin: Option<&'p Origin>,
}

/// Writes the postings of calls decided together on one view (so a later call's account
/// states and versions follow an earlier one's), with `keys` recorded, in one statement.
/// Returns the idempotency keys it took: a key missing from them was taken by a concurrent
/// request first, and the caller must roll back.
pub async fn write_postings(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    postings: &[PostingWrite<'_>],
    now: DateTime<Utc>,
    snapshot_every: i64,
    keys: KeyRows,
) -> Result<HashSet<String>, Error> {
    let transfers: Vec<&Transfer> = postings.iter().flat_map(|p| &p.posting.transfers).collect();
    if transfers.is_empty() && keys.is_empty() {
        return Ok(HashSet::new());
    }
    let column = |f: fn(&Transfer) -> Uuid| transfers.iter().map(|t| f(t)).collect::<Vec<_>>();
    let kinds: Vec<&str> = transfers.iter().map(|t| t.kind.as_str()).collect();
    let assets: Vec<&str> = transfers.iter().map(|t| t.asset_code.as_str()).collect();
    let amounts: Vec<i64> = transfers.iter().map(|t| t.amount).collect();
    let pending_ids: Vec<Option<Uuid>> = transfers.iter().map(|t| t.pending_id).collect();
    let reversals: Vec<Option<Uuid>> = transfers.iter().map(|t| t.reversal_of).collect();
    let expiries: Vec<Option<DateTime<Utc>>> = transfers.iter().map(|t| t.expires_at).collect();
    let codes: Vec<&str> = transfers.iter().map(|t| t.code.as_str()).collect();
    let metadata: Vec<serde_json::Value> = transfers
        .iter()
        .map(|t| serde_json::to_value(&t.metadata))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::internal(format_args!("metadata does not encode: {e}")))?;
    let transfer_keys: Vec<Option<&str>> = transfers
        .iter()
        .map(|t| t.idempotency_key.as_deref())
        .collect();
    let created: Vec<DateTime<Utc>> = transfers.iter().map(|t| t.created_at).collect();

    let entries: Vec<&Entry> = postings.iter().flat_map(|p| &p.posting.entries).collect();
    let entry_accounts: Vec<Uuid> = entries.iter().map(|e| e.account_id).collect();
    let entry_versions: Vec<i64> = entries.iter().map(|e| e.version).collect();
    let entry_transfers: Vec<Uuid> = entries.iter().map(|e| e.transfer_id).collect();
    let entry_assets: Vec<&str> = entries.iter().map(|e| e.asset_code.as_str()).collect();
    let entry_amounts: Vec<i64> = entries.iter().map(|e| e.amount).collect();
    let entry_balances: Vec<i64> = entries.iter().map(|e| e.balance).collect();
    let entry_times: Vec<DateTime<Utc>> = entries.iter().map(|e| e.created_at).collect();

    // Each account as the last call left it, with the version it had before the first.
    let mut touched: HashMap<Uuid, (&AccountState, i64)> = HashMap::new();
    for (state, first) in postings.iter().flat_map(|p| &p.posting.accounts) {
        touched
            .entry(state.id)
            .and_modify(|(last, _)| *last = state)
            .or_insert((state, *first));
    }
    let states: Vec<&AccountState> = touched.values().map(|(state, _)| *state).collect();
    let state_ids: Vec<Uuid> = states.iter().map(|s| s.id).collect();
    let balance =
        |f: fn(&Balances) -> i64| states.iter().map(|s| f(&s.balances)).collect::<Vec<_>>();
    let entry_version: Vec<i64> = states.iter().map(|s| s.entry_version).collect();
    let event_version: Vec<i64> = states.iter().map(|s| s.event_version).collect();

    let opened_ids: Vec<Uuid> = postings
        .iter()
        .flat_map(|p| &p.posting.opened)
        .copied()
        .collect();
    let resolved: Vec<Uuid> = postings
        .iter()
        .flat_map(|p| &p.posting.resolved)
        .copied()
        .collect();

    let events: Vec<NewEvent> = postings
        .iter()
        .flat_map(|p| {
            p.posting
                .changes
                .iter()
                .map(move |change| (change, p.origin))
        })
        .map(|(change, origin)| {
            let event = balance_changed(change, now);
            match origin {
                Some(origin) => event.made_by(origin),
                None => event,
            }
        })
        .collect();

    // A snapshot each time a stream passes a multiple of `snapshot_every`.
    let due: Vec<(&AccountState, i64)> = touched
        .values()
        .filter(|(state, first)| state.event_version / snapshot_every != first / snapshot_every)
        .copied()
        .collect();
    let snapshot_ids: Vec<String> = due.iter().map(|(s, _)| s.id.to_string()).collect();
    let snapshot_versions: Vec<i64> = due.iter().map(|(s, _)| s.event_version).collect();
    let snapshot_states: Vec<serde_json::Value> = due
        .iter()
        .map(|(s, _)| serde_json::to_value(s.balances))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::internal(format_args!("balances do not encode: {e}")))?;

    let query = sqlx::query(&POSTING_WRITE)
        .bind(tenant_id)
        .bind(column(|t| t.batch_id))
        .bind(column(|t| t.id))
        .bind(&kinds)
        .bind(column(|t| t.debit_account_id))
        .bind(column(|t| t.credit_account_id))
        .bind(&assets)
        .bind(&amounts)
        .bind(&pending_ids)
        .bind(&reversals)
        .bind(&expiries)
        .bind(&codes)
        .bind(&metadata)
        .bind(&transfer_keys)
        .bind(&created)
        .bind(&entry_accounts)
        .bind(&entry_versions)
        .bind(&entry_transfers)
        .bind(&entry_assets)
        .bind(&entry_amounts)
        .bind(&entry_balances)
        .bind(&entry_times)
        .bind(&state_ids)
        .bind(balance(|b| b.debits_posted))
        .bind(balance(|b| b.credits_posted))
        .bind(balance(|b| b.debits_pending))
        .bind(balance(|b| b.credits_pending))
        .bind(&entry_version)
        .bind(&event_version)
        .bind(&opened_ids)
        .bind(&resolved);
    let current = Origin::current();
    let query = EventRows::new(&events, &current)
        .bind(query)
        .bind(ACCOUNT_STREAM)
        .bind(&snapshot_ids)
        .bind(&snapshot_versions)
        .bind(&snapshot_states)
        .bind(now);
    let taken = keys
        .bind(query)
        .fetch_all(&mut *connection)
        .await
        .map_err(stream::version_conflict)?;
    Ok(taken
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?)
}

/// The event of one call's change to one account.
fn balance_changed(change: &AccountChange, now: DateTime<Utc>) -> NewEvent {
    let payload = pb::AccountBalanceChanged {
        transfers: change
            .transfers
            .iter()
            .map(|effect| pb::AccountTransferEffect {
                transfer_id: effect.transfer_id.to_string(),
                kind: crate::proto::transfer_kind(effect.kind).into(),
                debits_posted_delta: effect.delta.debits_posted,
                credits_posted_delta: effect.delta.credits_posted,
                debits_pending_delta: effect.delta.debits_pending,
                credits_pending_delta: effect.delta.credits_pending,
            })
            .collect(),
    };
    NewEvent::new(
        ACCOUNT_STREAM,
        change.account_id,
        change.version,
        types::ACCOUNT_BALANCE_CHANGED,
        &payload,
        now,
    )
}

/// Open pending transfers whose timeout passed, oldest first: (tenant, transfer id).
pub async fn expired_pendings(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, transfer_id FROM open_pendings
         WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
