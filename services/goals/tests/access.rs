//! Who may call what with authentication on: users act on their own records, the
//! `goals-admin` role on everyone's.

use phoenix_proto::goals::v1 as pb;
use phoenix_proto::goals::v1::goals_service_client::GoalsServiceClient;
use phoenix_testkit::{
    TEST_SECRET, assert_refused, bearer, directory_user, signed, spawn, spawn_with,
};
use tonic::Code;

#[tokio::test]
async fn users_act_on_their_own_records_and_admins_on_all() {
    let directory = spawn(phoenix_directory::spec()).await;
    let url = directory.url();
    let goals = spawn_with(phoenix_goals::spec(), move |config| {
        config.peers.directory_url = Some(url);
        config.auth.hs256_secret = Some(TEST_SECRET.into());
    })
    .await;
    let ada = directory_user(&directory.channel, "ada@example.com", "UTC").await;
    let bob = directory_user(&directory.channel, "bob@example.com", "UTC").await;
    let as_ada = bearer(TEST_SECRET, serde_json::json!({"sub": ada}));
    let as_bob = bearer(TEST_SECRET, serde_json::json!({"sub": bob}));
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": [phoenix_goals::ADMIN_ROLE]}),
    );
    let mut client = GoalsServiceClient::new(goals.channel.clone());
    let create = |user: &str| pb::CreateGoalRequest {
        user_id: user.into(),
        title: "mine".into(),
        ..Default::default()
    };

    let goal = client
        .create_goal(signed(create(&ada), &as_ada))
        .await
        .expect("her own goal")
        .into_inner()
        .goal
        .expect("goal");
    let status = client
        .create_goal(signed(create(&ada), &as_bob))
        .await
        .expect_err("someone else's");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    let status = client
        .get_goal(signed(
            pb::GetGoalRequest {
                id: goal.id.clone(),
            },
            &as_bob,
        ))
        .await
        .expect_err("someone else's");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    let status = client
        .create_task(signed(
            pb::CreateTaskRequest {
                goal_id: goal.id.clone(),
                title: "t".into(),
                ..Default::default()
            },
            &as_bob,
        ))
        .await
        .expect_err("someone else's goal");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    client
        .get_goal(signed(
            pb::GetGoalRequest {
                id: goal.id.clone(),
            },
            &admin,
        ))
        .await
        .expect("an admin reads everyone's");

    let model = pb::RegisterEmbeddingModelRequest {
        model: Some(pb::EmbeddingModel {
            name: "m".into(),
            dimensions: 2,
            create_time: None,
        }),
    };
    let status = client
        .register_embedding_model(signed(model.clone(), &as_ada))
        .await
        .expect_err("admins register models");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    client
        .register_embedding_model(signed(model, &admin))
        .await
        .expect("registered");
    let search = |user: &str| pb::SearchSimilarRequest {
        model: "m".into(),
        vector: vec![1.0, 0.0],
        k: 1,
        user_id: user.into(),
        ..Default::default()
    };
    client
        .search_similar(signed(search(&ada), &as_ada))
        .await
        .expect("her own embeddings");
    let status = client
        .search_similar(signed(search(""), &as_ada))
        .await
        .expect_err("across users");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = match client
        .subscribe(signed(pb::SubscribeRequest { after_position: 0 }, &as_ada))
        .await
    {
        Ok(_) => panic!("the log is an admin's"),
        Err(status) => status,
    };
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
}
