//! Accounts, their assets, their entries and their balance in time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, NewEvent};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::types;
use crate::domain::ledger::{Account, BalanceLimit, Balances, Entry};
use crate::error;

/// Aggregate type of account streams.
pub const ACCOUNT_STREAM: &str = "account";

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

/// A metadata column as labels.
pub(super) fn labels(value: serde_json::Value) -> Result<BTreeMap<String, String>, Error> {
    serde_json::from_value(value).map_err(|e| error::undecodable_stored("metadata", e))
}

/// The scale of the tenant's asset `code`, which is `scale` when this creates the asset. Two
/// transactions creating the same asset at once both get the scale the first one committed:
/// the insert waits for the other one and does nothing, and the next statement (a new snapshot)
/// sees the row it committed.
pub async fn asset_scale(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    code: &str,
    scale: i16,
) -> Result<i16, Error> {
    let created: Option<i16> = sqlx::query_scalar(
        "INSERT INTO assets (tenant_id, code, scale) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING scale",
    )
    .bind(tenant_id)
    .bind(code)
    .bind(scale)
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(scale) = created {
        return Ok(scale);
    }
    let existing: Option<i16> =
        sqlx::query_scalar("SELECT scale FROM assets WHERE tenant_id = $1 AND code = $2")
            .bind(tenant_id)
            .bind(code)
            .fetch_optional(&mut *connection)
            .await?;
    existing.ok_or_else(|| {
        Error::invariant(
            "ASSET_EXISTS_AFTER_CONFLICT",
            format!("asset {code} of tenant {tenant_id} conflicted on insert but is not there"),
        )
    })
}

/// Inserts a new account with its `AccountOpened` event; `false` (and nothing written) when
/// the owner already has an account of that asset and kind.
pub async fn insert_account(
    connection: &mut PgConnection,
    account: &Account,
) -> Result<bool, Error> {
    let metadata = serde_json::to_value(&account.metadata)
        .map_err(|e| Error::internal(format_args!("metadata does not encode: {e}")))?;
    let inserted = sqlx::query(
        "INSERT INTO accounts (tenant_id, id, asset_code, owner_ref, kind, balance_limit, metadata,
                               event_version, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)
         ON CONFLICT (tenant_id, owner_ref, asset_code, kind) DO NOTHING",
    )
    .bind(account.tenant_id)
    .bind(account.id)
    .bind(&account.asset_code)
    .bind(&account.owner_ref)
    .bind(&account.kind)
    .bind(account.balance_limit.as_str())
    .bind(metadata)
    .bind(account.created_at)
    .execute(&mut *connection)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let payload = pb::AccountOpened {
        account: Some(crate::proto::account(account)),
    };
    stream::append(
        connection,
        account.tenant_id,
        &[NewEvent::new(
            ACCOUNT_STREAM,
            account.id,
            1,
            types::ACCOUNT_OPENED,
            &payload,
            account.created_at,
        )],
    )
    .await?;
    Ok(true)
}

pub async fn get_account(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Account>, Error> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a
         JOIN assets s ON s.tenant_id = a.tenant_id AND s.code = a.asset_code
         WHERE a.tenant_id = $1 AND a.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?;
    row.map(account).transpose()
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

/// Every account of every tenant: (tenant, id).
pub async fn all_accounts(pool: &PgPool) -> Result<Vec<(Uuid, Uuid)>, Error> {
    Ok(sqlx::query_as("SELECT tenant_id, id FROM accounts")
        .fetch_all(pool)
        .await?)
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
