//! The fault layer (`PHOENIX_FAULT_*`) as a client sees it: a real service on a real database
//! answering UNAVAILABLE or stalling on purpose, and health and reflection untouched.

use std::sync::Arc;
use std::time::Duration;

use phoenix_platform_tests::{assert_serving, health};
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::directory::v1::{CreateUserRequest, GetUserRequest};
use phoenix_runtime::RuntimeConfig;
use phoenix_runtime::fault::StallPhase;
use phoenix_testkit::{TestDatabase, error_of, reason, spawn, spawn_with, test_config};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const CREATE_USER: &str = "phoenix.directory.v1.DirectoryService/CreateUser";

fn create_user(email: &str) -> tonic::Request<CreateUserRequest> {
    let mut request = tonic::Request::new(CreateUserRequest {
        email: email.into(),
        display_name: "Faulty".into(),
        time_zone: "Europe/Madrid".into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(300));
    request
}

/// A client whose only deadline is the `grpc-timeout` it sends: tonic's own channel would
/// enforce it too and give up (CANCELLED) before the server answers, and these tests are about
/// the server's answer.
fn deadline_client(
    service: &phoenix_testkit::TestService,
) -> DirectoryServiceClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
> {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    DirectoryServiceClient::with_origin(http, service.url().parse().expect("uri"))
}

async fn users(service: &phoenix_testkit::TestService) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&service.pool)
        .await
        .expect("count users")
}

async fn get_unknown_user(
    client: &mut DirectoryServiceClient<tonic::transport::Channel>,
) -> tonic::Status {
    client
        .get_user(GetUserRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("an unknown user")
}

#[tokio::test]
async fn off_by_default_calls_reach_their_handler() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    let status = get_unknown_user(&mut client).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn an_unavailable_fault_refuses_the_call_before_its_handler_with_a_clear_reason() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.faults.fault_unavailable_ratio = 1.0;
    })
    .await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());

    let status = client
        .create_user(create_user("refused@example.com"))
        .await
        .expect_err("every call is refused");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "FAULT_INJECTED");
    assert!(
        error_of(&status).retry_delay.is_some(),
        "the refusal says when to retry: {status:?}"
    );
    assert_eq!(users(&service).await, 0, "the handler never ran");
    // Probes keep telling the truth while the service misbehaves on purpose.
    assert_serving(&service.channel).await;
    assert_eq!(health(&service.channel, "").await, ServingStatus::Serving);
    let metrics = phoenix_runtime::metrics::global().render();
    assert!(
        metrics.lines().any(|line| line.starts_with(
            "phoenix_faults_injected_total{service=\"directory\",kind=\"unavailable\"}"
        )),
        "the fault is counted:\n{metrics}"
    );
}

#[tokio::test]
async fn reflection_is_never_faulted() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.faults.fault_unavailable_ratio = 1.0;
    })
    .await;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let answer = ServerReflectionClient::new(service.channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection answers")
        .into_inner()
        .message()
        .await
        .expect("a response");
    assert!(answer.is_some(), "reflection listed the services");
}

#[tokio::test]
async fn the_method_filter_faults_only_the_named_rpcs() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.faults.fault_unavailable_ratio = 1.0;
        config.faults.fault_methods = vec![CREATE_USER.to_owned()];
    })
    .await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());

    let refused = client
        .create_user(create_user("filtered@example.com"))
        .await
        .expect_err("CreateUser is faulted");
    let untouched = get_unknown_user(&mut client).await;

    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::Unavailable, "FAULT_INJECTED")
    );
    assert_eq!(untouched.code(), Code::NotFound, "{untouched:?}");
}

#[tokio::test]
async fn a_stall_after_the_handler_commits_the_effect_and_misses_the_deadline() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.faults.fault_stall_ratio = 1.0;
        config.faults.fault_methods = vec![CREATE_USER.to_owned()];
    })
    .await;
    let mut client = deadline_client(&service);

    let status = client
        .create_user(create_user("late@example.com"))
        .await
        .expect_err("the answer comes after the deadline");

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        users(&service).await,
        1,
        "the effect happened: only the answer was lost"
    );
}

#[tokio::test]
async fn a_stall_before_the_handler_misses_the_deadline_without_an_effect() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.faults.fault_stall_ratio = 1.0;
        config.faults.fault_stall_phase = StallPhase::Before;
        config.faults.fault_methods = vec![CREATE_USER.to_owned()];
    })
    .await;
    let mut client = deadline_client(&service);

    let status = client
        .create_user(create_user("never@example.com"))
        .await
        .expect_err("the deadline passes while the call waits");

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The handler never started: nothing can arrive late.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(users(&service).await, 0);
}

#[tokio::test]
async fn a_short_stall_only_slows_the_call() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.faults.fault_stall_ratio = 1.0;
        config.faults.fault_stall = Some(Duration::from_millis(120));
    })
    .await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());

    let started = std::time::Instant::now();
    let status = get_unknown_user(&mut client).await;

    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );
}

async fn start_error(configure: impl FnOnce(&mut RuntimeConfig)) -> String {
    let database = TestDatabase::create().await;
    let mut config = test_config();
    configure(&mut config);
    let pool = database.pool("directory").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    phoenix_runtime::server::start(
        &phoenix_directory::spec(),
        Arc::new(config),
        pool,
        listener,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .map(|_| ())
    .expect_err("refused at start")
    .to_string()
}

#[tokio::test]
async fn a_wrong_fault_configuration_stops_the_start_with_the_variable_named() {
    let too_much = start_error(|config| {
        config.faults.fault_unavailable_ratio = 0.6;
        config.faults.fault_stall_ratio = 0.6;
    })
    .await;
    assert!(
        too_much.contains("PHOENIX_FAULT_UNAVAILABLE_RATIO")
            && too_much.contains("must not exceed 1"),
        "{too_much}"
    );
    let typo = start_error(|config| {
        config.faults.fault_unavailable_ratio = 0.1;
        config.faults.fault_methods =
            vec!["phoenix.directory.v1.DirectoryService/CreateUsr".into()];
    })
    .await;
    assert!(
        typo.contains("PHOENIX_FAULT_METHODS") && typo.contains("CreateUsr"),
        "{typo}"
    );
}

#[test]
fn a_ratio_outside_zero_to_one_is_refused_by_the_parser() {
    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        runtime: RuntimeConfig,
    }
    let error =
        <Args as clap::Parser>::try_parse_from(["phoenix", "--fault-unavailable-ratio", "1.5"])
            .err()
            .expect("refused")
            .to_string();
    assert!(error.contains("between 0 and 1"), "{error}");
    let parsed = <Args as clap::Parser>::try_parse_from([
        "phoenix",
        "--fault-stall-ratio",
        "0.25",
        "--fault-stall",
        "2s",
        "--fault-stall-phase",
        "before",
    ])
    .expect("valid");
    assert_eq!(parsed.runtime.faults.fault_stall_ratio, 0.25);
    assert_eq!(
        parsed.runtime.faults.fault_stall,
        Some(Duration::from_secs(2))
    );
    assert_eq!(parsed.runtime.faults.fault_stall_phase, StallPhase::Before);
}
