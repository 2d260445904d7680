//! What a review found: the sagas' grants and compensations are the coordinator's alone,
//! limits that answer the right reason first, and races on one user that the database and
//! the user's lock must settle (one decision, one completion, one payout, no loop of next
//! fragments however the upserts interleave).

mod common;

use common::{Client, count, decision, fragment, id, story, upsert_fragment};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{TEST_SECRET, assert_refused, bearer, field_reasons, signed, spawn, spawn_with};
use tonic::Code;

#[tokio::test]
async fn a_user_cannot_make_the_sagas_grants_and_compensations_for_themselves() {
    let service = spawn_with(phoenix_narrative::spec(), |c| {
        c.auth.hs256_secret = Some(TEST_SECRET.into())
    })
    .await;
    let mut client = Client::new(service.channel.clone());
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": ["narrative-admin"]}),
    );
    let user = id();
    let me = bearer(TEST_SECRET, serde_json::json!({"sub": user}));
    let (a, b, d) = (id(), id(), id());
    for (f, title) in [(&b, "B"), (&a, "A")] {
        client
            .upsert_fragment(signed(
                pb::UpsertFragmentRequest {
                    fragment: Some(fragment(f, title)),
                },
                &admin,
            ))
            .await
            .expect("fragment");
    }
    client
        .upsert_decision(signed(
            pb::UpsertDecisionRequest {
                decision: Some(decision(&d, &a, &b, 5)),
            },
            &admin,
        ))
        .await
        .expect("decision");
    // Theirs to make: a decision on their own progress.
    client
        .apply_decision(signed(common::apply(&user, &a, &d, "mine"), &me))
        .await
        .expect("a user takes their own decision");
    // Not theirs: undoing it (the rewards were granted) or unlocking content.
    let status = client
        .revert_decision(signed(
            pb::RevertDecisionRequest {
                user_id: user.clone(),
                fragment_id: a.clone(),
                decision_id: d.clone(),
                idempotency_key: "undo".into(),
            },
            &me,
        ))
        .await
        .expect_err("a revert is a saga's compensation");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = client
        .unlock_fragments(signed(
            pb::UnlockFragmentsRequest {
                user_id: user.clone(),
                fragment_ids: vec![b.clone()],
                idempotency_key: "unlock".into(),
            },
            &me,
        ))
        .await
        .expect_err("an unlock is a saga's grant");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = client
        .revert_reaction(signed(
            pb::RevertReactionRequest {
                user_id: user.clone(),
                content: Some(pb::ContentRef {
                    kind: pb::ContentKind::Fragment.into(),
                    content_id: a.clone(),
                }),
                reaction: "like".into(),
                idempotency_key: "unreact".into(),
            },
            &me,
        ))
        .await
        .expect_err("a reaction's revert is a saga's compensation");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    assert_eq!(count(&service.pool, "user_decisions").await, 1);
    let unlocked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM fragment_progress WHERE unlocked_at IS NOT NULL",
    )
    .fetch_one(&service.pool)
    .await
    .expect("count");
    assert_eq!(unlocked, 0, "nothing unlocked");
    // The coordinator may.
    let reverted = client
        .revert_decision(signed(
            pb::RevertDecisionRequest {
                user_id: user.clone(),
                fragment_id: a.clone(),
                decision_id: d.clone(),
                idempotency_key: "undo".into(),
            },
            &admin,
        ))
        .await
        .expect("the admin compensates")
        .into_inner();
    assert_eq!(reverted.outcome(), pb::RevertOutcome::Reverted);
}

#[tokio::test]
async fn two_upserts_that_each_close_half_a_loop_cannot_both_pass_and_the_database_refuses_a_loop()
{
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    for _ in 0..8 {
        let (a, b) = (id(), id());
        upsert_fragment(&mut client, fragment(&a, "A")).await;
        upsert_fragment(&mut client, fragment(&b, "B")).await;
        let calls = [(a.clone(), b.clone()), (b.clone(), a.clone())].map(|(from, to)| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .upsert_decision(pb::UpsertDecisionRequest {
                        decision: Some(decision(&id(), &from, &to, 0)),
                    })
                    .await
            })
        });
        let answers = futures_util::future::join_all(calls).await;
        let refused: Vec<_> = answers
            .iter()
            .filter_map(|a| a.as_ref().expect("joined").as_ref().err())
            .collect();
        assert_eq!(refused.len(), 1, "one of a -> b and b -> a passes");
        assert_refused(refused[0], Code::FailedPrecondition, "NEXT_FRAGMENT_CYCLE");
    }
    assert_eq!(count(&service.pool, "decisions").await, 8);

    // The database's own rule: a link written around the service that closes a loop.
    let (a, b, c) = (id(), id(), id());
    for f in [&a, &b, &c] {
        upsert_fragment(&mut client, fragment(f, "F")).await;
    }
    common::upsert_decision(&mut client, decision(&id(), &a, &b, 0)).await;
    common::upsert_decision(&mut client, decision(&id(), &b, &c, 0)).await;
    let refused = sqlx::query(
        "INSERT INTO decisions (id, fragment_id, label, next_fragment_id)
         VALUES ($1::uuid, $2::uuid, 'back', $3::uuid)",
    )
    .bind(id())
    .bind(&c)
    .bind(&a)
    .execute(&service.pool)
    .await
    .expect_err("c -> a closes a -> b -> c -> a");
    let database = refused.as_database_error().expect("a database error");
    assert_eq!(database.constraint(), Some("decisions_acyclic"));
    assert_eq!(database.code().as_deref(), Some("23514"));
    // Nor may an existing link be turned around.
    let refused = sqlx::query(
        "UPDATE decisions SET next_fragment_id = $1::uuid WHERE fragment_id = $2::uuid",
    )
    .bind(&a)
    .bind(&b)
    .execute(&service.pool)
    .await
    .expect_err("b -> a closes a -> b -> a");
    assert_eq!(
        refused.as_database_error().and_then(|e| e.constraint()),
        Some("decisions_acyclic")
    );
    // A branch that meets another again is no loop.
    common::upsert_decision(&mut client, decision(&id(), &a, &c, 0)).await;
}
