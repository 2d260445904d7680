//! Helpers shared by the platform tests (`platform.rs`): every registered service and the calls
//! a client makes to probe them.

use phoenix_runtime::ServiceSpec;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Every Phoenix service, from the registry, with the fully qualified gRPC service it must serve.
pub fn all_services() -> Vec<(ServiceSpec, &'static str)> {
    phoenix_registry::SERVICES
        .iter()
        .map(|service| ((service.spec)(), service.grpc_service))
        .collect()
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

/// One reflection (v1) request and its answer, as grpcurl sends them.
async fn reflect(
    channel: &Channel,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> tonic_reflection::pb::v1::server_reflection_response::MessageResponse {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection answers")
        .into_inner()
        .message()
        .await
        .expect("a response")
        .and_then(|response| response.message_response)
        .expect("a message")
}

/// The descriptors of the files a reflection answer carries.
fn files_of(
    response: tonic_reflection::pb::v1::server_reflection_response::MessageResponse,
    asked: &str,
) -> Vec<prost_types::FileDescriptorProto> {
    use prost::Message;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    match response {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a descriptor")
            })
            .collect(),
        other => panic!("reflection has no descriptor for {asked}: {other:?}"),
    }
}

/// A descriptor pool built the way grpcurl builds one: the files that define `symbols`, asked
/// for by symbol over reflection, then every file they import, asked for by name, until nothing
/// is missing. Panics (fails the test) when reflection cannot serve one of them.
pub async fn descriptors_from_reflection(
    channel: &Channel,
    symbols: &[&str],
) -> prost_reflect::DescriptorPool {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let mut files = std::collections::BTreeMap::new();
    for symbol in symbols {
        let response = reflect(
            channel,
            MessageRequest::FileContainingSymbol((*symbol).to_owned()),
        )
        .await;
        for file in files_of(response, symbol) {
            files.insert(file.name().to_owned(), file);
        }
    }
    loop {
        let missing: Vec<String> = files
            .values()
            .flat_map(|file| file.dependency.iter().cloned())
            .filter(|dependency| !files.contains_key(dependency))
            .collect();
        let Some(name) = missing.into_iter().next() else {
            break;
        };
        let response = reflect(channel, MessageRequest::FileByFilename(name.clone())).await;
        for file in files_of(response, &name) {
            files.insert(file.name().to_owned(), file);
        }
    }
    let mut pool = prost_reflect::DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())
        .expect("the served descriptors form a consistent pool");
    pool
}

/// The details of an error status as grpcurl prints them: each `google.protobuf.Any` resolved by
/// its type name in `pool` and rendered as JSON, with its type under `@type`. A detail whose
/// type the pool lacks fails the test, as grpcurl would print "is not recognized".
pub fn details_as_json(
    status: &tonic::Status,
    pool: &prost_reflect::DescriptorPool,
) -> Vec<serde_json::Value> {
    use prost::Message;
    let decoded = tonic_types::pb::Status::decode(status.details()).expect("google.rpc.Status");
    decoded
        .details
        .iter()
        .map(|any| {
            let name = any
                .type_url
                .rsplit_once('/')
                .map_or(any.type_url.as_str(), |(_, name)| name);
            let descriptor = pool
                .get_message_by_name(name)
                .unwrap_or_else(|| panic!("{name} is not recognized through reflection"));
            let message = prost_reflect::DynamicMessage::decode(descriptor, any.value.as_slice())
                .expect("the detail decodes");
            let mut json = serde_json::to_value(&message).expect("renders as JSON");
            if let Some(object) = json.as_object_mut() {
                object.insert(
                    "@type".to_owned(),
                    serde_json::Value::from(any.type_url.clone()),
                );
            }
            json
        })
        .collect()
}

/// How many descriptors the v1alpha reflection service (the one grpcurl 1.8.6 asks) returns for
/// the file that defines `symbol`.
pub async fn file_containing_symbol_v1alpha(channel: &Channel, symbol: &str) -> usize {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    };
    let response = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection answers")
        .into_inner()
        .message()
        .await
        .expect("a response")
        .and_then(|response| response.message_response);
    match response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto.len(),
        _ => 0,
    }
}

/// The error details every Phoenix service sends.
pub const ERROR_DETAIL_TYPES: [&str; 5] = [
    "google.rpc.ErrorInfo",
    "google.rpc.BadRequest",
    "google.rpc.RetryInfo",
    "google.rpc.PreconditionFailure",
    "google.rpc.ResourceInfo",
];
