//! The gRPC face of the operations: each RPC is one use case of [`Operations`], which
//! validates the whole request first (one INVALID_ARGUMENT listing every bad field).

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_server::CoordinatorService;
use tonic::{Request, Response, Status};

use super::Operations;

/// CoordinatorService over the operations.
#[derive(Debug, Clone)]
pub struct CoordinatorApi {
    pub operations: Operations,
}

#[tonic::async_trait]
impl CoordinatorService for CoordinatorApi {
    async fn take_decision(
        &self,
        request: Request<pb::TakeDecisionRequest>,
    ) -> Result<Response<pb::TakeDecisionResponse>, Status> {
        let answer = self.operations.take_decision(request.get_ref()).await?;
        Ok(Response::new(answer))
    }

    async fn claim_mission_reward(
        &self,
        request: Request<pb::ClaimMissionRewardRequest>,
    ) -> Result<Response<pb::ClaimMissionRewardResponse>, Status> {
        let answer = self
            .operations
            .claim_mission_reward(request.get_ref())
            .await?;
        Ok(Response::new(answer))
    }

    async fn react_to_content(
        &self,
        request: Request<pb::ReactToContentRequest>,
    ) -> Result<Response<pb::ReactToContentResponse>, Status> {
        let answer = self.operations.react_to_content(request.get_ref()).await?;
        Ok(Response::new(answer))
    }

    async fn subscribe_vip(
        &self,
        _request: Request<pb::SubscribeVipRequest>,
    ) -> Result<Response<pb::SubscribeVipResponse>, Status> {
        Err(Status::unimplemented("SubscribeVip is not built yet"))
    }

    async fn access_vip_narrative(
        &self,
        _request: Request<pb::AccessVipNarrativeRequest>,
    ) -> Result<Response<pb::AccessVipNarrativeResponse>, Status> {
        Err(Status::unimplemented("AccessVipNarrative is not built yet"))
    }

    async fn upsert_vip_plan(
        &self,
        _request: Request<pb::UpsertVipPlanRequest>,
    ) -> Result<Response<pb::UpsertVipPlanResponse>, Status> {
        Err(Status::unimplemented("UpsertVipPlan is not built yet"))
    }

    async fn list_vip_plans(
        &self,
        _request: Request<pb::ListVipPlansRequest>,
    ) -> Result<Response<pb::ListVipPlansResponse>, Status> {
        Err(Status::unimplemented("ListVipPlans is not built yet"))
    }
}
