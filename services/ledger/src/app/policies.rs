//! Policies: set and ended under the tenant's policy gate, so every transfer was checked
//! against the policies in force at its time.

use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use uuid::Uuid;

use super::Ledger;
use super::tenants::existing_tenant;
use crate::domain::policy::{Policy, PolicySpec};
use crate::{error, store};

impl Ledger {
    /// Starts a policy once per key, ending the active one of the same kind and asset.
    pub async fn start_policy(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        spec: PolicySpec,
    ) -> Result<Policy, Error> {
        let policy: Policy = self
            .once(key, move |c| {
                Box::pin(async move {
                    existing_tenant(&mut *c, tenant_id).await?;
                    let now = store::policies::close_gate(c, tenant_id).await?;
                    let mut changes = Vec::new();
                    if let Some(ended) =
                        store::policies::end_active(c, tenant_id, &spec, now).await?
                    {
                        changes.push((ended, 2));
                    }
                    let created = store::policies::insert(c, tenant_id, &spec, now).await?;
                    changes.push((created.clone(), 1));
                    store::policies::append_changes(c, tenant_id, &changes, now).await?;
                    Ok(created)
                })
            })
            .await?;
        tracing::info!(policy_id = %policy.id, kind = policy.kind.as_str(), "policy set");
        Ok(policy)
    }

    /// Ends a policy once per key: NOT_FOUND if unknown, FAILED_PRECONDITION if it already ended.
    pub async fn end_policy(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Policy, Error> {
        self.once(key, move |c| {
            Box::pin(async move {
                existing_tenant(&mut *c, tenant_id).await?;
                let now = store::policies::close_gate(c, tenant_id).await?;
                let found = store::policies::get(c, tenant_id, id)
                    .await?
                    .ok_or_else(|| error::policy_not_found(id))?;
                found.require_active()?;
                let ended = store::policies::end(c, tenant_id, id, now).await?;
                store::policies::append_changes(c, tenant_id, &[(ended.clone(), 2)], now).await?;
                Ok(ended)
            })
        })
        .await
    }

    /// The tenant's active policies.
    pub async fn active_policies(&self, tenant_id: Uuid) -> Result<Vec<Policy>, Error> {
        existing_tenant(&self.pool, tenant_id).await?;
        store::policies::list_active(&self.pool, tenant_id).await
    }
}
