//! PolicyService: the tenant's circuit breakers, and the dry run.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::policy_service_server::PolicyService;
use tonic::{Request, Response, Status};

use super::{Ledger, invalid, request_key, tenant_of, uuid_field};
use crate::domain::RefusalKind;
use crate::domain::ledger::{Linking, Operation};
use crate::domain::policy::{Policy, PolicyKind, PolicySpec};
use crate::error::{LedgerError, code_name};
use crate::proto;
use crate::store;

#[tonic::async_trait]
impl PolicyService for Ledger {
    async fn set_policy(
        &self,
        request: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::SetPolicyResponse>, Status> {
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
        let body = request.get_ref();
        let kind = match pb::PolicyKind::try_from(body.kind) {
            Ok(pb::PolicyKind::MaxTransferAmount) => Some(PolicyKind::MaxTransferAmount),
            Ok(pb::PolicyKind::MaxDailyDebits) => Some(PolicyKind::MaxDailyDebits),
            Ok(pb::PolicyKind::KillSwitch) => Some(PolicyKind::KillSwitch),
            Ok(pb::PolicyKind::Unspecified) | Err(_) => None,
        };
        let spec = PolicySpec::parse(kind, &body.asset_code, body.limit)
            .map_err(|refusal| invalid(vec![refusal]))?;
        let key = request_key(
            tenant_id,
            &body.idempotency_key,
            "PolicyService/SetPolicy",
            body,
        )?;
        let policy: Policy =
            store::once(&self.pool, &key, self.settings.idempotency_ttl, move |c| {
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
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
        let body = request.get_ref();
        let id = uuid_field("policy_id", &body.policy_id)?;
        let key = request_key(
            tenant_id,
            &body.idempotency_key,
            "PolicyService/DisablePolicy",
            body,
        )?;
        let policy: Policy =
            store::once(&self.pool, &key, self.settings.idempotency_ttl, move |c| {
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
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
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
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id)?;
        let spec = super::ledger::transfer_spec(request.get_ref().transfer.as_ref(), "transfer")?;
        // The real posting path, rolled back: same locks, balances and policies, nothing kept.
        let mut transaction = self.pool.begin().await.map_err(LedgerError::from)?;
        let decided = store::ledger::decide(
            &mut transaction,
            tenant_id,
            None,
            &[Operation::Transfer(spec)],
            Linking::Linked,
        )
        .await;
        transaction.rollback().await.map_err(LedgerError::from)?;
        let failure = match decided {
            Ok(_) => None,
            Err(LedgerError::RefusedInBatch { refusal, .. })
                if refusal.kind == RefusalKind::Invalid =>
            {
                return Err(LedgerError::Refused(refusal.within("transfer")).into());
            }
            Err(LedgerError::RefusedInBatch { refusal, .. }) => Some(pb::TransferFailure {
                reason: refusal.reason,
                message: refusal.message,
                code: code_name(refusal.kind).to_owned(),
            }),
            Err(other) => return Err(other.into()),
        };
        Ok(Response::new(pb::ValidateTransferResponse {
            accepted: failure.is_none(),
            failure,
        }))
    }
}
