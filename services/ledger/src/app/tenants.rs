//! Tenants: the root every other record belongs to.

use chrono::Utc;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use uuid::Uuid;

use super::Ledger;
use crate::domain::tenant::{NewTenant, Tenant};
use crate::{error, store};

impl Ledger {
    /// Creates a tenant once per key; a slug already taken is ALREADY_EXISTS.
    pub async fn register_tenant(&self, key: &RequestKey, new: NewTenant) -> Result<Tenant, Error> {
        let tenant: Tenant = self
            .once(key, move |c| {
                Box::pin(async move {
                    Ok(store::tenants::insert(c, &new, Utc::now())
                        .await?
                        .ok_or_else(|| error::tenant_exists(&new.slug))?)
                })
            })
            .await?;
        tracing::info!(tenant_id = %tenant.id, slug = %tenant.slug, "tenant created");
        Ok(tenant)
    }

    /// The tenant with `id`; NOT_FOUND when there is none.
    pub async fn tenant(&self, id: Uuid) -> Result<Tenant, Error> {
        existing_tenant(&self.pool, id).await
    }

    /// Tenants with id greater than `after`, by id; only `only` when given.
    pub async fn tenants(
        &self,
        after: Option<Uuid>,
        only: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Tenant>, Error> {
        store::tenants::list(&self.pool, after, only, limit).await
    }
}

/// The tenant with `id`, or TENANT_NOT_FOUND: what every call on a tenant checks first.
pub(crate) async fn existing_tenant(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Tenant, Error> {
    Ok(store::tenants::get(executor, id)
        .await?
        .ok_or_else(|| error::tenant_not_found(id))?)
}
