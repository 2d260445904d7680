//! The coordinator service: cross-context sagas with compensation and the prioritized event bus (seed 001).
//!
//! It boots through the shared runtime with health, reflection, metrics and its own schema
//! (`coordinator`). Its sagas run on the durable engine in [`saga`] (README: "The saga
//! engine").

pub mod api;
pub mod operations;
pub mod purchase;
pub mod saga;

use include_dir::{Dir, include_dir};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_server::{
    CoordinatorService, CoordinatorServiceServer,
};
use phoenix_proto::coordinator::v1::saga_service_server::SagaServiceServer;
use phoenix_runtime::stream::EventStream;
use phoenix_runtime::{GrpcServices, ServiceContext, ServiceSpec, limited};

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/coordinator");

/// The coordinator service, for the runtime.
pub fn spec() -> ServiceSpec {
    ServiceSpec::new("coordinator", &MIGRATIONS, build)
}

fn build(context: &ServiceContext) -> anyhow::Result<GrpcServices> {
    let events = EventStream::start(
        "coordinator",
        context.pool.clone(),
        context.shutdown.clone(),
    );
    let engine = saga::SagaEngine::new(
        context.pool.clone(),
        Some(events),
        saga::EngineConfig::from_env()?,
    );
    // Each operation registers its saga definitions here, before recovery starts, so that a
    // saga adopted from a crashed replica finds its definition:
    //     engine.register(purchase::definition(context)?)?;
    let purchases = purchases(context, &engine)?;
    // TakeDecision, ClaimMissionReward, ReactToContent, SubscribeVip, AccessVipNarrative
    // (module `operations`) register theirs in `Operations::new`:
    let operations = operations::Operations::new(
        engine.clone(),
        context.pool.clone(),
        operations::participants::Participants::of(context)?,
        operations::settings::OperationsSettings::parse(&context.config.service_args)?,
    )?;
    engine.start_background(context.shutdown.clone());
    Ok(GrpcServices::new()
        .serve(limited!(
            context,
            CoordinatorServiceServer::new(CoordinatorApi {
                purchases,
                operations,
            })
        ))
        .serve(limited!(
            context,
            SagaServiceServer::new(api::sagas::SagaApi::new(engine.clone()))
        )))
}

/// Purchase's use case with its saga registered, when the ledger, narrative and directory
/// addresses are configured (`phoenix up` sets them); without them Purchase is UNAVAILABLE.
fn purchases(
    context: &ServiceContext,
    engine: &saga::SagaEngine,
) -> anyhow::Result<Option<purchase::Purchases>> {
    let peers = &context.config.peers;
    if ["ledger", "narrative", "directory"]
        .iter()
        .any(|peer| peers.url(peer).is_none())
    {
        tracing::warn!(
            "Purchase is off: PHOENIX_LEDGER_URL, _NARRATIVE_URL and _DIRECTORY_URL are needed"
        );
        return Ok(None);
    }
    let participants = purchase::participants::Participants::new(
        context.peer("ledger")?,
        context.peer("narrative")?,
    );
    engine.register(purchase::saga::definition(&participants))?;
    Ok(Some(purchase::Purchases {
        engine: engine.clone(),
        planner: purchase::Planner {
            participants,
            directory: phoenix_directory_client::DirectoryClient::new(
                context.peer("directory")?,
                phoenix_directory_client::ClientSettings::default(),
            ),
        },
    }))
}

/// The gRPC face of the context: one use-case call per RPC.
#[derive(Debug)]
struct CoordinatorApi {
    purchases: Option<purchase::Purchases>,
    operations: operations::Operations,
}

#[tonic::async_trait]
impl CoordinatorService for CoordinatorApi {
    async fn purchase(
        &self,
        request: tonic::Request<phoenix_proto::coordinator::v1::PurchaseRequest>,
    ) -> Result<tonic::Response<phoenix_proto::coordinator::v1::PurchaseResponse>, tonic::Status>
    {
        let purchases = self.purchases.as_ref().ok_or_else(|| {
            tonic::Status::from(phoenix_runtime::Error::unavailable(
                "PURCHASE_NOT_CONFIGURED",
                "this coordinator has no ledger, narrative or directory address configured",
                None,
            ))
        })?;
        purchase::api::purchase(purchases, request.into_inner())
            .await
            .map(tonic::Response::new)
            .map_err(tonic::Status::from)
    }

    // The operations of module `operations`: one use case each.

    async fn take_decision(
        &self,
        request: tonic::Request<pb::TakeDecisionRequest>,
    ) -> Result<tonic::Response<pb::TakeDecisionResponse>, tonic::Status> {
        answer(self.operations.take_decision(request.get_ref()).await)
    }

    async fn claim_mission_reward(
        &self,
        request: tonic::Request<pb::ClaimMissionRewardRequest>,
    ) -> Result<tonic::Response<pb::ClaimMissionRewardResponse>, tonic::Status> {
        answer(
            self.operations
                .claim_mission_reward(request.get_ref())
                .await,
        )
    }

    async fn react_to_content(
        &self,
        request: tonic::Request<pb::ReactToContentRequest>,
    ) -> Result<tonic::Response<pb::ReactToContentResponse>, tonic::Status> {
        answer(self.operations.react_to_content(request.get_ref()).await)
    }

    async fn subscribe_vip(
        &self,
        request: tonic::Request<pb::SubscribeVipRequest>,
    ) -> Result<tonic::Response<pb::SubscribeVipResponse>, tonic::Status> {
        answer(self.operations.subscribe_vip(request.get_ref()).await)
    }

    async fn access_vip_narrative(
        &self,
        request: tonic::Request<pb::AccessVipNarrativeRequest>,
    ) -> Result<tonic::Response<pb::AccessVipNarrativeResponse>, tonic::Status> {
        answer(
            self.operations
                .access_vip_narrative(request.get_ref())
                .await,
        )
    }

    async fn upsert_vip_plan(
        &self,
        request: tonic::Request<pb::UpsertVipPlanRequest>,
    ) -> Result<tonic::Response<pb::UpsertVipPlanResponse>, tonic::Status> {
        operations::plans::require_admin(&request)?;
        answer(self.operations.upsert_vip_plan(request.get_ref()).await)
    }

    async fn list_vip_plans(
        &self,
        _request: tonic::Request<pb::ListVipPlansRequest>,
    ) -> Result<tonic::Response<pb::ListVipPlansResponse>, tonic::Status> {
        answer(self.operations.list_vip_plans().await)
    }
}

/// A use case's answer on the wire.
fn answer<T>(
    result: Result<T, phoenix_runtime::Error>,
) -> Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}
