//! Policies: versioned rows, changed under the tenant's policy gate.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::{self, NewEvent, types};
use super::ledger::POLICY_GATE;
use crate::domain::Refusal;
use crate::domain::policy::{Policy, PolicyKind, PolicySpec};
use crate::error;
use phoenix_runtime::Error;

type PolicyRow = (
    Uuid,
    Uuid,
    String,
    String,
    Option<i64>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const POLICY_COLUMNS: &str =
    "id, tenant_id, kind, asset_code, limit_amount, effective_from, effective_to";

fn policy(row: PolicyRow) -> Result<Policy, Error> {
    Ok(Policy {
        id: row.0,
        tenant_id: row.1,
        kind: PolicyKind::parse(&row.2)
            .ok_or_else(|| error::unknown_stored("policy kind", &row.2))?,
        asset_code: row.3,
        limit: row.4,
        effective_from: row.5,
        effective_to: row.6,
    })
}

/// Waits until no posting of the tenant is in flight and holds them off until commit, then
/// returns the database clock: postings before it used the old policies, after it the new.
async fn close_gate(
    connection: &mut PgConnection,
    tenant_id: Uuid,
) -> Result<DateTime<Utc>, Error> {
    super::tenants::get(&mut *connection, tenant_id).await?;
    Ok(sqlx::query_scalar(
        "SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock($1, hashtext($2::text))) gate",
    )
    .bind(POLICY_GATE)
    .bind(tenant_id)
    .fetch_one(connection)
    .await?)
}

/// Ends the active policy of the same kind and asset, if any, and starts the new one.
pub async fn set(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    spec: &PolicySpec,
) -> Result<Policy, Error> {
    let now = close_gate(connection, tenant_id).await?;
    let ended: Option<PolicyRow> = sqlx::query_as(&format!(
        "UPDATE policies SET effective_to = $4
         WHERE tenant_id = $1 AND kind = $2 AND asset_code = $3 AND effective_to IS NULL
         RETURNING {POLICY_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(spec.kind.as_str())
    .bind(&spec.asset_code)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    let mut changes = Vec::new();
    if let Some(ended) = ended {
        changes.push((policy(ended)?, 2));
    }
    let row: PolicyRow = sqlx::query_as(&format!(
        "INSERT INTO policies (tenant_id, id, kind, asset_code, limit_amount, effective_from)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {POLICY_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(spec.kind.as_str())
    .bind(&spec.asset_code)
    .bind(spec.limit)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let created = policy(row)?;
    changes.push((created.clone(), 1));
    append_changes(connection, tenant_id, &changes, now).await?;
    Ok(created)
}

/// Ends a policy. NOT_FOUND if unknown, FAILED_PRECONDITION if it already ended.
pub async fn disable(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Policy, Error> {
    let now = close_gate(connection, tenant_id).await?;
    let row: Option<PolicyRow> = sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    let found = row
        .map(policy)
        .transpose()?
        .ok_or_else(|| error::policy_not_found(id))?;
    if found.effective_to.is_some() {
        return Err(Refusal::precondition(
            "POLICY_ENDED",
            format!("policy {id} has already ended"),
        )
        .at("policy_id")
        .into());
    }
    let row: PolicyRow = sqlx::query_as(&format!(
        "UPDATE policies SET effective_to = $3 WHERE tenant_id = $1 AND id = $2
         RETURNING {POLICY_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let ended = policy(row)?;
    append_changes(connection, tenant_id, &[(ended.clone(), 2)], now).await?;
    Ok(ended)
}

async fn append_changes(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    changes: &[(Policy, i64)],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let events: Vec<NewEvent> = changes
        .iter()
        .map(|(policy, version)| {
            let payload = pb::PolicyChanged {
                policy: Some(crate::proto::policy(policy)),
            };
            NewEvent::new(
                "policy",
                policy.id,
                *version,
                types::POLICY_CHANGED,
                &payload,
                now,
            )
        })
        .collect();
    events::append(connection, tenant_id, &events).await
}

pub async fn list_active(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<Policy>, Error> {
    let rows: Vec<PolicyRow> = sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM policies
         WHERE tenant_id = $1 AND effective_to IS NULL ORDER BY kind, asset_code"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(policy).collect()
}
