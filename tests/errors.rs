//! Errors as the tools our users debug with see them: every detail type resolvable through the
//! server's reflection (as grpcurl and buf curl resolve them), every violated field listed at
//! once with its own reason, bounded sizes whatever the input, and UNAVAILABLE at once while
//! the database is known to be down.

use std::time::{Duration, Instant};

use phoenix_platform_tests::{
    ERROR_DETAIL_TYPES, all_services, assert_serving, descriptors_from_reflection, details_as_json,
    wait_for_health,
};
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::directory::v1::{CreateUserRequest, GetUserRequest};
use phoenix_proto::ledger::v1::CreateTenantRequest;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_proto::missions::v1::{CreateBoardRequest, GetBoardRequest};
use phoenix_testkit::{error_of, field_reasons, spawn, spawn_with};
use serde_json::Value;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// A GetUser of a user nobody created.
fn unknown_user() -> GetUserRequest {
    GetUserRequest {
        id: uuid::Uuid::new_v4().to_string(),
    }
}

fn registered(name: &str) -> phoenix_runtime::ServiceSpec {
    (phoenix_registry::find(name).expect("registered").spec)()
}

/// The detail of `type_name` among the JSON-rendered details.
fn detail<'a>(details: &'a [Value], type_name: &str) -> &'a Value {
    details
        .iter()
        .find(|d| d["@type"] == format!("type.googleapis.com/{type_name}"))
        .unwrap_or_else(|| panic!("no {type_name} among {details:?}"))
}

/// (field, reason) of each violation of a rendered BadRequest.
fn violations(bad_request: &Value) -> Vec<(String, String)> {
    bad_request["fieldViolations"]
        .as_array()
        .expect("fieldViolations")
        .iter()
        .map(|v| {
            (
                v["field"].as_str().unwrap_or_default().to_owned(),
                v["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_service_serves_the_descriptors_of_the_error_details_it_sends() {
    for (spec, _) in all_services() {
        let service = spawn(spec).await;
        let symbols: Vec<&str> = ERROR_DETAIL_TYPES
            .into_iter()
            .chain(["google.rpc.Status"])
            .collect();
        let pool = descriptors_from_reflection(&service.channel, &symbols).await;
        for type_name in symbols {
            assert!(
                pool.get_message_by_name(type_name).is_some(),
                "{}: {type_name} does not resolve through reflection",
                spec.name
            );
        }
        // grpcurl 1.8.6 asks the older v1alpha reflection service.
        assert!(
            phoenix_platform_tests::file_containing_symbol_v1alpha(
                &service.channel,
                "google.rpc.ErrorInfo"
            )
            .await
                > 0,
            "{}: no v1alpha descriptor for google.rpc.ErrorInfo",
            spec.name
        );
    }
}

#[tokio::test]
async fn a_bad_directory_request_decodes_to_every_field_with_its_reason() {
    let service = spawn(registered("directory")).await;
    let pool = descriptors_from_reflection(&service.channel, &ERROR_DETAIL_TYPES).await;
    let status = DirectoryServiceClient::new(service.channel.clone())
        .create_user(CreateUserRequest {
            email: "not-an-email".into(),
            display_name: String::new(),
            time_zone: "Mars/Olympus_Mons".into(),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = details_as_json(&status, &pool);
    let info = detail(&details, "google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "INVALID_EMAIL");
    assert_eq!(info["domain"], "directory.phoenix");
    assert_eq!(
        violations(detail(&details, "google.rpc.BadRequest")),
        [
            ("email".to_owned(), "INVALID_EMAIL".to_owned()),
            ("display_name".to_owned(), "REQUIRED".to_owned()),
            ("time_zone".to_owned(), "INVALID_TIME_ZONE".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_bad_ledger_request_lists_the_missing_slug_and_key_at_once() {
    let service = spawn(registered("ledger")).await;
    let pool = descriptors_from_reflection(&service.channel, &ERROR_DETAIL_TYPES).await;
    let status = LedgerServiceClient::new(service.channel.clone())
        .create_tenant(CreateTenantRequest {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = details_as_json(&status, &pool);
    let found = violations(detail(&details, "google.rpc.BadRequest"));
    let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(fields, ["slug", "idempotency_key"]);
    assert_eq!(found[1].1, "IDEMPOTENCY_KEY_REQUIRED");
    let info = detail(&details, "google.rpc.ErrorInfo");
    assert_eq!(
        info["reason"],
        Value::from(found[0].1.clone()),
        "the first violation's reason"
    );
    assert_ne!(info["reason"], "INVALID_ARGUMENT");
    assert_eq!(info["domain"], "ledger.phoenix");
}

#[tokio::test]
async fn a_bad_missions_request_lists_every_field() {
    let service = spawn(registered("missions")).await;
    let pool = descriptors_from_reflection(&service.channel, &ERROR_DETAIL_TYPES).await;
    let status = MissionsServiceClient::new(service.channel.clone())
        .create_board(CreateBoardRequest {
            user_id: "not-a-uuid".into(),
            season_id: String::new(),
            time_zone: "Mars/Olympus_Mons".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = details_as_json(&status, &pool);
    let fields: Vec<String> = violations(detail(&details, "google.rpc.BadRequest"))
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["user_id", "season_id", "time_zone"]);
    assert_eq!(
        detail(&details, "google.rpc.ErrorInfo")["domain"],
        "missions.phoenix"
    );
}

/// Encoded details and message of an error stay within what every gRPC client accepts in
/// trailers (C-core: 8 KiB soft, 16 KiB hard), however large the input that caused it.
#[track_caller]
fn assert_small(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.details().len() < 4096,
        "{} bytes of details",
        status.details().len()
    );
    assert!(
        status.message().len() <= 512,
        "{} bytes of message",
        status.message().len()
    );
    let read = error_of(status);
    assert!(
        read.violations.iter().any(|v| v.field == field),
        "{field} is named: {:?}",
        read.violations
    );
    assert!(
        read.violations
            .iter()
            .all(|v| v.description.contains("characters") || v.description.len() < 200),
        "echoed values are cut: {:?}",
        read.violations
    );
}

#[tokio::test]
async fn huge_invalid_inputs_give_small_errors() {
    let huge = "x".repeat(20_000);
    let directory = spawn(registered("directory")).await;
    let status = DirectoryServiceClient::new(directory.channel.clone())
        .get_user(GetUserRequest { id: huge.clone() })
        .await
        .expect_err("not a uuid");
    assert_small(&status, "id");

    let missions = spawn(registered("missions")).await;
    let mut boards = MissionsServiceClient::new(missions.channel.clone());
    let status = boards
        .get_board(GetBoardRequest {
            user_id: huge.clone(),
            season_id: "s1".into(),
        })
        .await
        .expect_err("not a uuid");
    assert_small(&status, "user_id");
    let status = boards
        .create_board(CreateBoardRequest {
            user_id: uuid::Uuid::new_v4().to_string(),
            season_id: "s1".into(),
            time_zone: huge,
        })
        .await
        .expect_err("not a zone");
    assert_small(&status, "time_zone");
}

#[tokio::test]
async fn while_the_database_is_known_down_calls_answer_unavailable_at_once() {
    let service = spawn_with(registered("directory"), |config| {
        config.db_acquire_timeout = Duration::from_secs(5);
    })
    .await;
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

    let started = Instant::now();
    let status = DirectoryServiceClient::new(service.channel.clone())
        .get_user(unknown_user())
        .await
        .expect_err("no database");
    let waited = started.elapsed();
    let read = error_of(&status);
    assert_eq!(
        (read.code, read.reason.as_str()),
        (Code::Unavailable, "DATABASE_UNAVAILABLE")
    );
    assert!(
        read.retry_delay.is_some(),
        "RetryInfo says when to come back"
    );
    assert!(
        waited < Duration::from_secs(2),
        "answered after {waited:?}, not after the 5 s acquire timeout"
    );
    assert_eq!(
        field_reasons(&status),
        Vec::<(String, String)>::new(),
        "no field is at fault"
    );
}

#[tokio::test]
async fn a_database_that_comes_back_is_served_again() {
    let service = spawn(registered("directory")).await;
    assert_serving(&service.channel).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());

    service.database.set_accepting_connections(false).await;
    let status = wait_for_health(
        &service.channel,
        "",
        ServingStatus::NotServing,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status, ServingStatus::NotServing);
    let down = client
        .get_user(unknown_user())
        .await
        .expect_err("no database");
    assert_eq!(error_of(&down).reason, "DATABASE_UNAVAILABLE");

    service.database.set_accepting_connections(true).await;
    let status = wait_for_health(
        &service.channel,
        "",
        ServingStatus::Serving,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        status,
        ServingStatus::Serving,
        "health finds the database again"
    );
    let back = client
        .get_user(unknown_user())
        .await
        .expect_err("an unknown user");
    let read = error_of(&back);
    assert_eq!(
        (read.code, read.reason.as_str()),
        (Code::NotFound, "USER_NOT_FOUND"),
        "calls reach the database again"
    );
}

#[tokio::test]
async fn connections_the_server_ended_while_idle_are_replaced_before_use() {
    let service = spawn(registered("directory")).await;
    assert_serving(&service.channel).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    client
        .get_user(unknown_user())
        .await
        .expect_err("an unknown user");
    // The server ends every session of the service's pool but the one asking (a restart, a
    // proxy's idle timeout), and the pool's connections then sit idle past the ping threshold.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name = 'phoenix-directory' AND backend_type = 'client backend'",
    )
    .fetch_all(&service.pool)
    .await
    .expect("sessions ended");
    assert!(ended.iter().all(|&ended| ended), "{ended:?}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Connections idle that long are pinged before use, and sqlx checks every connection it
    // takes back: whatever the pool held, calls reach the database on live connections.
    for _ in 0..4 {
        let status = client
            .get_user(unknown_user())
            .await
            .expect_err("an unknown user");
        let read = error_of(&status);
        assert_eq!(
            (read.code, read.reason.as_str()),
            (Code::NotFound, "USER_NOT_FOUND"),
            "the call reached the database on a live connection"
        );
    }
}

#[tokio::test]
async fn a_busy_pool_does_not_turn_the_service_away() {
    let service = spawn_with(registered("directory"), |config| {
        config.db_max_connections = 2;
        config.db_acquire_timeout = Duration::from_millis(300);
    })
    .await;
    assert_serving(&service.channel).await;
    // Every connection of the service's pool is taken, for longer than several health checks.
    let held = [
        service.pool.acquire().await.expect("a connection"),
        service.pool.acquire().await.expect("a connection"),
    ];
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        phoenix_platform_tests::health(&service.channel, "").await,
        ServingStatus::Serving,
        "a busy pool is not a database outage"
    );
    let started = Instant::now();
    let status = DirectoryServiceClient::new(service.channel.clone())
        .get_user(unknown_user())
        .await
        .expect_err("no connection free");
    assert_eq!(error_of(&status).reason, "DATABASE_UNAVAILABLE");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the call waited for a connection, it was not refused as if the database were down"
    );
    drop(held);
}

/// A request prost cannot decode (here a `Struct` nested past its recursion limit) is the
/// caller's malformed input: INVALID_ARGUMENT `MALFORMED_MESSAGE`, not tonic's INTERNAL.
#[tokio::test]
async fn an_undecodable_request_is_invalid_argument_not_internal() {
    use prost_types::{Struct, Value as PbValue, value::Kind};
    let service = spawn(registered("directory")).await;
    let mut nested = PbValue {
        kind: Some(Kind::StringValue("deep".into())),
    };
    for _ in 0..200 {
        nested = PbValue {
            kind: Some(Kind::StructValue(Struct {
                fields: [("a".to_owned(), nested)].into_iter().collect(),
            })),
        };
    }
    let Some(Kind::StructValue(metadata)) = nested.kind else {
        unreachable!("built as a struct")
    };
    let status = DirectoryServiceClient::new(service.channel.clone())
        .create_user(CreateUserRequest {
            email: "deep@example.com".into(),
            display_name: "Deep".into(),
            time_zone: "UTC".into(),
            metadata: Some(metadata),
            ..Default::default()
        })
        .await
        .expect_err("too deep to decode");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(error_of(&status).reason, "MALFORMED_MESSAGE");
    assert!(
        status.message().contains("recursion limit"),
        "{}",
        status.message()
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(users, 0, "nothing written");
}
