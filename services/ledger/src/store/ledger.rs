//! Accounts, the posting transaction, transfers and history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::{self, NewEvent, types};
use crate::domain::ledger::{
    self, Account, AccountState, BalanceDelta, BalanceLimit, Balances, BatchRefusal, CallContext,
    Entry, LedgerView, Linking, NewAccount, Operation, PendingState, Posting, Referenced, Transfer,
    TransferKind,
};
use crate::domain::policy::{self, Policy, PolicyKind};
use crate::error;
use phoenix_runtime::Error;

/// Aggregate type of account streams.
pub const ACCOUNT_STREAM: &str = "account";

/// Advisory lock key space of the per-tenant policy gate: postings hold it shared, policy
/// changes exclusively, so a policy's effective time splits the transfers cleanly.
pub const POLICY_GATE: i32 = 0x1ed9e7;

type AccountRow = (
    Uuid,
    Uuid,
    String,
    i16,
    String,
    String,
    String,
    serde_json::Value,
    i64,
    i64,
    i64,
    i64,
    i64,
    DateTime<Utc>,
);

const ACCOUNT_COLUMNS: &str = "a.id, a.tenant_id, a.asset_code, s.scale, a.owner_ref, a.kind,
    a.balance_limit, a.metadata, a.debits_posted, a.credits_posted, a.debits_pending,
    a.credits_pending, a.entry_version, a.created_at";

fn account(row: AccountRow) -> Result<Account, Error> {
    Ok(Account {
        id: row.0,
        tenant_id: row.1,
        asset_code: row.2,
        asset_scale: row.3,
        owner_ref: row.4,
        kind: row.5,
        balance_limit: BalanceLimit::parse(&row.6)
            .ok_or_else(|| error::unknown_stored("balance_limit", &row.6))?,
        metadata: labels(row.7)?,
        balances: Balances {
            debits_posted: row.8,
            credits_posted: row.9,
            debits_pending: row.10,
            credits_pending: row.11,
        },
        entry_version: row.12,
        created_at: row.13,
    })
}

fn labels(value: serde_json::Value) -> Result<BTreeMap<String, String>, Error> {
    serde_json::from_value(value).map_err(|e| error::undecodable_stored("metadata", e))
}

/// Opens an account, fixing its asset's scale if it is the asset's first account.
pub async fn create_account(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewAccount,
    now: DateTime<Utc>,
) -> Result<Account, Error> {
    super::tenants::get(&mut *connection, tenant_id).await?;
    let scale: i16 = sqlx::query_scalar(
        "WITH created AS (
             INSERT INTO assets (tenant_id, code, scale) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING scale)
         SELECT scale FROM created
         UNION ALL SELECT scale FROM assets WHERE tenant_id = $1 AND code = $2
         LIMIT 1",
    )
    .bind(tenant_id)
    .bind(&new.asset_code)
    .bind(new.asset_scale)
    .fetch_one(&mut *connection)
    .await?;
    if scale != new.asset_scale {
        return Err(error::asset_scale_mismatch(&new.asset_code, scale, new.asset_scale).into());
    }
    let id = Uuid::now_v7();
    let metadata = serde_json::to_value(&new.metadata).unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO accounts (tenant_id, id, asset_code, owner_ref, kind, balance_limit, metadata,
                               event_version, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)
         ON CONFLICT (tenant_id, owner_ref, asset_code, kind) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(&new.asset_code)
    .bind(&new.owner_ref)
    .bind(&new.kind)
    .bind(new.balance_limit.as_str())
    .bind(metadata)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(error::account_exists(&new.owner_ref, &new.asset_code, &new.kind).into());
    }
    let account = Account {
        id,
        tenant_id,
        asset_code: new.asset_code.clone(),
        asset_scale: scale,
        owner_ref: new.owner_ref.clone(),
        kind: new.kind.clone(),
        balance_limit: new.balance_limit,
        metadata: new.metadata.clone(),
        balances: Balances::default(),
        entry_version: 0,
        created_at: now,
    };
    let payload = pb::AccountOpened {
        account: Some(crate::proto::account(&account)),
    };
    events::append(
        connection,
        tenant_id,
        &[NewEvent::new(
            ACCOUNT_STREAM,
            id,
            1,
            types::ACCOUNT_OPENED,
            &payload,
            now,
        )],
    )
    .await?;
    Ok(account)
}

pub async fn get_account(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Account, Error> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a
         JOIN assets s ON s.tenant_id = a.tenant_id AND s.code = a.asset_code
         WHERE a.tenant_id = $1 AND a.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?;
    match row {
        Some(row) => account(row),
        None => Err(error::account_not_found(id).at("account_id").into()),
    }
}

pub async fn list_accounts(
    pool: &PgPool,
    tenant_id: Uuid,
    owner_ref: &str,
) -> Result<Vec<Account>, Error> {
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a
         JOIN assets s ON s.tenant_id = a.tenant_id AND s.code = a.asset_code
         WHERE a.tenant_id = $1 AND a.owner_ref = $2
         ORDER BY a.asset_code, a.kind"
    ))
    .bind(tenant_id)
    .bind(owner_ref)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(account).collect()
}

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

pub async fn get_transfer(pool: &PgPool, tenant_id: Uuid, id: Uuid) -> Result<Transfer, Error> {
    let row: Option<TransferRow> = sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.tenant_id = $1 AND t.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => transfer(row),
        None => Err(error::transfer_not_found(id).at("transfer_id").into()),
    }
}

/// What the posting transaction reads once the accounts are locked.
#[derive(Debug, Deserialize)]
struct PolicyRow {
    id: Uuid,
    kind: String,
    asset_code: String,
    limit_amount: Option<i64>,
    effective_from: DateTime<Utc>,
}

/// The posting transaction's work, on the caller's transaction: [`decide`], then write
/// transfers, entries, balances, pendings, events and due snapshots. A linked call refused as a
/// whole is `Ok(Err(_))`: nothing was written.
pub async fn post(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    idempotency_key: Option<String>,
    operations: &[Operation],
    linking: Linking,
    snapshot_every: i64,
) -> Result<Result<Posting, BatchRefusal>, Error> {
    let (posting, now) =
        match decide(connection, tenant_id, idempotency_key, operations, linking).await? {
            Ok(decided) => decided,
            Err(refused) => return Ok(Err(refused)),
        };
    write(connection, tenant_id, &posting, now, snapshot_every).await?;
    Ok(Ok(posting))
}

/// Loads what `operations` touch, locks the accounts (in id order, so concurrent postings never
/// deadlock) and runs the engine; writes nothing. Returns the posting and the time it takes.
pub async fn decide(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    idempotency_key: Option<String>,
    operations: &[Operation],
    linking: Linking,
) -> Result<Result<(Posting, DateTime<Utc>), BatchRefusal>, Error> {
    let referenced_ids: Vec<Uuid> = operations
        .iter()
        .filter_map(Operation::referenced_transfer)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut referenced = load_referenced(connection, tenant_id, &referenced_ids).await?;
    let mut account_ids: Vec<Uuid> = operations
        .iter()
        .flat_map(|op| ledger::accounts_of(op, &referenced))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    account_ids.sort();
    let accounts = lock_accounts(connection, tenant_id, &account_ids).await?;

    let (now, policies, open, reversed): (
        DateTime<Utc>,
        serde_json::Value,
        Vec<Uuid>,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT clock_timestamp(),
                (SELECT coalesce(json_agg(json_build_object(
                     'id', id, 'kind', kind, 'asset_code', asset_code,
                     'limit_amount', limit_amount, 'effective_from', effective_from)), '[]')
                 FROM policies WHERE tenant_id = $1 AND effective_to IS NULL),
                ARRAY(SELECT transfer_id FROM open_pendings
                      WHERE tenant_id = $1 AND transfer_id = ANY($2)),
                (SELECT coalesce(json_object_agg(reversal_of, reversed), '{}') FROM (
                     SELECT reversal_of, sum(amount) AS reversed FROM transfers
                     WHERE tenant_id = $1 AND reversal_of = ANY($2)
                     GROUP BY reversal_of) r)",
    )
    .bind(tenant_id)
    .bind(&referenced_ids)
    .fetch_one(&mut *connection)
    .await?;
    let policies = decode_policies(tenant_id, policies)?;
    let reversed: HashMap<Uuid, i64> =
        serde_json::from_value::<HashMap<Uuid, serde_json::Number>>(reversed)
            .map_err(|e| error::undecodable_stored("reversed", e))?
            .into_iter()
            .map(|(id, sum)| (id, sum.as_i64().unwrap_or(i64::MAX)))
            .collect();
    for (id, entry) in &mut referenced {
        entry.open = open.contains(id);
        entry.reversed = reversed.get(id).copied().unwrap_or(0);
    }
    let debited_today = if policy::needs_daily_debits(&policies) {
        debited_today(connection, tenant_id, &account_ids, now).await?
    } else {
        HashMap::new()
    };

    let mut view = LedgerView {
        accounts,
        referenced,
        policies,
        debited_today,
    };
    let call = CallContext {
        tenant_id,
        batch_id: Uuid::now_v7(),
        now,
        idempotency_key,
    };
    let decided = ledger::post(&mut view, operations, linking, &call, Uuid::now_v7);
    if let Err(refused) = &decided {
        crate::metrics::refused(&refused.refusal.reason);
    }
    Ok(decided.map(|posting| (posting, now)))
}

async fn load_referenced(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Referenced>, Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(get_transfers(connection, tenant_id, ids)
        .await?
        .into_iter()
        .map(|transfer| {
            (
                transfer.id,
                Referenced {
                    transfer,
                    open: false,
                    reversed: 0,
                },
            )
        })
        .collect())
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

/// id, asset, limit, the four sums, entry version, event version.
type LockedRow = (Uuid, String, String, i64, i64, i64, i64, i64, i64);

async fn lock_accounts(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, AccountState>, Error> {
    let rows: Vec<LockedRow> = sqlx::query_as(
        "WITH gate AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($3, hashtext($1::text)))
         SELECT a.id, a.asset_code, a.balance_limit, a.debits_posted, a.credits_posted,
                a.debits_pending, a.credits_pending, a.entry_version, a.event_version
         FROM accounts a
         WHERE a.tenant_id = $1 AND a.id = ANY($2) AND EXISTS (SELECT FROM gate)
         ORDER BY a.id
         FOR UPDATE OF a",
    )
    .bind(tenant_id)
    .bind(ids)
    .bind(POLICY_GATE)
    .fetch_all(&mut *connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.0,
                AccountState {
                    id: row.0,
                    asset_code: row.1,
                    balance_limit: BalanceLimit::parse(&row.2)
                        .ok_or_else(|| error::unknown_stored("balance_limit", &row.2))?,
                    balances: Balances {
                        debits_posted: row.3,
                        credits_posted: row.4,
                        debits_pending: row.5,
                        credits_pending: row.6,
                    },
                    entry_version: row.7,
                    event_version: row.8,
                },
            ))
        })
        .collect()
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

/// New debits (posted or pending) of each account since the start of `now`'s UTC day.
async fn debited_today(
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

/// The posting's one write: transfers, entries, balances, pendings opened and resolved, and
/// the accounts' events, in a single statement (one round trip). Parameters: tenant, batch id,
/// the transfers' columns ($3-$15), the entries' ($16-$22), the accounts' ($23-$29), pendings
/// opened and resolved ($30, $31), then the events' ($32-$41).
static POSTING_WRITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH
         t AS (INSERT INTO transfers (tenant_id, id, batch_id, kind, debit_account_id,
                   credit_account_id, asset_code, amount, pending_id, reversal_of, expires_at,
                   code, metadata, idempotency_key, created_at)
               SELECT $1, u.id, $2, u.kind, u.debit, u.credit, u.asset, u.amount, u.pending_id,
                      u.reversal_of, u.expires_at, u.code, u.metadata, u.key, u.created_at
               FROM UNNEST($3::uuid[], $4::text[], $5::uuid[], $6::uuid[], $7::text[],
                           $8::bigint[], $9::uuid[], $10::uuid[], $11::timestamptz[],
                           $12::text[], $13::jsonb[], $14::text[], $15::timestamptz[])
                    AS u(id, kind, debit, credit, asset, amount, pending_id, reversal_of,
                         expires_at, code, metadata, key, created_at)),
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
               WHERE a.tenant_id = $1 AND a.id = u.id),
         o AS (INSERT INTO open_pendings (tenant_id, transfer_id, debit_account_id,
                   credit_account_id, amount, expires_at)
               SELECT $1, u.id, u.debit, u.credit, u.amount, u.expires_at
               FROM UNNEST($3::uuid[], $5::uuid[], $6::uuid[], $8::bigint[], $11::timestamptz[])
                    AS u(id, debit, credit, amount, expires_at)
               WHERE u.id = ANY($30)),
         d AS (DELETE FROM open_pendings WHERE tenant_id = $1 AND transfer_id = ANY($31)),
         v AS ({events})
         SELECT 1",
        events = events::EventRows::insert(1, 32)
    )
});

async fn write(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    posting: &Posting,
    now: DateTime<Utc>,
    snapshot_every: i64,
) -> Result<(), Error> {
    if posting.transfers.is_empty() {
        return Ok(());
    }
    let transfers = &posting.transfers;
    let column = |f: fn(&Transfer) -> Uuid| transfers.iter().map(f).collect::<Vec<_>>();
    let kinds: Vec<&str> = transfers.iter().map(|t| t.kind.as_str()).collect();
    let assets: Vec<&str> = transfers.iter().map(|t| t.asset_code.as_str()).collect();
    let amounts: Vec<i64> = transfers.iter().map(|t| t.amount).collect();
    let pending_ids: Vec<Option<Uuid>> = transfers.iter().map(|t| t.pending_id).collect();
    let reversals: Vec<Option<Uuid>> = transfers.iter().map(|t| t.reversal_of).collect();
    let expiries: Vec<Option<DateTime<Utc>>> = transfers.iter().map(|t| t.expires_at).collect();
    let codes: Vec<&str> = transfers.iter().map(|t| t.code.as_str()).collect();
    let metadata: Vec<serde_json::Value> = transfers
        .iter()
        .map(|t| serde_json::to_value(&t.metadata).unwrap_or_default())
        .collect();
    let keys: Vec<Option<&str>> = transfers
        .iter()
        .map(|t| t.idempotency_key.as_deref())
        .collect();
    let created: Vec<DateTime<Utc>> = transfers.iter().map(|t| t.created_at).collect();

    let entries = &posting.entries;
    let entry_accounts: Vec<Uuid> = entries.iter().map(|e| e.account_id).collect();
    let entry_versions: Vec<i64> = entries.iter().map(|e| e.version).collect();
    let entry_transfers: Vec<Uuid> = entries.iter().map(|e| e.transfer_id).collect();
    let entry_assets: Vec<&str> = entries.iter().map(|e| e.asset_code.as_str()).collect();
    let entry_amounts: Vec<i64> = entries.iter().map(|e| e.amount).collect();
    let entry_balances: Vec<i64> = entries.iter().map(|e| e.balance).collect();
    let entry_times: Vec<DateTime<Utc>> = entries.iter().map(|e| e.created_at).collect();

    let states: Vec<&AccountState> = posting.accounts.iter().map(|(state, _)| state).collect();
    let state_ids: Vec<Uuid> = states.iter().map(|s| s.id).collect();
    let balance =
        |f: fn(&Balances) -> i64| states.iter().map(|s| f(&s.balances)).collect::<Vec<_>>();
    let entry_version: Vec<i64> = states.iter().map(|s| s.entry_version).collect();
    let event_version: Vec<i64> = states.iter().map(|s| s.event_version).collect();

    let opened: Vec<&Transfer> = transfers
        .iter()
        .filter(|t| t.kind == TransferKind::Pending)
        .collect();
    let opened_ids: Vec<Uuid> = opened.iter().map(|t| t.id).collect();

    let events: Vec<NewEvent> = posting
        .changes
        .iter()
        .map(|change| {
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
        })
        .collect();
    let query = sqlx::query(&POSTING_WRITE)
        .bind(tenant_id)
        .bind(transfers[0].batch_id)
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
        .bind(&keys)
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
        .bind(&posting.resolved);
    events::EventRows::new(&events)
        .bind(query)
        .execute(&mut *connection)
        .await
        .map_err(events::stream_conflict)?;

    // A snapshot each time a stream passes a multiple of `snapshot_every`.
    let snapshots: Vec<(String, i64, serde_json::Value)> = posting
        .accounts
        .iter()
        .filter(|(state, first)| state.event_version / snapshot_every != first / snapshot_every)
        .map(|(state, _)| {
            (
                state.id.to_string(),
                state.event_version,
                serde_json::to_value(state.balances).unwrap_or_default(),
            )
        })
        .collect();
    events::save_snapshots(connection, tenant_id, ACCOUNT_STREAM, &snapshots, now).await?;
    Ok(())
}

type EntryRow = (Uuid, i64, Uuid, String, i64, i64, DateTime<Utc>);

/// An account's entries after `after_version`, by version.
pub async fn list_entries(
    pool: &PgPool,
    tenant_id: Uuid,
    account_id: Uuid,
    after_version: i64,
    limit: i64,
) -> Result<Vec<Entry>, Error> {
    get_account(pool, tenant_id, account_id).await?;
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT account_id, version, transfer_id, asset_code, amount, balance, created_at
         FROM entries WHERE tenant_id = $1 AND account_id = $2 AND version > $3
         ORDER BY version LIMIT $4",
    )
    .bind(tenant_id)
    .bind(account_id)
    .bind(after_version)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Entry {
            account_id: r.0,
            version: r.1,
            transfer_id: r.2,
            asset_code: r.3,
            amount: r.4,
            balance: r.5,
            created_at: r.6,
        })
        .collect())
}

/// An account's posted balance and entry version at `at` (0 and 0 before its first entry).
/// Entries take their time after the account is locked, so times grow with versions.
pub async fn balance_at(
    pool: &PgPool,
    tenant_id: Uuid,
    account_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(i64, i64), Error> {
    get_account(pool, tenant_id, account_id).await?;
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT balance, version FROM entries
         WHERE tenant_id = $1 AND account_id = $2 AND created_at <= $3
         ORDER BY created_at DESC, version DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(account_id)
    .bind(at)
    .fetch_optional(pool)
    .await?;
    Ok(row.unwrap_or((0, 0)))
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

/// An account's balances rebuilt from its latest snapshot and the events after it:
/// (balances, stream version, snapshot version, events replayed).
pub async fn rehydrate(
    executor: &PgPool,
    tenant_id: Uuid,
    account_id: Uuid,
) -> Result<(Balances, i64, i64, i64), Error> {
    let id = account_id.to_string();
    let snapshot = events::latest_snapshot(executor, tenant_id, ACCOUNT_STREAM, &id).await?;
    let (mut balances, snapshot_version) = match snapshot {
        Some((version, state)) => (
            serde_json::from_value(state).map_err(|e| error::undecodable_stored("snapshot", e))?,
            version,
        ),
        None => (Balances::default(), 0),
    };
    let payloads =
        events::payloads_after(executor, tenant_id, ACCOUNT_STREAM, &id, snapshot_version).await?;
    if snapshot_version == 0 && payloads.is_empty() {
        return Err(error::account_not_found(account_id).at("account_id").into());
    }
    let mut version = snapshot_version;
    for (event_version, event_type, payload) in &payloads {
        balances = fold_event(balances, event_type, payload).ok_or_else(|| {
            error::unknown_stored("event", &format!("{event_type} at version {event_version}"))
        })?;
        version = *event_version;
    }
    let replayed = i64::try_from(payloads.len()).unwrap_or(i64::MAX);
    Ok((balances, version, snapshot_version, replayed))
}

/// Applies one account event to the balances; `None` for an event that does not belong to an
/// account stream or would overflow.
fn fold_event(balances: Balances, event_type: &str, payload: &[u8]) -> Option<Balances> {
    use prost::Message;
    match event_type {
        types::ACCOUNT_OPENED => Some(balances),
        types::ACCOUNT_BALANCE_CHANGED => {
            let change = pb::AccountBalanceChanged::decode(payload).ok()?;
            change
                .transfers
                .iter()
                .try_fold(balances, |balances, effect| {
                    balances.apply(&BalanceDelta {
                        debits_posted: effect.debits_posted_delta,
                        credits_posted: effect.credits_posted_delta,
                        debits_pending: effect.debits_pending_delta,
                        credits_pending: effect.credits_pending_delta,
                    })
                })
        }
        _ => None,
    }
}
