//! CreateBoard resolves its user in the directory (through phoenix-directory-client) when the
//! directory is configured: an unknown user is refused, and the board takes the user's zone.

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
mod support;

use phoenix_proto::directory::v1 as directory_pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_testkit::{
    TEST_SECRET, assert_refused, bearer, directory_user, field_reasons, signed, spawn, spawn_with,
};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn create_board_takes_the_directory_users_zone_and_refuses_an_unknown_user() {
    let directory = spawn(phoenix_directory::spec()).await;
    let url = directory.url();
    let missions = spawn_with(phoenix_missions::spec(), move |config| {
        config.peers.directory_url = Some(url);
    })
    .await;
    let user = directory_user(&directory.channel, "board@example.com", "Asia/Tokyo").await;
    let mut client = MissionsServiceClient::new(missions.channel.clone());
    let board = client
        .create_board(pb::CreateBoardRequest {
            user_id: user.clone(),
            season_id: "2026-S4".into(),
            time_zone: String::new(),
        })
        .await
        .expect("created")
        .into_inner()
        .board
        .expect("board");
    assert_eq!(board.time_zone, "Asia/Tokyo");

    let asked = client
        .create_board(pb::CreateBoardRequest {
            user_id: user.clone(),
            season_id: "2026-S5".into(),
            time_zone: "Europe/Madrid".into(),
        })
        .await
        .expect("created")
        .into_inner()
        .board
        .expect("board");
    assert_eq!(asked.time_zone, "Europe/Madrid", "a zone asked for wins");

    let status = client
        .create_board(pb::CreateBoardRequest {
            user_id: Uuid::new_v4().to_string(),
            season_id: "2026-S4".into(),
            time_zone: "Europe/Madrid".into(),
        })
        .await
        .expect_err("unknown user");
    assert_refused(&status, Code::FailedPrecondition, "USER_NOT_FOUND");
    let boards: i64 = sqlx::query_scalar("SELECT count(*) FROM missions_v2_boards")
        .fetch_one(&missions.pool)
        .await
        .expect("count");
    assert_eq!(boards, 2);
}

#[tokio::test]
async fn without_the_directory_a_zone_is_required() {
    let missions = spawn(phoenix_missions::spec()).await;
    let status = MissionsServiceClient::new(missions.channel.clone())
        .create_board(pb::CreateBoardRequest {
            user_id: Uuid::new_v4().to_string(),
            season_id: "2026-S4".into(),
            time_zone: String::new(),
        })
        .await
        .expect_err("no zone");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    assert_eq!(
        field_reasons(&status),
        [("time_zone".to_owned(), "REQUIRED".to_owned())]
    );
}

#[tokio::test]
async fn a_create_board_retry_is_answered_after_set_time_zone_and_while_the_directory_is_down() {
    let directory = spawn(phoenix_directory::spec()).await;
    let url = directory.url();
    let missions = spawn_with(phoenix_missions::spec(), move |config| {
        config.peers.directory_url = Some(url);
    })
    .await;
    let user = directory_user(&directory.channel, "retry@example.com", "Asia/Tokyo").await;
    let mut client = MissionsServiceClient::new(missions.channel.clone());
    let create = |time_zone: &str| pb::CreateBoardRequest {
        user_id: user.clone(),
        season_id: "2026-S4".into(),
        time_zone: time_zone.into(),
    };
    let first = client
        .create_board(create(""))
        .await
        .expect("created")
        .into_inner();
    assert!(first.created);
    client
        .set_time_zone(pb::SetTimeZoneRequest {
            user_id: user.clone(),
            time_zone: "Europe/Madrid".into(),
        })
        .await
        .expect("moved");
    let retry = client
        .create_board(create(""))
        .await
        .expect("a retry without a zone is answered")
        .into_inner();
    assert!(!retry.created);
    assert_eq!(retry.board.expect("board").time_zone, "Europe/Madrid");

    directory.shutdown().await;
    for zone in ["", "Europe/Madrid"] {
        let replay = client
            .create_board(create(zone))
            .await
            .expect("a replay needs no directory")
            .into_inner();
        assert!(!replay.created);
    }
    let status = client
        .create_board(create("Asia/Tokyo"))
        .await
        .expect_err("another zone");
    assert_refused(&status, Code::AlreadyExists, "BOARD_EXISTS");
}

#[tokio::test]
async fn with_authentication_on_the_directory_is_called_with_the_peer_token() {
    let directory = spawn_with(phoenix_directory::spec(), |config| {
        config.auth.hs256_secret = Some(TEST_SECRET.to_owned());
    })
    .await;
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": ["directory-admin"]}),
    );
    let user = DirectoryServiceClient::new(directory.channel.clone())
        .create_user(signed(
            directory_pb::CreateUserRequest {
                email: "peer@example.com".into(),
                display_name: "Peer Token".into(),
                time_zone: "Asia/Tokyo".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user")
        .id;
    let create = |season: &str| pb::CreateBoardRequest {
        user_id: user.clone(),
        season_id: season.into(),
        time_zone: String::new(),
    };

    // Without credentials the directory refuses missions: an outage for CreateBoard, with the cause.
    let url = directory.url();
    let anonymous = spawn_with(phoenix_missions::spec(), move |config| {
        config.peers.directory_url = Some(url);
    })
    .await;
    let status = MissionsServiceClient::new(anonymous.channel.clone())
        .create_board(create("2026-S4"))
        .await
        .expect_err("no token");
    assert_refused(&status, Code::Unavailable, "DIRECTORY_UNAVAILABLE");
    assert!(
        status.message().contains("Unauthenticated"),
        "the cause is named: {}",
        status.message()
    );

    // With a token file, the token is sent.
    let folder = support::tempdir::Dir::new();
    let token_file = folder.0.join("token");
    let service_token = bearer(TEST_SECRET, serde_json::json!({"sub": "svc:missions"}));
    let raw = service_token
        .to_str()
        .expect("ascii")
        .trim_start_matches("Bearer ");
    std::fs::write(&token_file, format!("{raw}\n")).expect("write the token");
    let url = directory.url();
    let path = token_file.clone();
    let missions = spawn_with(phoenix_missions::spec(), move |config| {
        config.peers.directory_url = Some(url);
        config.peer_credentials.peer_token_file = Some(path);
    })
    .await;
    let board = MissionsServiceClient::new(missions.channel.clone())
        .create_board(create("2026-S4"))
        .await
        .expect("the directory answers missions")
        .into_inner()
        .board
        .expect("board");
    assert_eq!(
        board.time_zone, "Asia/Tokyo",
        "the zone came from the directory"
    );

    // A token file that cannot be read is an error naming the setting, before any call.
    let mut settings = phoenix_testkit::test_config().peer_credentials;
    settings.peer_token_file = Some(folder.0.join("missing"));
    let error = phoenix_runtime::client::ClientBuilder::new(directory.url())
        .peer_credentials(&settings)
        .expect_err("no token file")
        .to_string();
    assert!(error.contains("PHOENIX_PEER_TOKEN_FILE"), "{error}");
}
