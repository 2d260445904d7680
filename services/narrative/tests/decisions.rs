//! ApplyDecision and RevertDecision through gRPC: rewards, idempotent retries, one decision per
//! fragment under concurrency, compensation, and bad input that writes nothing.

mod common;

use common::{Client, apply, count, id, progress, story};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons, metadata, spawn};
use tonic::Code;

#[tokio::test]
async fn a_decision_answers_the_fragments_and_its_own_rewards_and_a_retry_answers_the_same() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    let first = client
        .apply_decision(apply(&user, &s.a, &s.d, "decide-1"))
        .await
        .expect("applied")
        .into_inner();
    let rewards = first.rewards.clone().expect("rewards");
    assert_eq!(
        rewards.besitos, 15,
        "10 of the fragment and 5 of the decision"
    );
    assert_eq!(rewards.unlock_fragment_ids, std::slice::from_ref(&s.b));
    assert_eq!(first.next_fragment_id, s.b);
    assert_eq!(first.completed_level, 1);
    let retry = client
        .apply_decision(apply(&user, &s.a, &s.d, "decide-1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(retry, first, "the retry answers the same rewards and time");
    assert_eq!(count(&service.pool, "user_decisions").await, 1);
    let p = progress(&mut client, &user).await;
    assert_eq!(p.decisions.len(), 1);
    assert_eq!(p.completed_levels, [1]);

    let status = client
        .apply_decision(apply(&user, &s.a, &id(), "decide-1"))
        .await
        .expect_err("same key, another request");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn concurrent_duplicate_decisions_make_exactly_one_decision() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let other = id();
    common::upsert_decision(&mut client, common::decision(&other, &s.a, "", 1)).await;
    let user = id();
    // Eight with different keys (and two decisions), eight with one key.
    let calls = (0..16).map(|n| {
        let mut client = client.clone();
        let (decision, key) = if n < 8 {
            (
                if n % 2 == 0 {
                    s.d.clone()
                } else {
                    other.clone()
                },
                format!("k-{n}"),
            )
        } else {
            (s.d.clone(), "same-key".to_owned())
        };
        let request = apply(&user, &s.a, &decision, &key);
        tokio::spawn(async move { client.apply_decision(request).await })
    });
    let answers: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("joined"))
        .collect();
    let taken: Vec<&pb::ApplyDecisionResponse> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .map(|r| r.get_ref())
        .collect();
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_refused(refused, Code::AlreadyExists, "DECISION_ALREADY_TAKEN");
    }
    let first = taken.first().expect("one decision was taken");
    for answer in &taken {
        assert_eq!(
            answer.decision, first.decision,
            "every success is the one decision"
        );
    }
    assert_eq!(count(&service.pool, "user_decisions").await, 1);
    let completions: i64 =
        sqlx::query_scalar("SELECT completion_count FROM fragments WHERE id = $1::uuid")
            .bind(&s.a)
            .fetch_one(&service.pool)
            .await
            .expect("metrics");
    assert_eq!(completions, 1, "the fragment counted one completion");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'phoenix.narrative.v1.DecisionTaken'",
    )
    .fetch_one(&service.pool)
    .await
    .expect("events");
    assert_eq!(events, 1);
}

#[tokio::test]
async fn a_revert_undoes_the_decision_and_reverting_what_was_never_applied_says_so() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    let revert = |key: &str| pb::RevertDecisionRequest {
        user_id: user.clone(),
        fragment_id: s.a.clone(),
        decision_id: s.d.clone(),
        idempotency_key: key.into(),
    };
    let never = client
        .revert_decision(revert("undo-0"))
        .await
        .expect("a no-op")
        .into_inner();
    assert_eq!(never.outcome(), pb::RevertOutcome::NotApplied);
    assert_eq!(never.rewards.expect("rewards").besitos, 0);
    assert_eq!(
        count(&service.pool, "events").await,
        0,
        "a no-op records no event"
    );

    client
        .apply_decision(apply(&user, &s.a, &s.d, "do-1"))
        .await
        .expect("applied");
    let undone = client
        .revert_decision(revert("undo-1"))
        .await
        .expect("reverted")
        .into_inner();
    assert_eq!(undone.outcome(), pb::RevertOutcome::Reverted);
    assert_eq!(
        undone.rewards.expect("rewards").besitos,
        15,
        "what to take back"
    );
    assert_eq!(count(&service.pool, "user_decisions").await, 0);
    let retry = client
        .revert_decision(revert("undo-1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(
        retry.outcome(),
        pb::RevertOutcome::Reverted,
        "a retry answers the first outcome"
    );
    let again = client
        .revert_decision(revert("undo-2"))
        .await
        .expect("a no-op")
        .into_inner();
    assert_eq!(again.outcome(), pb::RevertOutcome::NotApplied);

    // After the compensation the user may decide again.
    client
        .apply_decision(apply(&user, &s.a, &s.d, "do-2"))
        .await
        .expect("decided again");
}

#[tokio::test]
async fn bad_decisions_are_refused_with_their_reason_and_write_nothing() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    let before = count(&service.pool, "request_keys").await;

    let status = client
        .apply_decision(apply("nope", "", &s.d, ""))
        .await
        .expect_err("malformed");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    assert_eq!(
        field_reasons(&status),
        [
            ("user_id".to_owned(), "INVALID_ID".to_owned()),
            ("fragment_id".to_owned(), "REQUIRED".to_owned()),
            (
                "idempotency_key".to_owned(),
                "IDEMPOTENCY_KEY_REQUIRED".to_owned()
            ),
        ]
    );

    let unknown = id();
    let status = client
        .apply_decision(apply(&user, &unknown, &s.d, "k1"))
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    assert_eq!(
        field_reasons(&status),
        [("fragment_id".to_owned(), "FRAGMENT_NOT_FOUND".to_owned())]
    );

    let status = client
        .apply_decision(apply(&user, &s.a, &unknown, "k2"))
        .await
        .expect_err("unknown decision");
    assert_refused(&status, Code::NotFound, "DECISION_NOT_FOUND");
    assert_eq!(
        field_reasons(&status),
        [("decision_id".to_owned(), "DECISION_NOT_FOUND".to_owned())]
    );

    // d belongs to a, not to b.
    let status = client
        .apply_decision(apply(&user, &s.b, &s.d, "k3"))
        .await
        .expect_err("a decision of another fragment");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "DECISION_NOT_OF_FRAGMENT",
    );
    assert_eq!(metadata(&status, "owner_fragment_id"), Some(s.a.clone()));

    client
        .apply_decision(apply(&user, &s.a, &s.d, "k4"))
        .await
        .expect("the first decision");
    let other = id();
    common::upsert_decision(&mut client, common::decision(&other, &s.a, "", 1)).await;
    let status = client
        .apply_decision(apply(&user, &s.a, &other, "k5"))
        .await
        .expect_err("a second decision on the fragment");
    assert_refused(&status, Code::AlreadyExists, "DECISION_ALREADY_TAKEN");

    assert_eq!(count(&service.pool, "user_decisions").await, 1);
    assert_eq!(
        count(&service.pool, "request_keys").await,
        before + 1,
        "only k4 was recorded"
    );
    let status = client
        .revert_decision(pb::RevertDecisionRequest {
            user_id: user.clone(),
            fragment_id: s.a.clone(),
            decision_id: unknown.clone(),
            idempotency_key: "r1".into(),
        })
        .await
        .expect_err("reverting an unknown decision");
    assert_refused(&status, Code::NotFound, "DECISION_NOT_FOUND");
}

#[tokio::test]
async fn known_requirements_that_do_not_hold_refuse_the_decision() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let (gated, d) = (id(), id());
    let mut fragment = common::fragment(&gated, "Gated");
    fragment.requirements = Some(pb::Requirements {
        required_fragment_ids: vec![s.b.clone()],
        min_level: 3,
        ..Default::default()
    });
    common::upsert_fragment(&mut client, fragment).await;
    common::upsert_decision(&mut client, common::decision(&d, &gated, "", 1)).await;
    let user = id();
    let status = client
        .apply_decision(apply(&user, &gated, &d, "g1"))
        .await
        .expect_err("b is not unlocked");
    assert_refused(&status, Code::FailedPrecondition, "REQUIREMENTS_NOT_MET");
    assert_eq!(metadata(&status, "missing_fragment_ids"), Some(s.b.clone()));
    assert_eq!(count(&service.pool, "user_decisions").await, 0);

    client
        .unlock_fragments(pb::UnlockFragmentsRequest {
            user_id: user.clone(),
            fragment_ids: vec![s.b.clone()],
            idempotency_key: "u1".into(),
        })
        .await
        .expect("unlocked");
    // The level is an external fact: the coordinator checked it before calling.
    client
        .apply_decision(apply(&user, &gated, &d, "g2"))
        .await
        .expect("known requirements hold now");
}

#[tokio::test]
async fn the_database_itself_refuses_a_second_decision_and_negative_counters() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    client
        .apply_decision(apply(&user, &s.a, &s.d, "k"))
        .await
        .expect("decided");
    let second = sqlx::query(
        "INSERT INTO user_decisions (user_id, fragment_id, decision_id, rewards, taken_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, '{}', now())",
    )
    .bind(&user)
    .bind(&s.a)
    .bind(&s.d)
    .execute(&service.pool)
    .await
    .expect_err("one decision per user and fragment");
    assert_eq!(
        second.as_database_error().and_then(|e| e.constraint()),
        Some("user_decisions_pkey")
    );
    let negative = sqlx::query("UPDATE fragments SET completion_count = -1 WHERE id = $1::uuid")
        .bind(&s.a)
        .execute(&service.pool)
        .await
        .expect_err("counters are never negative");
    assert_eq!(
        negative
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("23514")
    );
}
