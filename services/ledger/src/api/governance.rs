//! PolicyService: the tenant's circuit breakers, and the dry run.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::policy_service_server::PolicyService;
use phoenix_runtime::idempotency::{self, RequestKey};
use phoenix_runtime::{Error, RefusalKind, Violations};
use tonic::{Request, Response, Status};

use super::{Ledger, tenant_of};
use crate::domain::ledger::{BatchRefusal, Linking, Operation};
use crate::domain::policy::{Policy, PolicyKind, PolicySpec};
use crate::proto;
use crate::store;

#[tonic::async_trait]
impl PolicyService for Ledger {
    async fn set_policy(
        &self,
        request: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::SetPolicyResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let kind = match pb::PolicyKind::try_from(body.kind) {
            Ok(pb::PolicyKind::MaxTransferAmount) => Some(PolicyKind::MaxTransferAmount),
            Ok(pb::PolicyKind::MaxDailyDebits) => Some(PolicyKind::MaxDailyDebits),
            Ok(pb::PolicyKind::KillSwitch) => Some(PolicyKind::KillSwitch),
            Ok(pb::PolicyKind::Unspecified) | Err(_) => None,
        };
        let spec = PolicySpec::parse(kind, &body.asset_code, body.limit, &mut violations);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(tenant_id.to_string(), key, "PolicyService/SetPolicy", body);
        let policy: Policy =
            idempotency::once(&self.pool, &key, self.settings.idempotency_ttl, move |c| {
                Box::pin(async move { store::policies::set(c, tenant_id, &spec).await })
            })
            .await?;
        tracing::info!(policy_id = %policy.id, kind = policy.kind.as_str(), "policy set");
        Ok(Response::new(pb::SetPolicyResponse {
            policy: Some(proto::policy(&policy)),
        }))
    }

    async fn disable_policy(
        &self,
        request: Request<pb::DisablePolicyRequest>,
    ) -> Result<Response<pb::DisablePolicyResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let id = violations.uuid("policy_id", &body.policy_id);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "PolicyService/DisablePolicy",
            body,
        );
        let policy: Policy =
            idempotency::once(&self.pool, &key, self.settings.idempotency_ttl, move |c| {
                Box::pin(async move { store::policies::disable(c, tenant_id, id).await })
            })
            .await?;
        Ok(Response::new(pb::DisablePolicyResponse {
            policy: Some(proto::policy(&policy)),
        }))
    }

    async fn list_active_policies(
        &self,
        request: Request<pb::ListActivePoliciesRequest>,
    ) -> Result<Response<pb::ListActivePoliciesResponse>, Status> {
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
        violations.finish()?;
        store::tenants::get(&self.pool, tenant_id).await?;
        let policies = store::policies::list_active(&self.pool, tenant_id).await?;
        Ok(Response::new(pb::ListActivePoliciesResponse {
            policies: policies.iter().map(proto::policy).collect(),
        }))
    }

    async fn validate_transfer(
        &self,
        request: Request<pb::ValidateTransferRequest>,
    ) -> Result<Response<pb::ValidateTransferResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let spec =
            super::ledger::transfer_spec(body.transfer.as_ref(), "transfer", &mut violations);
        violations.finish()?;
        // The real posting path, rolled back: same locks, balances and policies, nothing kept.
        let mut transaction = self.pool.begin().await.map_err(Error::from)?;
        let decided = store::ledger::decide(
            &mut transaction,
            tenant_id,
            None,
            &[Operation::Transfer(spec)],
            Linking::Linked,
        )
        .await;
        transaction.rollback().await.map_err(Error::from)?;
        let failure = match decided? {
            Ok(_) => None,
            Err(BatchRefusal { refusal, .. }) if refusal.kind == RefusalKind::Invalid => {
                return Err(refusal.within("transfer").into());
            }
            Err(BatchRefusal { refusal, .. }) => Some(pb::TransferFailure {
                code: refusal.kind.code_name().to_owned(),
                reason: refusal.reason.clone(),
                message: refusal.message.clone(),
            }),
        };
        Ok(Response::new(pb::ValidateTransferResponse {
            accepted: failure.is_none(),
            failure,
        }))
    }
}
