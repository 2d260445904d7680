//! The directory through its gRPC API, against a real server and database.

use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::directory::v1::{CreateUserRequest, GetUserRequest};
use phoenix_testkit::spawn;
use tonic::Code;
use tonic_types::StatusExt;

fn registration(email: &str, time_zone: &str) -> CreateUserRequest {
    CreateUserRequest {
        email: email.into(),
        display_name: "Ada Lovelace".into(),
        time_zone: time_zone.into(),
    }
}

#[tokio::test]
async fn a_registered_user_can_be_resolved_by_id() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());

    let created = client
        .create_user(registration(" Ada@Example.com ", "Europe/Madrid"))
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");
    let fetched = client
        .get_user(GetUserRequest {
            id: created.id.clone(),
        })
        .await
        .expect("found")
        .into_inner()
        .user
        .expect("user");

    assert_eq!(fetched, created);
    assert_eq!(fetched.email, "ada@example.com");
    assert_eq!(fetched.time_zone, "Europe/Madrid");
    assert!(fetched.create_time.is_some());
}

#[tokio::test]
async fn the_time_zone_defaults_to_utc() {
    let service = spawn(phoenix_directory::spec()).await;
    let user = DirectoryServiceClient::new(service.channel.clone())
        .create_user(registration("utc@example.com", ""))
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(user.time_zone, "UTC");
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    client
        .create_user(registration("grace@example.com", ""))
        .await
        .expect("first");

    let status = client
        .create_user(registration("GRACE@example.com", ""))
        .await
        .expect_err("taken");

    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        status
            .get_error_details()
            .error_info()
            .expect("info")
            .reason,
        "EMAIL_TAKEN"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(users, 1);
}

#[tokio::test]
async fn an_unknown_time_zone_is_invalid_argument_naming_the_field() {
    let service = spawn(phoenix_directory::spec()).await;
    let status = DirectoryServiceClient::new(service.channel.clone())
        .create_user(registration("tz@example.com", "Mars/Olympus_Mons"))
        .await
        .expect_err("unknown zone");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_error_details()
            .bad_request()
            .expect("violations")
            .field_violations[0]
            .field,
        "time_zone"
    );
}

#[tokio::test]
async fn an_unknown_user_is_not_found_with_its_id() {
    let service = spawn(phoenix_directory::spec()).await;
    let id = uuid::Uuid::new_v4().to_string();
    let status = DirectoryServiceClient::new(service.channel.clone())
        .get_user(GetUserRequest { id: id.clone() })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let info = status
        .get_error_details()
        .error_info()
        .expect("info")
        .clone();
    assert_eq!(info.reason, "USER_NOT_FOUND");
    assert_eq!(info.metadata.get("user_id"), Some(&id));
}

#[tokio::test]
async fn the_database_refuses_what_the_api_would_never_write() {
    let service = spawn(phoenix_directory::spec()).await;
    let insert = |email: &'static str, name: &'static str| {
        sqlx::query("INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)")
            .bind(uuid::Uuid::new_v4())
            .bind(email)
            .bind(name)
    };
    assert!(
        insert("Upper@Example.com", "x")
            .execute(&service.pool)
            .await
            .is_err(),
        "emails are stored lower-cased"
    );
    assert!(
        insert("ok@example.com", "")
            .execute(&service.pool)
            .await
            .is_err(),
        "display names are not empty"
    );
    insert("ok@example.com", "ok")
        .execute(&service.pool)
        .await
        .expect("a valid row");
}
