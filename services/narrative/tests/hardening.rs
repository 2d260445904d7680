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
