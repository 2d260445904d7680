//! The catalog upserts through gRPC: what is stored, bad requirement and reward messages,
//! unknown references, content over the limit, next-fragment cycles and the admin role.

mod common;

use common::{Client, count, decision, fragment, id, story, upsert_decision, upsert_fragment};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{
    TEST_SECRET, assert_refused, bearer, field_reasons, metadata, signed, spawn, spawn_with,
};
use tonic::Code;

#[tokio::test]
async fn an_upsert_creates_then_replaces_and_keeps_the_metrics() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    client
        .record_visit(pb::RecordVisitRequest {
            user_id: id(),
            fragment_id: s.a.clone(),
            time_spent: None,
            idempotency_key: "v".into(),
        })
        .await
        .expect("visit");
    let mut changed = fragment(&s.a, "A, revised");
    changed.vip_exclusive = true;
    let answer = client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(changed),
        })
        .await
        .expect("replaced")
        .into_inner();
    assert!(!answer.created);
    let stored = answer.fragment.expect("fragment");
    assert_eq!(stored.title, "A, revised");
    assert!(stored.vip_exclusive);
    assert_eq!(
        stored.metrics.expect("metrics").view_count,
        1,
        "metrics survive a replace"
    );
    assert_eq!(stored.decisions.len(), 1);
    assert_eq!(stored.decisions[0].id, s.d);
}

#[tokio::test]
async fn bad_requirements_and_rewards_are_refused_field_by_field_and_nothing_is_written() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let mut bad = fragment(&id(), "");
    bad.content = "x".repeat(65_537);
    bad.requirements = Some(pb::Requirements {
        min_level: -1,
        required_items: vec![pb::ItemAmount {
            item_id: "gem".into(),
            quantity: -3,
        }],
        required_fragment_ids: vec!["nope".into()],
        ..Default::default()
    });
    bad.rewards = Some(pb::Rewards {
        besitos: -10,
        achievement_ids: vec!["has space".into()],
        ..Default::default()
    });
    let status = client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(bad),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    assert_eq!(
        field_reasons(&status),
        [
            ("fragment.title".to_owned(), "REQUIRED".to_owned()),
            ("fragment.content".to_owned(), "TOO_LONG".to_owned()),
            (
                "fragment.requirements.required_fragment_ids[0]".to_owned(),
                "INVALID_ID".to_owned()
            ),
            (
                "fragment.requirements.min_level".to_owned(),
                "NEGATIVE_AMOUNT".to_owned()
            ),
            (
                "fragment.requirements.required_items[0].quantity".to_owned(),
                "NEGATIVE_AMOUNT".to_owned()
            ),
            (
                "fragment.rewards.besitos".to_owned(),
                "NEGATIVE_AMOUNT".to_owned()
            ),
            (
                "fragment.rewards.achievement_ids[0]".to_owned(),
                "INVALID_EXTERNAL_ID".to_owned()
            ),
        ]
    );
    let status = client
        .upsert_fragment(pb::UpsertFragmentRequest { fragment: None })
        .await
        .expect_err("no fragment");
    assert_eq!(
        field_reasons(&status)[0],
        ("fragment".to_owned(), "REQUIRED".to_owned())
    );
    assert_eq!(count(&service.pool, "fragments").await, 0);
}

#[tokio::test]
async fn references_to_unknown_fragments_and_experiences_are_refused() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let (ghost, f) = (id(), id());
    let mut unknown = fragment(&f, "F");
    unknown.rewards = Some(pb::Rewards {
        unlock_fragment_ids: vec![s.b.clone(), ghost.clone()],
        ..Default::default()
    });
    let status = client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(unknown),
        })
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::FailedPrecondition, "UNKNOWN_FRAGMENT");
    assert_eq!(
        field_reasons(&status),
        [(
            "fragment.rewards.unlock_fragment_ids[1]".to_owned(),
            "UNKNOWN_FRAGMENT".to_owned()
        )]
    );
    let mut in_experience = fragment(&f, "F");
    in_experience.experience_id = ghost.clone();
    in_experience.experience_sequence = 1;
    let status = client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(in_experience),
        })
        .await
        .expect_err("unknown experience");
    assert_refused(&status, Code::FailedPrecondition, "UNKNOWN_EXPERIENCE");
    assert_eq!(field_reasons(&status)[0].0, "fragment.experience_id");
    let status = client
        .upsert_decision(pb::UpsertDecisionRequest {
            decision: Some(decision(&id(), &ghost, "", 0)),
        })
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::FailedPrecondition, "UNKNOWN_FRAGMENT");
    assert_eq!(field_reasons(&status)[0].0, "decision.fragment_id");
    let status = client
        .upsert_decision(pb::UpsertDecisionRequest {
            decision: Some(decision(&s.d, &s.b, "", 0)),
        })
        .await
        .expect_err("moving a decision to another fragment");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "DECISION_NOT_OF_FRAGMENT",
    );
    assert_eq!(count(&service.pool, "fragments").await, 2);
}

#[tokio::test]
async fn a_next_fragment_that_closes_a_loop_is_refused_with_the_loop() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let (a, b, c) = (id(), id(), id());
    for (f, title) in [(&a, "A"), (&b, "B"), (&c, "C")] {
        upsert_fragment(&mut client, fragment(f, title)).await;
    }
    upsert_decision(&mut client, decision(&id(), &a, &b, 0)).await;
    upsert_decision(&mut client, decision(&id(), &b, &c, 0)).await;
    let back = id();
    let status = client
        .upsert_decision(pb::UpsertDecisionRequest {
            decision: Some(decision(&back, &c, &a, 0)),
        })
        .await
        .expect_err("c -> a closes a -> b -> c -> a");
    assert_refused(&status, Code::FailedPrecondition, "NEXT_FRAGMENT_CYCLE");
    assert_eq!(
        field_reasons(&status),
        [(
            "decision.next_fragment_id".to_owned(),
            "NEXT_FRAGMENT_CYCLE".to_owned()
        )]
    );
    assert_eq!(
        metadata(&status, "cycle"),
        Some(format!("{c} -> {a} -> {b} -> {c}"))
    );
    let status = client
        .upsert_decision(pb::UpsertDecisionRequest {
            decision: Some(decision(&back, &c, &c, 0)),
        })
        .await
        .expect_err("to itself");
    assert_refused(&status, Code::FailedPrecondition, "NEXT_FRAGMENT_CYCLE");
    assert_eq!(
        count(&service.pool, "decisions").await,
        2,
        "nothing written"
    );
    // A branch that meets another is fine.
    upsert_decision(&mut client, decision(&id(), &a, &c, 0)).await;
}

#[tokio::test]
async fn with_authentication_on_the_catalog_needs_the_admin_role_and_progress_its_owner() {
    let service = spawn_with(phoenix_narrative::spec(), |c| {
        c.auth.hs256_secret = Some(TEST_SECRET.into())
    })
    .await;
    let mut client = Client::new(service.channel.clone());
    let user = id();
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": ["narrative-admin"]}),
    );
    let reader = bearer(TEST_SECRET, serde_json::json!({"sub": user}));
    let a = id();
    let status = client
        .upsert_fragment(signed(
            pb::UpsertFragmentRequest {
                fragment: Some(fragment(&a, "A")),
            },
            &reader,
        ))
        .await
        .expect_err("not an admin");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    client
        .upsert_fragment(signed(
            pb::UpsertFragmentRequest {
                fragment: Some(fragment(&a, "A")),
            },
            &admin,
        ))
        .await
        .expect("an admin");
    let status = client
        .get_user_progress(signed(
            pb::GetUserProgressRequest { user_id: id() },
            &reader,
        ))
        .await
        .expect_err("another user's progress");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    client
        .get_user_progress(signed(
            pb::GetUserProgressRequest {
                user_id: user.clone(),
            },
            &reader,
        ))
        .await
        .expect("their own");
    let status = client
        .apply_decision(signed(common::apply(&id(), &a, &id(), "k"), &reader))
        .await
        .expect_err("a decision for another user");
    assert_refused(&status, Code::PermissionDenied, "NOT_OWNER");
    let status = client
        .get_fragment(signed(
            pb::GetFragmentRequest {
                fragment_id: a.clone(),
                user_id: user.clone(),
                include_content: true,
            },
            &reader,
        ))
        .await
        .expect_err("content whatever the requirements is for trusted callers");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
}
