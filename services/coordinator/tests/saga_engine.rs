//! The saga engine against a real PostgreSQL: test-only saga definitions whose steps call the
//! fake participant of `support` (answers scripted per step, effects keyed by the idempotency
//! key the engine derives).

mod support;

use std::sync::Arc;
use std::time::Duration;

use phoenix_coordinator::saga::{
    SagaDefinition, SagaEngine, SagaRequest, SagaState, Step, StepContext,
};
use phoenix_runtime::{Error, RefusalKind};
use serde_json::json;
use sqlx::PgPool;
use support::{
    Answer, Participant, config, database, engine, log_kinds, quick, request, step, three, until,
};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

fn refused(error: &Error) -> (RefusalKind, String) {
    let refusal = error.refusal().expect("a refusal");
    (refusal.kind, refusal.reason.clone())
}

#[tokio::test]
async fn a_saga_completes_once_per_key_with_its_events_and_trace() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = engine(&pool, &participant, 5_000);

    let span = tracing::info_span!("caller");
    let trace_id = span
        .in_scope(phoenix_runtime::telemetry::current_trace_headers)
        .0
        .split('-')
        .nth(1)
        .expect("a trace id")
        .to_owned();
    let outcome = engine
        .run(request("key-1", json!({"item": 7})))
        .instrument(span)
        .await
        .expect("runs");
    assert_eq!(outcome.state, SagaState::Completed);
    assert!(!outcome.replayed);
    let a: serde_json::Value = outcome.output("a").expect("a's output");
    assert_eq!(a["key"], json!(format!("saga:{}:a", outcome.saga_id)));
    assert_eq!(
        log_kinds(&pool, outcome.saga_id).await,
        [
            "started",
            "step_succeeded:a",
            "step_succeeded:b",
            "step_succeeded:c",
            "completed"
        ]
    );
    // One trace: every step ran under the caller's trace id.
    let traces = participant.books().trace_ids.clone();
    assert_eq!(traces.len(), 3);
    assert!(
        traces.iter().all(|t| *t == trace_id),
        "{traces:?} vs {trace_id}"
    );

    // The on-commit event was appended with the completion, on the saga's aggregate.
    let events: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event_type, aggregate_id, traceparent FROM events WHERE aggregate_type = 'saga'",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "test.three_completed");
    assert_eq!(events[0].1, outcome.saga_id.to_string());
    assert!(events[0].2.contains(&trace_id));

    // The same key and request: the same saga, nothing run again.
    let again = engine
        .run(request("key-1", json!({"item": 7})))
        .await
        .expect("replays");
    assert!(again.replayed);
    assert_eq!(again.saga_id, outcome.saga_id);
    assert_eq!(again.state, SagaState::Completed);
    assert_eq!(participant.calls("a"), 1);

    // The same key with another request is refused, with its reason.
    let error = engine
        .run(request("key-1", json!({"item": 8})))
        .await
        .expect_err("reused");
    assert_eq!(
        refused(&error),
        (RefusalKind::Invalid, "IDEMPOTENCY_KEY_REUSED".to_owned())
    );
    let status = error.into_status("coordinator.phoenix");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(phoenix_testkit::reason(&status), "IDEMPOTENCY_KEY_REUSED");

    // Another user may use the same key.
    let other = SagaRequest::new("three", "key-1", &json!({"item": 8}))
        .expect("valid")
        .user("user-2");
    assert_eq!(
        engine.run(other).await.expect("runs").state,
        SagaState::Completed
    );
    // An empty key is refused before anything is written.
    let error = SagaRequest::new("three", "", &json!({})).expect_err("no key");
    assert_eq!(
        refused(&error),
        (RefusalKind::Invalid, "IDEMPOTENCY_KEY_REQUIRED".to_owned())
    );
}

#[tokio::test]
async fn unavailable_is_retried_and_a_refusal_compensates_in_reverse_order() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = engine(&pool, &participant, 5_000);

    participant.script("b", &[Answer::Unavailable, Answer::Unavailable]);
    let outcome = engine
        .run(request("retried", json!({})))
        .await
        .expect("runs");
    assert_eq!(outcome.state, SagaState::Completed);
    assert_eq!(participant.calls("b"), 3);
    let keys = participant.books().keys["b"].clone();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one key on every retry: {keys:?}"
    );
    let kinds = log_kinds(&pool, outcome.saga_id).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "step_attempt_failed:b")
            .count(),
        2
    );

    participant.script("c", &[Answer::Refuse]);
    let outcome = engine
        .run(request("refused", json!({})))
        .await
        .expect("runs");
    assert_eq!(outcome.state, SagaState::Compensated);
    let failure = outcome.failure().expect("why");
    assert_eq!(failure.code, "FAILED_PRECONDITION");
    assert_eq!(failure.reason, "INSUFFICIENT_FUNDS");
    assert_eq!(outcome.failure.as_ref().expect("step").0, "c");
    assert_eq!(participant.calls("c"), 2, "a refusal is not retried");
    assert_eq!(participant.books().undone, vec!["b", "a"]);
    assert_eq!(participant.calls("undo:c"), 0, "a refused step did nothing");
    let kinds = log_kinds(&pool, outcome.saga_id).await;
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            "step_refused:c",
            "undo_succeeded:b",
            "undo_succeeded:a",
            "compensated"
        ]
    );
    let event: String = sqlx::query_scalar("SELECT event_type FROM events WHERE aggregate_id = $1")
        .bind(outcome.saga_id.to_string())
        .fetch_one(&pool)
        .await
        .expect("the compensation's event");
    assert_eq!(event, "test.three_compensated");
}

#[tokio::test]
async fn a_step_whose_outcome_is_unknown_is_compensated_too() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = engine(&pool, &participant, 5_000);

    // b never answers: three attempts pass their deadline, then its outcome is unknown.
    participant.script("b", &[Answer::Hang, Answer::Hang, Answer::Hang]);
    let outcome = engine.run(request("hangs", json!({}))).await.expect("runs");
    assert_eq!(outcome.state, SagaState::Compensated);
    assert_eq!(
        outcome.failure().expect("why").reason,
        "STEP_DEADLINE_EXCEEDED"
    );
    assert_eq!(
        participant.calls("undo:b"),
        1,
        "the unknown step is compensated"
    );
    assert_eq!(
        participant.books().undone,
        vec!["a"],
        "b had no effect to undo"
    );

    // INTERNAL: not retried, compensated as unknown.
    participant.script("c", &[Answer::Internal]);
    let outcome = engine
        .run(request("internal", json!({})))
        .await
        .expect("runs");
    assert_eq!(outcome.state, SagaState::Compensated);
    assert_eq!(participant.calls("c"), 1);
    assert_eq!(participant.calls("undo:c"), 1);
    let kinds = log_kinds(&pool, outcome.saga_id).await;
    assert!(kinds.contains(&"step_unknown:c".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn a_failing_compensation_is_stuck_until_retry_saga_completes_it() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = engine(&pool, &participant, 5_000);

    participant.script("c", &[Answer::Refuse]);
    participant.script("undo:a", &vec![Answer::Unavailable; 3]);
    let outcome = engine.run(request("stuck", json!({}))).await.expect("runs");
    assert_eq!(outcome.state, SagaState::Stuck);
    assert_eq!(participant.calls("undo:a"), 3, "the compensation's budget");
    assert_eq!(participant.books().undone, vec!["b"]);
    let state: String = sqlx::query_scalar("SELECT state FROM sagas WHERE saga_id = $1")
        .bind(outcome.saga_id)
        .fetch_one(&pool)
        .await
        .expect("row");
    assert_eq!(state, "STUCK");
    let kinds = log_kinds(&pool, outcome.saga_id).await;
    assert_eq!(kinds.last().map(String::as_str), Some("stuck:a"));
    let metrics = phoenix_runtime::metrics::global().render();
    assert!(
        metrics.contains(r#"phoenix_sagas_ended_total{saga_type="three",outcome="stuck"}"#),
        "counted: {metrics}"
    );
    // Still stuck after a recovery pass: a stuck saga is never dropped nor silently resumed.
    assert_eq!(engine.recover_now().await.expect("pass"), 0);
    assert_eq!(
        engine.outcome(outcome.saga_id).await.expect("read").state,
        SagaState::Stuck
    );

    // The replayed key answers STUCK too.
    let again = engine
        .run(request("stuck", json!({})))
        .await
        .expect("replay");
    assert_eq!((again.state, again.replayed), (SagaState::Stuck, true));

    let retried = engine.retry(outcome.saga_id).await.expect("retries");
    assert_eq!(retried.state, SagaState::Compensated);
    assert_eq!(participant.books().undone, vec!["b", "a"]);
    let kinds = log_kinds(&pool, outcome.saga_id).await;
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["retry_requested", "undo_succeeded:a", "compensated"]
    );

    let error = engine.retry(outcome.saga_id).await.expect_err("not stuck");
    assert_eq!(
        refused(&error),
        (RefusalKind::Precondition, "SAGA_NOT_STUCK".to_owned())
    );
    let error = engine.retry(Uuid::new_v4()).await.expect_err("unknown");
    assert_eq!(
        refused(&error),
        (RefusalKind::NotFound, "SAGA_NOT_FOUND".to_owned())
    );
}

/// Runs a saga on `first` with step `blocked` held, crashes `first` while it waits there, and
/// lets `second` adopt it once the lease expired.
async fn crash_at(
    pool: &PgPool,
    participant: &Participant,
    blocked: &str,
    key: &str,
) -> (Uuid, SagaEngine) {
    let first = engine(pool, participant, 200);
    let release = Arc::new(Notify::new());
    participant.script(blocked, &[Answer::Wait(release)]);
    let calls_before = participant.calls(blocked);
    let running = tokio::spawn({
        let first = first.clone();
        let request = request(key, json!({"key": key}));
        async move {
            first
                .run(request)
                .instrument(tracing::info_span!("caller"))
                .await
        }
    });
    until("the blocked step", || {
        participant.calls(blocked) > calls_before
    })
    .await;
    first.abandon_all();
    let error = running.await.expect("joins").expect_err("abandoned");
    assert_eq!(error.reason(), "SAGA_ABANDONED");
    let saga_id: Uuid = sqlx::query_scalar("SELECT saga_id FROM sagas WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .expect("the saga");

    // The successor knows version 1 and a newer version 2 with one more step: the adopted
    // saga must resume on the version it began with.
    let second = engine(pool, participant, 5_000);
    second
        .register(
            three(participant)
                .step(step(participant, "d"))
                .on_commit(|_| Ok(vec![])),
        )
        .expect_err("same version twice is refused");
    let v2 = SagaDefinition::new("three", 2)
        .step(step(participant, "a"))
        .step(step(participant, "b"))
        .step(step(participant, "c"))
        .step(step(participant, "d"));
    second.register(v2).expect("v2");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(second.recover_now().await.expect("pass"), 1);
    (saga_id, second)
}

#[tokio::test]
async fn a_crash_between_any_two_steps_is_recovered_with_the_same_keys() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    for blocked in ["a", "b", "c"] {
        let key = format!("crash-{blocked}");
        let (saga_id, second) = crash_at(&pool, &participant, blocked, &key).await;
        let outcome = wait_final(&second, saga_id).await;
        assert_eq!(
            outcome.state,
            SagaState::Completed,
            "crashed before {blocked}"
        );
        assert_eq!(outcome.version, 1, "resumed on the version it began with");
        let keys = participant.books().keys[blocked].clone();
        let tail = &keys[keys.len() - 2..];
        assert_eq!(tail[0], tail[1], "the same key after recovery");
        let kinds = log_kinds(&pool, saga_id).await;
        assert!(kinds.contains(&"adopted".to_owned()), "{kinds:?}");
        // The recovered saga continues the trace of the call that started it.
        let stored: String = sqlx::query_scalar("SELECT traceparent FROM sagas WHERE saga_id = $1")
            .bind(saga_id)
            .fetch_one(&pool)
            .await
            .expect("trace");
        let trace_id = stored.split('-').nth(1).expect("stored trace").to_owned();
        assert_eq!(participant.books().trace_ids.last(), Some(&trace_id));
        assert!(!kinds.iter().any(|k| k.ends_with(":d")), "{kinds:?}");
    }
    assert_eq!(participant.calls("d"), 0);
    assert!(
        participant.doubled().is_empty(),
        "{:?}",
        participant.doubled()
    );
    assert_eq!(participant.books().effects.len(), 9);

    // A crash in the middle of compensation: the successor finishes undoing.
    participant.script("c", &[Answer::Refuse]);
    let (saga_id, second) = crash_at(&pool, &participant, "undo:a", "crash-undo").await;
    let outcome = wait_final(&second, saga_id).await;
    assert_eq!(outcome.state, SagaState::Compensated);
    let undone = participant.books().undone.clone();
    assert_eq!(undone[undone.len() - 2..], ["b", "a"]);
    assert_eq!(
        participant.books().effects.len(),
        9,
        "the compensated saga left nothing"
    );
}

async fn wait_final(engine: &SagaEngine, saga_id: Uuid) -> phoenix_coordinator::saga::SagaOutcome {
    for _ in 0..500 {
        let outcome = engine.outcome(saga_id).await.expect("read");
        if !outcome.state.is_active() {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("saga {saga_id} did not end");
}

#[tokio::test]
async fn two_coordinators_on_one_database_never_drive_the_same_saga() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let crashed = engine(&pool, &participant, 200);
    let release = Arc::new(Notify::new());
    let sagas = 20;
    participant.script("b", &vec![Answer::Wait(release); sagas]);
    let mut runs = Vec::new();
    for n in 0..sagas {
        let crashed = crashed.clone();
        runs.push(tokio::spawn(async move {
            crashed
                .run(request(&format!("pair-{n}"), json!({"n": n})))
                .await
        }));
    }
    until("every saga at b", || {
        participant.calls("b") as usize == sagas
    })
    .await;
    crashed.abandon_all();
    for run in runs {
        assert!(run.await.expect("joins").is_err());
    }
    tokio::time::sleep(Duration::from_millis(250)).await;

    let one = engine(&pool, &participant, 5_000);
    let two = engine(&pool, &participant, 5_000);
    let (adopted_one, adopted_two) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += one.recover_now().await.expect("pass");
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += two.recover_now().await.expect("pass");
            }
            n
        }
    );
    assert_eq!(
        adopted_one + adopted_two,
        sagas,
        "each saga adopted exactly once"
    );
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT saga_id FROM sagas")
        .fetch_all(&pool)
        .await
        .expect("ids");
    for saga_id in ids {
        assert_eq!(wait_final(&one, saga_id).await.state, SagaState::Completed);
        let adoptions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM saga_log WHERE saga_id = $1 AND kind = 'adopted'",
        )
        .bind(saga_id)
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(adoptions, 1);
    }
    assert!(
        !participant.books().overlapped,
        "two drivers called for one saga at once"
    );
    assert!(participant.doubled().is_empty());
    assert_eq!(participant.books().effects.len(), sagas * 3);
}

#[tokio::test]
async fn a_stale_owners_writes_are_refused_by_the_generation() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    // The stale owner renews nothing (no background work), so its 200 ms lease lapses while
    // its step b is held.
    let stale = engine(&pool, &participant, 200);
    let release = Arc::new(Notify::new());
    participant.script("b", &[Answer::Wait(release.clone())]);
    let running = tokio::spawn({
        let stale = stale.clone();
        async move { stale.run(request("stale", json!({}))).await }
    });
    until("b held", || participant.calls("b") == 1).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let successor = engine(&pool, &participant, 5_000);
    assert_eq!(successor.recover_now().await.expect("pass"), 1);
    let saga_id: Uuid = sqlx::query_scalar("SELECT saga_id FROM sagas")
        .fetch_one(&pool)
        .await
        .expect("id");
    assert_eq!(
        wait_final(&successor, saga_id).await.state,
        SagaState::Completed
    );

    // Now the stale owner's step answers: its write is fenced off, and its caller gets the
    // outcome the successor reached.
    release.notify_one();
    let outcome = running.await.expect("joins").expect("answered");
    assert_eq!(outcome.state, SagaState::Completed);
    let stale_writes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM saga_log WHERE saga_id = $1 AND generation = 1
         AND seq > (SELECT seq FROM saga_log WHERE saga_id = $1 AND kind = 'adopted')",
    )
    .bind(saga_id)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(stale_writes, 0);
    assert_eq!(participant.books().effects.len(), 3);
    assert!(participant.doubled().is_empty());
}

#[tokio::test]
async fn the_log_refuses_update_delete_and_truncate() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = engine(&pool, &participant, 5_000);
    engine.run(request("log", json!({}))).await.expect("runs");
    for statement in [
        "UPDATE saga_log SET kind = 'completed' WHERE seq = 2",
        "DELETE FROM saga_log WHERE seq = 2",
        "TRUNCATE saga_log CASCADE",
    ] {
        let error = sqlx::query(statement)
            .execute(&pool)
            .await
            .expect_err(statement);
        let database = error.as_database_error().expect("database error");
        assert_eq!(database.code().as_deref(), Some("23000"), "{statement}");
        assert!(
            database.message().contains("append-only"),
            "{}",
            database.message()
        );
    }
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM saga_log")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(records, 5);
}

#[tokio::test]
async fn cancel_compensates_a_running_saga_with_its_step_in_flight() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = engine(&pool, &participant, 5_000);
    participant.script("b", &vec![Answer::Hang; 3]);
    let running = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run(request("cancel", json!({}))).await }
    });
    until("b in flight", || participant.calls("b") == 1).await;
    let saga_id: Uuid = sqlx::query_scalar("SELECT saga_id FROM sagas")
        .fetch_one(&pool)
        .await
        .expect("id");
    let cancelled = engine.cancel(saga_id).await.expect("cancels");
    assert_eq!(cancelled.state, SagaState::Compensated);
    assert_eq!(cancelled.failure().expect("why").reason, "SAGA_CANCELLED");
    assert_eq!(
        participant.calls("undo:b"),
        1,
        "the step in flight is compensated"
    );
    assert_eq!(participant.books().undone, vec!["a"]);
    assert_eq!(
        running.await.expect("joins").expect("answers").state,
        SagaState::Compensated
    );
    let error = engine.cancel(saga_id).await.expect_err("finished");
    assert_eq!(
        refused(&error),
        (RefusalKind::Precondition, "SAGA_FINISHED".to_owned())
    );
}

#[tokio::test]
async fn a_pivot_is_never_compensated_and_later_steps_only_go_forward() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = SagaEngine::new(pool.clone(), None, config(5_000));
    let pivot = Step::new("claim", {
        let p = participant.clone();
        move |context: StepContext| {
            let p = p.clone();
            async move { p.act(context).await }
        }
    })
    .retry(quick())
    .pivot();
    engine
        .register(
            SagaDefinition::new("pivoted", 1)
                .step(step(&participant, "check"))
                .step(pivot)
                .step(step(&participant, "credit")),
        )
        .expect("register");
    let run = |key: &str| {
        SagaRequest::new("pivoted", key, &json!({}))
            .expect("valid")
            .user("u")
    };
    // Refused after the pivot: stuck going forward, nothing undone.
    participant.script("credit", &[Answer::Refuse]);
    let outcome = engine.run(run("p1")).await.expect("runs");
    assert_eq!(outcome.state, SagaState::Stuck);
    assert!(participant.books().undone.is_empty());
    assert_eq!(participant.calls("undo:check"), 0);
    let error = engine.cancel(outcome.saga_id).await.expect_err("stuck");
    assert_eq!(refused(&error).1, "SAGA_STUCK");
    // RetrySaga resumes it forward.
    let retried = engine.retry(outcome.saga_id).await.expect("retries");
    assert_eq!(retried.state, SagaState::Completed);

    // The pivot refused: the steps before it are compensated.
    participant.script("claim", &[Answer::Refuse]);
    let outcome = engine.run(run("p2")).await.expect("runs");
    assert_eq!(outcome.state, SagaState::Compensated);
    assert_eq!(participant.books().undone, vec!["check"]);
}

#[tokio::test]
async fn the_whole_saga_deadline_compensates_the_step_in_flight() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    let engine = SagaEngine::new(pool.clone(), None, config(5_000));
    engine
        .register(
            SagaDefinition::new("short", 1)
                .deadline(Duration::from_millis(400))
                .step(step(&participant, "a"))
                .step(step(&participant, "b").deadline(Duration::from_secs(5))),
        )
        .expect("register");
    participant.script("b", &[Answer::Hang]);
    let started = std::time::Instant::now();
    let outcome = engine
        .run(SagaRequest::new("short", "late", &json!({})).expect("valid"))
        .await
        .expect("runs");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.state, SagaState::Compensated);
    assert_eq!(
        outcome.failure().expect("why").reason,
        "SAGA_DEADLINE_EXCEEDED"
    );
    assert_eq!(participant.calls("undo:b"), 1);
    assert_eq!(participant.books().undone, vec!["a"]);
}

#[tokio::test]
async fn recovery_runs_by_itself_and_a_saga_it_cannot_resume_stops_no_other() {
    let (_db, pool) = database().await;
    let participant = Participant::default();
    // The crashed engine knew a saga type its successor does not.
    let crashed = engine(&pool, &participant, 200);
    crashed
        .register(SagaDefinition::new("retired", 1).step(step(&participant, "x")))
        .expect("register");
    let release = Arc::new(Notify::new());
    participant.script("b", &[Answer::Wait(release.clone())]);
    participant.script("x", &[Answer::Wait(release)]);
    let runs = [
        tokio::spawn({
            let crashed = crashed.clone();
            async move { crashed.run(request("known", json!({}))).await }
        }),
        tokio::spawn({
            let crashed = crashed.clone();
            async move {
                crashed
                    .run(SagaRequest::new("retired", "unknown", &json!({})).expect("valid"))
                    .await
            }
        }),
    ];
    until("both held", || {
        participant.calls("b") == 1 && participant.calls("x") == 1
    })
    .await;
    crashed.abandon_all();
    for run in runs {
        assert!(run.await.expect("joins").is_err());
    }

    let successor = engine(&pool, &participant, 5_000);
    let shutdown = tokio_util::sync::CancellationToken::new();
    successor.start_background(shutdown.clone());
    let known: uuid::Uuid =
        sqlx::query_scalar("SELECT saga_id FROM sagas WHERE saga_type = 'three'")
            .fetch_one(&pool)
            .await
            .expect("id");
    assert_eq!(
        wait_final(&successor, known).await.state,
        SagaState::Completed
    );
    let (state, adopted): (String, i64) = sqlx::query_as(
        "SELECT state, (SELECT count(*) FROM saga_log l WHERE l.saga_id = s.saga_id AND kind = 'adopted')
         FROM sagas s WHERE saga_type = 'retired'",
    )
    .fetch_one(&pool)
    .await
    .expect("row");
    assert_eq!(
        (state.as_str(), adopted),
        ("RUNNING", 0),
        "left, not dropped, for a coordinator that has its definition"
    );
    let metrics = phoenix_runtime::metrics::global().render();
    assert!(metrics.contains("phoenix_sagas_adopted_total"), "{metrics}");
    assert!(
        metrics.contains(r#"phoenix_sagas_ended_total{saga_type="three",outcome="completed"}"#)
    );
    shutdown.cancel();
}
