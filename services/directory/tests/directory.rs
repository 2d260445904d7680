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
        ..Default::default()
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

mod users {
    use super::registration;
    use phoenix_proto::directory::v1 as pb;
    use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
    use phoenix_testkit::{assert_refused, field_reasons, metadata, spawn};
    use tonic::Code;
    use tonic::transport::Channel;

    type Client = DirectoryServiceClient<Channel>;

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
            .collect()
    }

    fn full(email: &str, username: &str, telegram_id: i64) -> pb::CreateUserRequest {
        pb::CreateUserRequest {
            email: email.into(),
            display_name: "Full User".into(),
            time_zone: "America/Mexico_City".into(),
            username: username.into(),
            telegram_id,
            superuser: true,
            metadata: Some(prost_types::Struct {
                fields: [(
                    "plan".to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue("gold".into())),
                    },
                )]
                .into(),
            }),
            archetype_primary: "explorer".into(),
            archetype_secondary: "romantic".into(),
            archetype_confidence: Some(0.85),
            conversion_score: Some(72.25),
            churn_risk_score: Some(10.5),
            lifetime_value_minor: 12_345,
            last_engagement_time: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            engagement_streak: 4,
            last_login_time: Some(prost_types::Timestamp {
                seconds: 1_800_000_100,
                nanos: 0,
            }),
        }
    }

    async fn create(client: &mut Client, request: pb::CreateUserRequest) -> pb::User {
        client
            .create_user(request)
            .await
            .expect("created")
            .into_inner()
            .user
            .expect("user")
    }

    #[tokio::test]
    async fn every_field_of_both_seeds_round_trips_and_lookups_find_the_user() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let user = create(&mut client, full("Full@Example.com", "Full_User", 777)).await;
        assert_eq!(user.email, "full@example.com");
        assert_eq!(user.username, "full_user");
        assert_eq!(user.telegram_id, 777);
        assert!(user.active && user.superuser);
        assert_eq!(user.archetype_confidence, Some(0.85));
        assert_eq!(user.conversion_score, Some(72.25));
        assert_eq!(user.churn_risk_score, Some(10.5));
        assert_eq!(user.lifetime_value_minor, 12_345);
        assert_eq!(user.engagement_streak, 4);
        assert!(user.archetype_update_time.is_some());
        assert_eq!(user.vip_status(), pb::VipStatus::None);
        assert_eq!(
            user.metadata.as_ref().expect("metadata").fields["plan"],
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("gold".into()))
            }
        );
        use pb::lookup_user_request::Key;
        for key in [
            Key::Email("FULL@example.COM".into()),
            Key::Username("FULL_user".into()),
            Key::TelegramId(777),
        ] {
            let found = client
                .lookup_user(pb::LookupUserRequest { key: Some(key) })
                .await
                .expect("found")
                .into_inner()
                .user;
            assert_eq!(found.as_ref(), Some(&user));
        }
        let status = client
            .lookup_user(pb::LookupUserRequest {
                key: Some(Key::TelegramId(778)),
            })
            .await
            .expect_err("unknown");
        assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");
        assert_eq!(metadata(&status, "telegram_id").as_deref(), Some("778"));
    }

    #[tokio::test]
    async fn a_bad_registration_lists_every_violation_and_writes_nothing() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let mut request = full("nope", "x!", -3);
        request.time_zone = "Mars/Base".into();
        request.conversion_score = Some(100.01);
        request.churn_risk_score = Some(5.555);
        request.engagement_streak = -1;
        let status = client.create_user(request).await.expect_err("invalid");
        assert_refused(&status, Code::InvalidArgument, "INVALID_EMAIL");
        assert_eq!(
            field_reasons(&status),
            pairs(&[
                ("email", "INVALID_EMAIL"),
                ("time_zone", "INVALID_TIME_ZONE"),
                ("username", "INVALID_USERNAME"),
                ("telegram_id", "INVALID_TELEGRAM_ID"),
                ("conversion_score", "OUT_OF_RANGE"),
                ("churn_risk_score", "TOO_MANY_DECIMALS"),
                ("engagement_streak", "OUT_OF_RANGE"),
            ])
        );
        let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&service.pool)
            .await
            .expect("count");
        assert_eq!(users, 0);
    }

    #[tokio::test]
    async fn a_taken_username_or_telegram_id_is_already_exists_naming_the_field() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        create(&mut client, full("a@example.com", "taken", 1)).await;
        let status = client
            .create_user(full("b@example.com", "TAKEN", 2))
            .await
            .expect_err("username taken");
        assert_refused(&status, Code::AlreadyExists, "USERNAME_TAKEN");
        assert_eq!(metadata(&status, "field").as_deref(), Some("username"));
        assert_eq!(
            field_reasons(&status),
            pairs(&[("username", "USERNAME_TAKEN")])
        );
        let status = client
            .create_user(full("c@example.com", "other", 1))
            .await
            .expect_err("telegram id taken");
        assert_refused(&status, Code::AlreadyExists, "TELEGRAM_ID_TAKEN");
        assert_eq!(metadata(&status, "field").as_deref(), Some("telegram_id"));
    }

    #[tokio::test]
    async fn a_telegram_user_needs_no_email() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let user = create(
            &mut client,
            pb::CreateUserRequest {
                display_name: "Bot User".into(),
                telegram_id: 99,
                ..Default::default()
            },
        )
        .await;
        assert_eq!((user.email.as_str(), user.telegram_id), ("", 99));
        let status = client
            .create_user(pb::CreateUserRequest {
                display_name: "Nobody".into(),
                ..Default::default()
            })
            .await
            .expect_err("unreachable");
        assert_refused(&status, Code::InvalidArgument, "REQUIRED");
        assert_eq!(field_reasons(&status), pairs(&[("email", "REQUIRED")]));
    }

    #[tokio::test]
    async fn a_full_batch_of_users_with_large_metadata_is_answered_with_the_default_limits() {
        let service = spawn(phoenix_directory::spec()).await;
        // 1,000 users with 15 KiB of metadata each: about 15 MiB, beyond the 4 MiB default.
        sqlx::query(
            "INSERT INTO users (id, email, display_name, time_zone, metadata)
             SELECT gen_random_uuid(), 'big-' || n || '@example.com', 'Big ' || n, 'UTC',
                    jsonb_build_object('notes', repeat('x', 15 * 1024))
             FROM generate_series(1, $1::int) AS n",
        )
        .bind(i32::try_from(phoenix_directory::MAX_BATCH_IDS).expect("fits"))
        .execute(&service.pool)
        .await
        .expect("users written");
        let ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users")
            .fetch_all(&service.pool)
            .await
            .expect("ids");
        let answer = Client::new(service.channel.clone())
            .max_decoding_message_size(64 << 20)
            .batch_get_users(pb::BatchGetUsersRequest { ids: ids.clone() })
            .await
            .expect("the whole batch is answered")
            .into_inner();
        assert_eq!(answer.users.len(), phoenix_directory::MAX_BATCH_IDS);
        assert!(answer.missing_ids.is_empty());
    }

    #[tokio::test]
    async fn batch_get_answers_in_order_and_lists_the_missing() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let a = create(&mut client, registration("a@example.com", "")).await;
        let b = create(&mut client, registration("b@example.com", "")).await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let answer = client
            .batch_get_users(pb::BatchGetUsersRequest {
                ids: vec![b.id.clone(), unknown.clone(), a.id.clone(), b.id.clone()],
            })
            .await
            .expect("batch")
            .into_inner();
        assert_eq!(answer.users, [b.clone(), a.clone()]);
        assert_eq!(answer.missing_ids, [unknown]);

        let too_many = vec![a.id.clone(); phoenix_directory::MAX_BATCH_IDS + 1];
        let status = client
            .batch_get_users(pb::BatchGetUsersRequest { ids: too_many })
            .await
            .expect_err("too many");
        assert_refused(&status, Code::InvalidArgument, "TOO_MANY_IDS");
        let status = client
            .batch_get_users(pb::BatchGetUsersRequest {
                ids: vec![a.id.clone(), "nope".into()],
            })
            .await
            .expect_err("bad id");
        assert_eq!(field_reasons(&status), pairs(&[("ids[1]", "INVALID_ID")]));
    }

    #[tokio::test]
    async fn list_pages_through_the_filtered_users() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let mut explorers = Vec::new();
        for i in 0..5 {
            let mut request = registration(&format!("u{i}@example.com"), "");
            request.archetype_primary = if i % 2 == 0 { "explorer" } else { "guardian" }.into();
            let user = create(&mut client, request).await;
            if i % 2 == 0 {
                explorers.push(user);
            }
        }
        client
            .deactivate_user(pb::DeactivateUserRequest {
                id: explorers[2].id.clone(),
            })
            .await
            .expect("deactivated");
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_users(pb::ListUsersRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    active: Some(true),
                    archetype_primary: "explorer".into(),
                    vip_status: pb::VipStatus::None.into(),
                })
                .await
                .expect("page")
                .into_inner();
            seen.extend(page.users.into_iter().map(|u| u.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, [explorers[0].id.clone(), explorers[1].id.clone()]);
        let status = client
            .list_users(pb::ListUsersRequest {
                page_token: "garbage".into(),
                page_size: 5000,
                ..Default::default()
            })
            .await
            .expect_err("bad page");
        assert_eq!(
            field_reasons(&status),
            pairs(&[
                ("page_size", "INVALID_PAGE_SIZE"),
                ("page_token", "INVALID_PAGE_TOKEN")
            ])
        );
    }

    #[tokio::test]
    async fn an_update_changes_the_masked_fields_only_and_refuses_bad_paths() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let user = create(&mut client, full("up@example.com", "upd", 5)).await;
        let mut changed = user.clone();
        changed.display_name = "Renamed".into();
        changed.conversion_score = Some(1.5);
        changed.time_zone = "Not/AZone".into(); // not in the mask: ignored
        let updated = client
            .update_user(pb::UpdateUserRequest {
                user: Some(changed.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into(), "conversion_score".into()],
                }),
            })
            .await
            .expect("updated")
            .into_inner()
            .user
            .expect("user");
        assert_eq!(updated.display_name, "Renamed");
        assert_eq!(updated.conversion_score, Some(1.5));
        assert_eq!(updated.time_zone, user.time_zone);
        assert_eq!(updated.archetype_update_time, user.archetype_update_time);

        let status = client
            .update_user(pb::UpdateUserRequest {
                user: Some(changed.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![
                        "vip_trial_used".into(),
                        "shoe_size".into(),
                        "id".into(),
                        "time_zone".into(),
                    ],
                }),
            })
            .await
            .expect_err("bad paths");
        assert_refused(&status, Code::InvalidArgument, "READ_ONLY_FIELD");
        assert_eq!(
            field_reasons(&status),
            pairs(&[
                ("update_mask.paths[0]", "READ_ONLY_FIELD"),
                ("update_mask.paths[1]", "UNKNOWN_FIELD"),
                ("update_mask.paths[2]", "READ_ONLY_FIELD"),
                ("user.time_zone", "INVALID_TIME_ZONE"),
            ])
        );
        let status = client
            .update_user(pb::UpdateUserRequest {
                user: Some(changed.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["time_zone".into(), "churn_risk_score".into()],
                }),
            })
            .await
            .expect_err("bad values");
        assert_eq!(
            field_reasons(&status),
            pairs(&[("user.time_zone", "INVALID_TIME_ZONE")])
        );
        let other = create(&mut client, registration("other@example.com", "")).await;
        let mut clash = other.clone();
        clash.email = "UP@example.com".into();
        let status = client
            .update_user(pb::UpdateUserRequest {
                user: Some(clash),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
            })
            .await
            .expect_err("taken");
        assert_refused(&status, Code::AlreadyExists, "EMAIL_TAKEN");
        let unchanged = client
            .get_user(pb::GetUserRequest {
                id: user.id.clone(),
            })
            .await
            .expect("get")
            .into_inner()
            .user
            .expect("user");
        assert_eq!(unchanged, updated);
    }

    #[tokio::test]
    async fn a_deactivated_user_stays_readable_and_inactive() {
        let service = spawn(phoenix_directory::spec()).await;
        let mut client = Client::new(service.channel.clone());
        let user = create(&mut client, registration("gone@example.com", "")).await;
        for _ in 0..2 {
            let gone = client
                .deactivate_user(pb::DeactivateUserRequest {
                    id: user.id.clone(),
                })
                .await
                .expect("deactivated")
                .into_inner()
                .user
                .expect("user");
            assert!(!gone.active);
            assert!(gone.deactivate_time.is_some());
        }
        let status = client
            .deactivate_user(pb::DeactivateUserRequest {
                id: uuid::Uuid::new_v4().to_string(),
            })
            .await
            .expect_err("unknown");
        assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");
    }
}

#[tokio::test]
async fn the_database_refuses_new_fields_out_of_their_rules() {
    let service = spawn(phoenix_directory::spec()).await;
    let id = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, email, display_name) VALUES ($1, 'db@example.com', 'Db')")
        .bind(id)
        .execute(&service.pool)
        .await
        .expect("a valid row");
    for (what, statement) in [
        ("scores are 0..10000 hundredths", "UPDATE users SET conversion_score = 10001"),
        ("confidence is 0..100 hundredths", "UPDATE users SET archetype_confidence = 101"),
        ("lifetime value is not negative", "UPDATE users SET lifetime_value_minor = -1"),
        ("usernames are stored lower-cased", "UPDATE users SET username = 'Upper'"),
        ("Telegram ids are positive", "UPDATE users SET telegram_id = -4"),
        ("a user is reachable", "UPDATE users SET email = NULL"),
        ("a used trial has an end", "UPDATE users SET vip_trial_used = true"),
        ("inactive users have a deactivation time", "UPDATE users SET active = false"),
        (
            "a completed course has its completion time",
            "INSERT INTO courses (id, owner_id, title, status, created_at, updated_at)
             SELECT gen_random_uuid(), id, 'T', 'completed', now(), now() FROM users",
        ),
        (
            "a membership's status is one the rules write",
            "INSERT INTO vip_memberships (user_id, status, period_start, period_end, version, updated_at)
             SELECT id, 'expired', now(), now(), 1, now() FROM users",
        ),
    ] {
        assert!(
            sqlx::query(statement).execute(&service.pool).await.is_err(),
            "{what}"
        );
    }
}
