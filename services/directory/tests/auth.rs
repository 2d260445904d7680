//! With authentication on: a user acts on their own records, an admin on everyone's.

use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_testkit::{TEST_SECRET, assert_refused, bearer, signed, spawn_with};
use tonic::Code;

#[tokio::test]
async fn users_change_only_their_own_self_service_fields_and_admins_do_the_rest() {
    let service = spawn_with(phoenix_directory::spec(), |config| {
        config.auth.hs256_secret = Some(TEST_SECRET.to_owned());
    })
    .await;
    let mut client = DirectoryServiceClient::new(service.channel.clone());
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": [phoenix_directory::ADMIN_ROLE]}),
    );
    let create = |email: &str| pb::CreateUserRequest {
        email: email.into(),
        display_name: "Someone".into(),
        ..Default::default()
    };
    let anyone = bearer(TEST_SECRET, serde_json::json!({"sub": "nobody"}));
    let status = client
        .create_user(signed(create("x@example.com"), &anyone))
        .await
        .expect_err("registration needs the admin role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");

    let user = client
        .create_user(signed(create("me@example.com"), &admin))
        .await
        .expect("created by an admin")
        .into_inner()
        .user
        .expect("user");
    let me = bearer(TEST_SECRET, serde_json::json!({"sub": user.id}));
    let update = |paths: &[&str], name: &str| {
        let mut changed = user.clone();
        changed.display_name = name.into();
        changed.conversion_score = Some(99.0);
        pb::UpdateUserRequest {
            user: Some(changed),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        }
    };
    client
        .update_user(signed(update(&["display_name"], "Me"), &me))
        .await
        .expect("my own name");
    let status = client
        .update_user(signed(update(&["conversion_score"], "Me"), &me))
        .await
        .expect_err("scores are the system's");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = client
        .update_user(signed(update(&["display_name"], "Hacked"), &anyone))
        .await
        .expect_err("not my user");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    client
        .update_user(signed(update(&["conversion_score"], "Me"), &admin))
        .await
        .expect("an admin sets scores");

    let grant = pb::GrantVipRequest {
        user_id: user.id.clone(),
        duration: Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        idempotency_key: "g".into(),
        reason: String::new(),
    };
    let status = client
        .grant_vip(signed(grant.clone(), &me))
        .await
        .expect_err("no self-granted VIP");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    client
        .start_vip_trial(signed(
            pb::StartVipTrialRequest {
                user_id: user.id.clone(),
                duration: None,
                idempotency_key: "t".into(),
            },
            &me,
        ))
        .await
        .expect("my own trial");
    let checked = client
        .check_vip(signed(
            pb::CheckVipRequest {
                user_id: user.id.clone(),
            },
            &anyone,
        ))
        .await
        .expect("any caller resolves")
        .into_inner()
        .membership
        .expect("membership");
    assert_eq!(checked.status(), pb::VipStatus::Trial);
    let history = |caller| {
        signed(
            pb::ListVipHistoryRequest {
                user_id: user.id.clone(),
            },
            caller,
        )
    };
    let status = client
        .list_vip_history(history(&anyone))
        .await
        .expect_err("another user's history");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    for caller in [&me, &admin] {
        let entries = client
            .list_vip_history(history(caller))
            .await
            .expect("the owner's and an admin's")
            .into_inner()
            .entries;
        assert_eq!(entries.len(), 1);
    }
    let status = client
        .subscribe(signed(pb::SubscribeRequest { after_position: 0 }, &me))
        .await
        .expect_err("the stream is the admins'");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
}
