//! The platform, tested as a client sees it: every service booted through the shared runtime
//! on a real PostgreSQL, probed over gRPC.

use std::time::Duration;

use phoenix_platform_tests::{all_services, assert_serving, health, wait_for_health};
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::directory::v1::{CreateUserRequest, GetUserRequest};
use phoenix_runtime::migrate::Migrator;
use phoenix_testkit::{TestDatabase, spawn, spawn_with};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

/// Sends one reflection request over reflection `v1` or `v1alpha` (the same messages in two
/// packages) and returns its one answer.
macro_rules! reflect {
    ($version:ident, $channel:expr, $request:ident($argument:expr)) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::$request($argument)),
        };
        ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::once(request))
            .await
            .expect("reflection answers")
            .into_inner()
            .message()
            .await
            .expect("a response")
            .and_then(|response| response.message_response)
    }};
}

async fn list_services_v1(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    match reflect!(v1, channel, ListServices(String::new())) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

async fn list_services_v1alpha(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    match reflect!(v1alpha, channel, ListServices(String::new())) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

/// How many descriptors the file defining `symbol` comes with, as grpcurl asks before a call.
async fn file_containing_symbol(channel: tonic::transport::Channel, symbol: &str) -> usize {
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    match reflect!(v1, channel, FileContainingSymbol(symbol.to_owned())) {
        Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto.len(),
        other => panic!("expected descriptors for {symbol}, got {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_each_services_contract_on_v1_and_v1alpha() {
    for (spec, grpc_service) in all_services() {
        let service = spawn(spec).await;
        for listed in [
            list_services_v1(service.channel.clone()).await,
            list_services_v1alpha(service.channel.clone()).await,
        ] {
            assert!(
                listed.iter().any(|s| s == grpc_service),
                "{}: {grpc_service} missing from {listed:?}",
                spec.name
            );
            assert!(
                listed.iter().any(|s| s == "grpc.health.v1.Health"),
                "{}: health missing from {listed:?}",
                spec.name
            );
            // A service may serve several services of its own package, never another's.
            let package = grpc_service
                .rsplit_once('.')
                .map_or("", |(package, _)| package);
            let others: Vec<_> = listed
                .iter()
                .filter(|s| s.starts_with("phoenix.") && !s.starts_with(&format!("{package}.")))
                .collect();
            assert!(
                others.is_empty(),
                "{} advertises services it does not serve: {others:?}",
                spec.name
            );
        }
        assert!(
            file_containing_symbol(service.channel.clone(), grpc_service).await > 0,
            "{}: no descriptor for {grpc_service}",
            spec.name
        );
    }
}

#[tokio::test]
async fn every_service_reports_serving_once_its_database_answers() {
    for (spec, grpc_service) in all_services() {
        let service = spawn(spec).await;
        for name in ["", grpc_service] {
            let status = wait_for_health(
                &service.channel,
                name,
                ServingStatus::Serving,
                Duration::from_secs(10),
            )
            .await;
            assert_eq!(
                status,
                ServingStatus::Serving,
                "{} health for {name:?}",
                spec.name
            );
        }
    }
}

#[tokio::test]
async fn health_turns_not_serving_when_the_database_goes_away() {
    let service = spawn(phoenix_directory::spec()).await;
    assert_serving(&service.channel).await;

    service.database.drop_database().await;

    let status = wait_for_health(
        &service.channel,
        "",
        ServingStatus::NotServing,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status, ServingStatus::NotServing);
    let status = health(&service.channel, "phoenix.directory.v1.DirectoryService").await;
    assert_eq!(status, ServingStatus::NotServing);
}

#[tokio::test]
async fn health_turns_not_serving_as_soon_as_shutdown_begins() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.shutdown_grace = Duration::from_secs(3)
    })
    .await;
    assert_serving(&service.channel).await;

    service.begin_shutdown();

    // Within the grace period the listener is still open and reports NOT_SERVING.
    let status = wait_for_health(
        &service.channel,
        "",
        ServingStatus::NotServing,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(status, ServingStatus::NotServing);
    service.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_the_listener_within_its_bound() {
    let service = spawn(phoenix_directory::spec()).await;
    let addr = service.addr;
    let started = std::time::Instant::now();
    service.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener still accepts after shutdown"
    );
}

/// GetUser of an unknown user with `grpc-timeout` set to `timeout`, sent by a plain HTTP/2
/// client: tonic's own channel would enforce the deadline itself and give up before the server
/// answers, and these tests are about the server's answer.
async fn get_user_with_grpc_timeout(
    service: &phoenix_testkit::TestService,
    timeout: &'static str,
) -> tonic::Status {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let mut request = tonic::Request::new(GetUserRequest {
        id: uuid::Uuid::new_v4().to_string(),
    });
    request
        .metadata_mut()
        .insert("grpc-timeout", timeout.parse().expect("header"));
    DirectoryServiceClient::with_origin(http, service.url().parse().expect("uri"))
        .get_user(request)
        .await
        .expect_err("an unknown user is never found, so every outcome here is an error")
}

#[tokio::test]
async fn a_call_whose_deadline_has_passed_gets_deadline_exceeded() {
    let service = spawn(phoenix_directory::spec()).await;

    let status = get_user_with_grpc_timeout(&service, "1n").await;

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status
            .get_error_details()
            .error_info()
            .expect("error info")
            .reason,
        "DEADLINE_EXCEEDED"
    );
}

#[tokio::test]
async fn a_malformed_grpc_timeout_is_invalid_argument() {
    let service = spawn(phoenix_directory::spec()).await;
    let status = get_user_with_grpc_timeout(&service, "soon").await;
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_error_details()
        .bad_request()
        .expect("field violations")
        .field_violations
        .clone();
    assert_eq!(violations[0].field, "grpc-timeout");
}

#[tokio::test]
async fn a_malformed_request_gets_invalid_argument_with_field_violations() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());

    let status = client
        .create_user(CreateUserRequest {
            email: "not-an-email".into(),
            display_name: String::new(),
            time_zone: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("invalid");

    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["email", "display_name"]);
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("INVALID_EMAIL", "directory.phoenix"),
        "the first violation's own reason, not a generic one"
    );

    let status = client
        .get_user(GetUserRequest { id: "42".into() })
        .await
        .expect_err("not a uuid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_error_details()
            .bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .field,
        "id"
    );

    // Nothing was written by the rejected call.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(users, 0);
}

#[tokio::test]
async fn a_trace_id_sent_by_the_client_is_continued_by_the_server() {
    let service = spawn(phoenix_directory::spec()).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(CreateUserRequest {
        email: "trace@example.com".into(),
        display_name: "Trace".into(),
        time_zone: String::new(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{client_span}-01")
            .parse()
            .expect("header"),
    );
    request
        .metadata_mut()
        .insert("x-request-id", "req-trace-1".parse().expect("header"));

    let response = DirectoryServiceClient::new(service.channel.clone())
        .create_user(request)
        .await
        .expect("created");

    let traceparent = response
        .metadata()
        .get("traceparent")
        .expect("the server writes its trace context")
        .to_str()
        .expect("ascii");
    let parts: Vec<_> = traceparent.split('-').collect();
    assert_eq!(parts[1], trace_id, "same trace: {traceparent}");
    assert_ne!(
        parts[2], client_span,
        "the server's own span: {traceparent}"
    );
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .expect("request id echoed"),
        "req-trace-1"
    );
}

#[tokio::test]
async fn a_call_without_trace_context_starts_a_new_trace() {
    let service = spawn(phoenix_directory::spec()).await;
    let status = DirectoryServiceClient::new(service.channel.clone())
        .get_user(GetUserRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("unknown user");
    assert_eq!(status.code(), Code::NotFound);
    let traceparent = status
        .metadata()
        .get("traceparent")
        .expect("trace context on errors too")
        .to_str()
        .expect("ascii");
    assert_ne!(
        traceparent.split('-').nth(1),
        Some("00000000000000000000000000000000")
    );
    assert!(
        status.metadata().get("x-request-id").is_some(),
        "a request id is assigned"
    );
}

#[tokio::test]
async fn migrations_round_trip_up_down_status_and_history_for_every_service() {
    for (spec, _) in all_services() {
        let database = TestDatabase::create().await;
        let pool = database.pool(spec.name).await;
        let set = spec.migration_set().expect("well-formed migrations");
        let migrator = Migrator::new(&set, &pool);
        let all = set.migrations().len();
        assert!(all > 0, "{} has no migration", spec.name);

        let status = migrator.status().await.expect("status");
        assert_eq!(
            (status.current, status.pending),
            (None, all),
            "{}: fresh database",
            spec.name
        );

        let planned = migrator.up(None, true).await.expect("dry run");
        assert_eq!(planned.len(), all);
        assert_eq!(
            migrator.status().await.expect("status").current,
            None,
            "{}: a dry run applies nothing",
            spec.name
        );

        assert_eq!(migrator.up(None, false).await.expect("up").len(), all);
        let status = migrator.status().await.expect("status");
        assert_eq!(
            (status.current, status.head, status.pending),
            (set.head(), set.head(), 0),
            "{}: at head",
            spec.name
        );
        assert!(
            migrator
                .history()
                .await
                .expect("history")
                .iter()
                .all(|h| h.applied_at.is_some() && !h.drifted)
        );
        assert!(
            migrator.up(None, false).await.expect("up again").is_empty(),
            "{}: up is idempotent",
            spec.name
        );

        assert_eq!(migrator.down(all, false).await.expect("down").len(), all);
        let status = migrator.status().await.expect("status");
        assert_eq!(
            (status.current, status.pending),
            (None, all),
            "{}: all the way down",
            spec.name
        );
        assert!(
            migrator
                .history()
                .await
                .expect("history")
                .iter()
                .all(|h| h.applied_at.is_none())
        );

        assert_eq!(migrator.up(Some(1), false).await.expect("up to 1").len(), 1);
        assert_eq!(
            migrator.status().await.expect("status").current,
            Some(1),
            "{}: up to a version",
            spec.name
        );
        pool.close().await;
    }
}

#[tokio::test]
async fn down_really_removes_what_up_created() {
    let spec = phoenix_directory::spec();
    let database = TestDatabase::create().await;
    let pool = database.pool(spec.name).await;
    let set = spec.migration_set().expect("migrations");
    let migrator = Migrator::new(&set, &pool);
    let users_table = "SELECT to_regclass('directory.users') IS NOT NULL";

    migrator.up(None, false).await.expect("up");
    assert!(
        sqlx::query_scalar::<_, bool>(users_table)
            .fetch_one(&pool)
            .await
            .expect("query")
    );
    // Every migration of the directory, down: the first one created the table.
    let applied = set.migrations().len();
    migrator.down(applied, false).await.expect("down");
    assert!(
        !sqlx::query_scalar::<_, bool>(users_table)
            .fetch_one(&pool)
            .await
            .expect("query")
    );
}

#[tokio::test]
async fn a_migration_that_fails_leaves_nothing_half_applied() {
    let dir = std::env::temp_dir().join(format!("phoenix-bad-migration-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("0001_ok.up.sql"), "CREATE TABLE kept (id int);").expect("write");
    std::fs::write(dir.join("0001_ok.down.sql"), "DROP TABLE kept;").expect("write");
    std::fs::write(
        dir.join("0002_broken.up.sql"),
        "CREATE TABLE half (id int); SELECT no_such_function();",
    )
    .expect("write");
    std::fs::write(dir.join("0002_broken.down.sql"), "DROP TABLE half;").expect("write");
    let set = phoenix_runtime::migrate::MigrationSet::from_path("scratch", &dir).expect("set");
    let database = TestDatabase::create().await;
    let pool = database.pool("scratch").await;
    let migrator = Migrator::new(&set, &pool);

    let error = migrator
        .up(None, false)
        .await
        .expect_err("the second migration fails");

    assert!(
        error.to_string().contains("0002") || error.to_string().contains("migration 2"),
        "{error}"
    );
    assert_eq!(migrator.status().await.expect("status").current, Some(1));
    let half: bool = sqlx::query_scalar("SELECT to_regclass('scratch.half') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert!(!half, "the failed migration's table must be rolled back");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn with_authentication_on_calls_need_a_valid_bearer_token() {
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.auth.hs256_secret = Some(secret.to_owned())
    })
    .await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    let get = || {
        tonic::Request::new(GetUserRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
    };
    let token = |key: &str| {
        phoenix_testkit::bearer(
            key,
            serde_json::json!({"sub": "svc-goals", "tenant": "t1", "roles": ["reader"]}),
        )
    };

    let missing = client.get_user(get()).await.expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(
        missing
            .get_error_details()
            .error_info()
            .expect("info")
            .reason,
        "TOKEN_MISSING"
    );

    let mut forged = get();
    forged.metadata_mut().insert(
        "authorization",
        token("another-secret-that-is-also-long-enough"),
    );
    assert_eq!(
        client
            .get_user(forged)
            .await
            .expect_err("bad signature")
            .code(),
        Code::Unauthenticated
    );

    let mut valid = get();
    valid.metadata_mut().insert("authorization", token(secret));
    assert_eq!(
        client
            .get_user(valid)
            .await
            .expect_err("unknown user")
            .code(),
        Code::NotFound,
        "authenticated calls reach the service"
    );

    assert_eq!(
        health(&service.channel, "").await,
        ServingStatus::Serving,
        "health needs no token"
    );
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_status_code() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    for _ in 0..3 {
        let _ = client
            .get_user(GetUserRequest {
                id: "not-a-uuid".into(),
            })
            .await;
    }
    let text = phoenix_runtime::metrics::global().render();
    let count = handled("GetUser", "InvalidArgument");
    assert!(
        count >= 3.0,
        "{count} GetUser/InvalidArgument counted in:\n{text}"
    );
    assert!(
        text.contains("phoenix_db_pool_max_connections{service=\"directory\"}"),
        "pool stats are exported"
    );
}

/// How many calls of `method` the metrics have counted with `code`.
fn handled(method: &str, code: &str) -> f64 {
    let text = phoenix_runtime::metrics::global().render();
    text.lines()
        .filter(|l| {
            l.starts_with("phoenix_grpc_server_handled_total")
                && l.contains(&format!("grpc_method=\"{method}\""))
                && l.contains(&format!("grpc_code=\"{code}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |total, count| total + count)
}

/// The first 3 bytes of a gRPC frame's 5-byte header, and then nothing: the rest of the
/// request never comes.
struct HalfAMessage {
    sent: bool,
}

impl http_body::Body for HalfAMessage {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.sent {
            return std::task::Poll::Pending;
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            &[0, 0, 0],
        )))))
    }
}

/// A caller that dies halfway through sending its request (its process killed, its socket
/// closed, no RST_STREAM, no status) is a cancelled call, not a fault of the server: tonic
/// reads the broken request body as UNKNOWN, which would count and log as a server error on
/// every client crash.
#[tokio::test]
async fn a_caller_gone_halfway_through_its_request_is_counted_cancelled_not_unknown() {
    const METHOD: &str = "BatchGetCourses";
    let service = spawn(phoenix_directory::spec()).await;
    let cancelled = handled(METHOD, "Cancelled");
    let socket = std::net::TcpStream::connect(service.addr).expect("connect");
    // A second handle on the socket, to close it under hyper as the kernel does when a process dies.
    let killer = socket.try_clone().expect("a second handle");
    socket.set_nonblocking(true).expect("non-blocking");
    let socket = tokio::net::TcpStream::from_std(socket).expect("a tokio socket");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(socket),
    )
    .await
    .expect("an HTTP/2 connection");
    let connection = tokio::spawn(connection);
    let request = http::Request::post(format!(
        "{}/phoenix.directory.v1.DirectoryService/{METHOD}",
        service.url()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(HalfAMessage { sent: false })
    .expect("a request");
    let call = tokio::spawn(sender.send_request(request));
    // The server has the call once it counts one in flight for the directory.
    let in_flight = || {
        phoenix_runtime::metrics::global()
            .render()
            .lines()
            .any(|l| {
                l.starts_with("phoenix_grpc_server_in_flight{service=\"directory\"} ")
                    && !l.ends_with(" 0")
            })
    };
    let started = std::time::Instant::now();
    while !in_flight() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(in_flight(), "the server never saw the call");
    // Other tests' calls count too: give this one's HEADERS the time to arrive.
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The caller's process dies: its connection closes with nothing more said.
    killer
        .shutdown(std::net::Shutdown::Both)
        .expect("close the socket");
    let _ = call.await;
    connection.abort();

    let started = std::time::Instant::now();
    while handled(METHOD, "Cancelled") == cancelled && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        (
            handled(METHOD, "Cancelled") - cancelled,
            handled(METHOD, "Unknown")
        ),
        (1.0, 0.0),
        "the call is counted once, as cancelled:\n{}",
        phoenix_runtime::metrics::global()
            .render()
            .lines()
            .filter(|l| l.contains(METHOD) || l.contains("in_flight"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Holds an exclusive lock on `directory.users`, so every directory call touching it waits.
async fn lock_users_table(
    service: &phoenix_testkit::TestService,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = service.pool.begin().await.expect("begin");
    sqlx::raw_sql("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    lock
}

#[tokio::test]
async fn a_deadline_that_passes_while_the_call_runs_gets_deadline_exceeded() {
    let service = spawn(phoenix_directory::spec()).await;
    let lock = lock_users_table(&service).await;
    let started = std::time::Instant::now();
    let status = get_user_with_grpc_timeout(&service, "300m").await;

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at the deadline, not when the lock went: {:?}",
        started.elapsed()
    );
    lock.rollback().await.expect("unlock");
}

#[tokio::test]
async fn the_server_caps_deadlines_at_its_maximum() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.max_deadline = Duration::from_millis(300)
    })
    .await;
    let lock = lock_users_table(&service).await;
    let status = get_user_with_grpc_timeout(&service, "60S").await;

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    lock.rollback().await.expect("unlock");
}

#[tokio::test]
async fn past_the_concurrency_limit_calls_are_shed_with_resource_exhausted() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.max_concurrent_rpcs = 1
    })
    .await;
    let lock = lock_users_table(&service).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    let mut blocked_client = client.clone();
    let blocked = tokio::spawn(async move {
        blocked_client
            .create_user(CreateUserRequest {
                email: "first@example.com".into(),
                display_name: "First".into(),
                time_zone: String::new(),
                ..Default::default()
            })
            .await
    });
    // Let the first call take the only slot. The probe is answered before touching the
    // database, so a probe admitted first frees the slot at once instead of blocking.
    let mut shed = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match client
            .get_user(GetUserRequest {
                id: "rejected-before-the-database".into(),
            })
            .await
        {
            Err(status) if status.code() == Code::ResourceExhausted => {
                shed = Some(status);
                break;
            }
            _ => {}
        }
    }
    let shed = shed.expect("a call past the limit is shed");
    assert_eq!(
        shed.get_error_details().error_info().expect("info").reason,
        "OVERLOADED"
    );
    assert_eq!(
        health(&service.channel, "").await,
        ServingStatus::Serving,
        "probes are never shed"
    );

    lock.rollback().await.expect("unlock");
    blocked
        .await
        .expect("join")
        .expect("the first call completes once the lock is gone");
}

#[tokio::test]
async fn the_client_builder_carries_the_callers_trace_and_request_id_to_the_next_service() {
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let service = spawn(phoenix_directory::spec()).await;
    let channel = phoenix_runtime::client::ClientBuilder::new(service.url())
        .deadline(Duration::from_secs(2))
        .connect_lazy()
        .expect("channel");
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let mut incoming = tonic::metadata::MetadataMap::new();
    incoming.insert(
        "traceparent",
        format!("00-{trace_id}-b7ad6b7169203331-01")
            .parse()
            .expect("header"),
    );
    let caller_span = tracing::info_span!("caller_handler");
    let _ = caller_span.set_parent(phoenix_runtime::telemetry::extract_context(
        &incoming.into_headers(),
    ));

    // As if this ran inside a handler of another service serving request "upstream-42".
    let upstream = phoenix_runtime::middleware::RequestContext {
        service: "goals",
        request_id: "upstream-42".into(),
        deadline: std::time::Instant::now() + Duration::from_secs(10),
    };
    let call = async {
        DirectoryServiceClient::new(channel)
            .get_user(GetUserRequest {
                id: uuid::Uuid::new_v4().to_string(),
            })
            .await
    };
    let status = phoenix_runtime::middleware::CURRENT_CALL
        .scope(upstream, call.instrument(caller_span))
        .await
        .expect_err("unknown user");

    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.metadata().get("x-request-id").expect("request id"),
        "upstream-42"
    );
    let traceparent = status
        .metadata()
        .get("traceparent")
        .expect("trace context")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(trace_id),
        "one trace across the hop: {traceparent}"
    );
}

#[tokio::test]
async fn with_mutual_tls_only_clients_with_a_trusted_certificate_get_in() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let read = |name: &str| std::fs::read(fixtures.join(name)).expect("fixture");
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.tls.tls_cert_file = Some(fixtures.join("tls-server.pem"));
        config.tls.tls_key_file = Some(fixtures.join("tls-server-key.pem"));
        config.tls.tls_client_ca_file = Some(fixtures.join("tls-ca.pem"));
    })
    .await;
    let url = format!("https://localhost:{}", service.addr.port());
    let trust = || {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("tls-ca.pem")))
            .domain_name("localhost")
    };

    let trusted = Channel::from_shared(url.clone())
        .expect("url")
        .tls_config(trust().identity(Identity::from_pem(
            read("tls-client.pem"),
            read("tls-client-key.pem"),
        )))
        .expect("tls config")
        .connect()
        .await
        .expect("a client with a trusted certificate connects");
    assert_serving(&trusted).await;

    let anonymous = Channel::from_shared(url)
        .expect("url")
        .tls_config(trust())
        .expect("tls config")
        .connect()
        .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must not get in");
    let plaintext = health_over_plaintext(&service).await;
    assert!(plaintext.is_err(), "plaintext is refused on a TLS listener");
}

async fn health_over_plaintext(
    service: &phoenix_testkit::TestService,
) -> Result<(), tonic::Status> {
    tonic_health::pb::health_client::HealthClient::new(service.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

/// `phoenix audit coordinator` runs beside `phoenix up` on the same data folder: PostgreSQL
/// allows one server per folder, so a second Phoenix process joins the running one instead of
/// failing on its lock file, and starts its own once that one is gone.
#[tokio::test]
async fn a_second_process_joins_the_server_already_running_in_its_data_folder() {
    use phoenix_runtime::embedded::{Durability, EmbeddedPostgres, running_server_url};

    let mut config = phoenix_runtime::RuntimeConfig::defaults();
    config.embedded.data_dir =
        std::env::temp_dir().join(format!("phoenix-join-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = config.embedded.data_dir.clone();
    assert_eq!(running_server_url(&data_dir, "postgres"), None);

    let settings = config.embedded.clone();
    let server = tokio::task::spawn_blocking(move || {
        EmbeddedPostgres::start(&settings, &settings.data_dir, Durability::Ephemeral)
    })
    .await
    .expect("start task")
    .expect("the first process starts PostgreSQL");
    let url =
        running_server_url(server.data_dir(), "postgres").expect("the running server is found");
    assert_eq!(url, server.url("postgres"));
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("the second process connects");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert_eq!(one, 1);
    pool.close().await;

    let joined = phoenix_runtime::Database::open(&config)
        .await
        .expect("a second Database::open joins the running server");
    assert!(
        joined.embedded.is_none(),
        "it must not start (or later stop) a server of its own"
    );
    assert_eq!(
        joined.shared_url(),
        Some(server.url(phoenix_runtime::EMBEDDED_DATABASE).as_str())
    );

    let folder = server.data_dir().to_path_buf();
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .expect("stop task");
    assert_eq!(
        running_server_url(&folder, "postgres"),
        None,
        "a stopped server is not joined"
    );
    let _ = std::fs::remove_dir_all(&folder);
}
