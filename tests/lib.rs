//! Helpers shared by the platform tests (`platform.rs`): the six services and the calls a
//! client makes to probe them.

use phoenix_runtime::ServiceSpec;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Every Phoenix service with the fully qualified gRPC service it must serve.
pub fn all_services() -> [(ServiceSpec, &'static str); 6] {
    [
        (
            phoenix_directory::spec(),
            "phoenix.directory.v1.DirectoryService",
        ),
        (phoenix_goals::spec(), "phoenix.goals.v1.GoalsService"),
        (
            phoenix_missions::spec(),
            "phoenix.missions.v1.MissionsService",
        ),
        (phoenix_ledger::spec(), "phoenix.ledger.v1.LedgerService"),
        (
            phoenix_coordinator::spec(),
            "phoenix.coordinator.v1.CoordinatorService",
        ),
        (
            phoenix_conversations::spec(),
            "phoenix.conversations.v1.ConversationsService",
        ),
    ]
}

/// What `grpc.health.v1.Health/Check` answers for `service` ("" = the whole server).
pub async fn health(channel: &Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check answers");
    ServingStatus::try_from(response.into_inner().status).expect("a known status")
}

/// Polls health until it reports `wanted`, for at most `limit`; returns what it saw last.
pub async fn wait_for_health(
    channel: &Channel,
    service: &str,
    wanted: ServingStatus,
    limit: std::time::Duration,
) -> ServingStatus {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = health(channel, service).await;
        if status == wanted || tokio::time::Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits (at most 10 s) for the whole server to report SERVING, and fails the test otherwise.
pub async fn assert_serving(channel: &Channel) {
    let status = wait_for_health(
        channel,
        "",
        ServingStatus::Serving,
        std::time::Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        status,
        ServingStatus::Serving,
        "the service never reported SERVING"
    );
}
