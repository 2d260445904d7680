//! With authentication on: the bot's role reaches every contact, the admin's also the cleanup
//! and the event stream, anyone else nothing.

use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_client::ConversationsServiceClient;
use phoenix_testkit::{TEST_SECRET, assert_refused, bearer, signed, spawn_with};
use tonic::Code;

#[tokio::test]
async fn the_bot_works_on_contacts_and_only_an_admin_cleans_up_or_subscribes() {
    let service = spawn_with(phoenix_conversations::spec(), |config| {
        config.auth.hs256_secret = Some(TEST_SECRET.to_owned());
    })
    .await;
    let mut client = ConversationsServiceClient::new(service.channel.clone());
    let bot = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "worker-1", "roles": [phoenix_conversations::BOT_ROLE]}),
    );
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": [phoenix_conversations::ADMIN_ROLE]}),
    );
    let anyone = bearer(TEST_SECRET, serde_json::json!({"sub": "someone"}));
    let save = || pb::SaveContactRequest {
        phone: "573001234567".into(),
        ..Default::default()
    };

    let status = client
        .save_contact(signed(save(), &anyone))
        .await
        .expect_err("no role");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    client
        .save_contact(signed(save(), &bot))
        .await
        .expect("the bot saves");
    client
        .save_contact(signed(save(), &admin))
        .await
        .expect("an admin saves");

    let status = client
        .run_cleanup(signed(pb::RunCleanupRequest {}, &bot))
        .await
        .expect_err("admin only");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    client
        .run_cleanup(signed(pb::RunCleanupRequest {}, &admin))
        .await
        .expect("an admin cleans up");
    let status = client
        .subscribe(signed(pb::SubscribeRequest { after_position: 0 }, &bot))
        .await
        .expect_err("admin only");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = client.save_contact(save()).await.expect_err("no token");
    assert_refused(&status, Code::Unauthenticated, "TOKEN_MISSING");
}
