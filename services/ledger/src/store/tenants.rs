//! Tenants.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::{self, NewEvent, types};
use crate::domain::tenant::{NewTenant, Tenant};
use crate::error;
use phoenix_runtime::Error;

type TenantRow = (Uuid, String, String, DateTime<Utc>);

fn tenant(row: TenantRow) -> Tenant {
    Tenant {
        id: row.0,
        slug: row.1,
        name: row.2,
        created_at: row.3,
    }
}

pub async fn create(
    connection: &mut PgConnection,
    new: &NewTenant,
    now: DateTime<Utc>,
) -> Result<Tenant, Error> {
    let row: Option<TenantRow> = sqlx::query_as(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (slug) DO NOTHING
         RETURNING id, slug, name, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(&new.slug)
    .bind(&new.name)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    let created = row
        .map(tenant)
        .ok_or_else(|| error::tenant_exists(&new.slug))?;
    let payload = pb::TenantCreated {
        tenant: Some(crate::proto::tenant(&created)),
    };
    events::append(
        connection,
        created.id,
        &[NewEvent::new(
            "tenant",
            created.id,
            1,
            types::TENANT_CREATED,
            &payload,
            now,
        )],
    )
    .await?;
    Ok(created)
}

pub async fn get(executor: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Tenant, Error> {
    let row: Option<TenantRow> =
        sqlx::query_as("SELECT id, slug, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(tenant).ok_or_else(|| error::tenant_not_found(id))?)
}

/// Tenants with id greater than `after`, by id; only `only` when given.
pub async fn list(
    pool: &PgPool,
    after: Option<Uuid>,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Tenant>, Error> {
    let rows: Vec<TenantRow> = sqlx::query_as(
        "SELECT id, slug, name, created_at FROM tenants
         WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid IS NULL OR id = $2)
         ORDER BY id LIMIT $3",
    )
    .bind(after)
    .bind(only)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(tenant).collect())
}
