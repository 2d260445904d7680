//! Policies: versioned rows, changed under the tenant's policy gate.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, NewEvent};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::POLICY_GATE;
use super::events::types;
use crate::domain::policy::{Policy, PolicyKind, PolicySpec};
use crate::error;

/// Aggregate type of a policy's stream: version 1 when it starts, 2 when it ends.
pub const POLICY_STREAM: &str = "policy";

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
pub async fn close_gate(
    connection: &mut PgConnection,
    tenant_id: Uuid,
) -> Result<DateTime<Utc>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock($1, hashtext($2::text))) gate",
    )
    .bind(POLICY_GATE)
    .bind(tenant_id)
    .fetch_one(connection)
    .await?)
}

/// Ends the active policy of the spec's kind and asset at `now`, if there is one.
pub async fn end_active(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    spec: &PolicySpec,
    now: DateTime<Utc>,
) -> Result<Option<Policy>, Error> {
    let ended: Option<PolicyRow> = sqlx::query_as(&format!(
        "UPDATE policies SET effective_to = $4
         WHERE tenant_id = $1 AND kind = $2 AND asset_code = $3 AND effective_to IS NULL
         RETURNING {POLICY_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(spec.kind.as_str())
    .bind(&spec.asset_code)
    .bind(now)
    .fetch_optional(connection)
    .await?;
    ended.map(policy).transpose()
}

/// Starts a policy at `now`.
pub async fn insert(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    spec: &PolicySpec,
    now: DateTime<Utc>,
) -> Result<Policy, Error> {
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
    .fetch_one(connection)
    .await?;
    policy(row)
}

pub async fn get(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Policy>, Error> {
    let row: Option<PolicyRow> = sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(policy).transpose()
}

/// Ends policy `id` at `now`.
pub async fn end(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Policy, Error> {
    let row: PolicyRow = sqlx::query_as(&format!(
        "UPDATE policies SET effective_to = $3 WHERE tenant_id = $1 AND id = $2
         RETURNING {POLICY_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .fetch_one(connection)
    .await?;
    policy(row)
}

/// Appends a `PolicyChanged` event per (policy, version): 1 for a start, 2 for an end.
pub async fn append_changes(
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
                POLICY_STREAM,
                policy.id,
                *version,
                types::POLICY_CHANGED,
                &payload,
                now,
            )
        })
        .collect();
    stream::append(connection, tenant_id, &events).await
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
