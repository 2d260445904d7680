//! Tenants.

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::stream::{self, NewEvent};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::types;
use crate::domain::tenant::{NewTenant, Tenant};

/// Aggregate type of a tenant's stream.
pub const TENANT_STREAM: &str = "tenant";

type TenantRow = (Uuid, String, String, DateTime<Utc>);

fn tenant(row: TenantRow) -> Tenant {
    Tenant {
        id: row.0,
        slug: row.1,
        name: row.2,
        created_at: row.3,
    }
}

/// Inserts the tenant with its `TenantCreated` event, unless the slug is taken (`None`).
pub async fn insert(
    connection: &mut PgConnection,
    new: &NewTenant,
    now: DateTime<Utc>,
) -> Result<Option<Tenant>, Error> {
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
    let Some(created) = row.map(tenant) else {
        return Ok(None);
    };
    let payload = pb::TenantCreated {
        tenant: Some(crate::proto::tenant(&created)),
    };
    stream::append(
        connection,
        created.id,
        &[NewEvent::new(
            TENANT_STREAM,
            created.id,
            1,
            types::TENANT_CREATED,
            &payload,
            now,
        )],
    )
    .await?;
    Ok(Some(created))
}

pub async fn get(executor: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Tenant>, Error> {
    let row: Option<TenantRow> =
        sqlx::query_as("SELECT id, slug, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(tenant))
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
