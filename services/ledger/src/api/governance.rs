//! PolicyService: the tenant's circuit breakers, and the dry run.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::policy_service_server::PolicyService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};

use super::{keyed, tenant_of};
use crate::app::Ledger;
use crate::domain::policy::{PolicyKind, PolicySpec};
use crate::proto;

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
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "PolicyService/SetPolicy",
            body,
        )?;
        let policy = self.start_policy(&key, tenant_id, spec).await?;
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
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "PolicyService/DisablePolicy",
            body,
        )?;
        let policy = self.end_policy(&key, tenant_id, id).await?;
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
        let policies = self.active_policies(tenant_id).await?;
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
        let failure = self
            .dry_run_transfer(tenant_id, spec)
            .await?
            .map(|refusal| pb::TransferFailure {
                code: refusal.kind.code_name().to_owned(),
                reason: refusal.reason,
                message: refusal.message,
            });
        Ok(Response::new(pb::ValidateTransferResponse {
            accepted: failure.is_none(),
            failure,
        }))
    }
}
