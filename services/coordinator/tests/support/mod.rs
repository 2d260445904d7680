//! What the saga tests share: a fake participant whose answers are scripted per step and
//! whose effects are keyed by the idempotency key the engine derives (as every Phoenix
//! participant's are), a test saga definition over it, and engines with short leases.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phoenix_coordinator::saga::{
    EngineConfig, RetryPolicy, SagaDefinition, SagaEngine, SagaEvent, SagaRequest, Step,
    StepContext, StepResult,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the fake participant answers to the next call of a step.
#[derive(Clone)]
pub enum Answer {
    Unavailable,
    Refuse,
    Internal,
    /// Never answers (the step's deadline passes).
    Hang,
    /// Answers once `Notify` is notified (or never, if the engine gives up first).
    Wait(Arc<Notify>),
}

#[derive(Default)]
pub struct Books {
    /// Effects in place, by the action's idempotency key.
    pub effects: HashSet<String>,
    /// How many times each key's effect was applied (must never exceed 1).
    pub applied: HashMap<String, u32>,
    /// Compensations that undid an effect, in order, as step names.
    pub undone: Vec<String>,
    /// Calls per step (actions as `step`, compensations as `undo:step`).
    pub calls: HashMap<String, u32>,
    /// Idempotency keys seen per step, in order.
    pub keys: HashMap<String, Vec<String>>,
    /// Scripted answers per step (`step` or `undo:step`), consumed in order.
    pub script: HashMap<String, VecDeque<Answer>>,
    /// The trace id each call ran under.
    pub trace_ids: Vec<String>,
    /// Calls in flight per saga: two drivers of one saga would show 2.
    pub in_flight: HashMap<Uuid, u32>,
    pub overlapped: bool,
}

#[derive(Default, Clone)]
pub struct Participant(Arc<Mutex<Books>>);

impl Participant {
    pub fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.0.lock().expect("books")
    }

    pub fn script(&self, call: &str, answers: &[Answer]) {
        self.books()
            .script
            .entry(call.to_owned())
            .or_default()
            .extend(answers.iter().cloned());
    }

    pub fn calls(&self, call: &str) -> u32 {
        self.books().calls.get(call).copied().unwrap_or(0)
    }

    async fn call(&self, context: &StepContext, name: String) -> StepResult<()> {
        let answer = {
            let mut books = self.books();
            *books.calls.entry(name.clone()).or_default() += 1;
            books
                .keys
                .entry(name.clone())
                .or_default()
                .push(context.idempotency_key());
            let trace = phoenix_runtime::telemetry::current_trace_headers().0;
            let trace_id = trace.split('-').nth(1).unwrap_or_default().to_owned();
            books.trace_ids.push(trace_id);
            let in_flight = books.in_flight.entry(context.saga_id()).or_default();
            *in_flight += 1;
            if *in_flight > 1 {
                books.overlapped = true;
            }
            books.script.get_mut(&name).and_then(VecDeque::pop_front)
        };
        struct Leave(Participant, Uuid);
        impl Drop for Leave {
            fn drop(&mut self) {
                if let Some(n) = self.0.books().in_flight.get_mut(&self.1) {
                    *n -= 1;
                }
            }
        }
        let _leave = Leave(self.clone(), context.saga_id());
        match answer {
            None => Ok(()),
            Some(Answer::Unavailable) => Err(tonic::Status::unavailable("participant down").into()),
            Some(Answer::Refuse) => Err(phoenix_runtime::Error::from(
                phoenix_runtime::Refusal::precondition("INSUFFICIENT_FUNDS", "not enough"),
            )
            .into_status("fake.phoenix")
            .into()),
            Some(Answer::Internal) => Err(tonic::Status::internal("boom").into()),
            Some(Answer::Hang) => std::future::pending().await,
            Some(Answer::Wait(release)) => {
                release.notified().await;
                Ok(())
            }
        }
    }

    pub async fn act(&self, context: StepContext) -> StepResult<serde_json::Value> {
        self.call(&context, context.step().to_owned()).await?;
        let key = context.idempotency_key();
        let mut books = self.books();
        if books.effects.insert(key.clone()) {
            *books.applied.entry(key.clone()).or_default() += 1;
        }
        Ok(json!({ "key": key, "step": context.step() }))
    }

    pub async fn undo(&self, context: StepContext) -> StepResult<()> {
        self.call(&context, format!("undo:{}", context.step()))
            .await?;
        // Safe when the action never happened: nothing to remove, still OK.
        let output: Option<serde_json::Value> = context.output()?;
        if let Some(output) = &output {
            assert_eq!(output["key"], json!(context.action_idempotency_key()));
        }
        let mut books = self.books();
        if books.effects.remove(&context.action_idempotency_key()) {
            books.undone.push(context.step().to_owned());
        }
        Ok(())
    }

    /// Effects applied more than once.
    pub fn doubled(&self) -> Vec<String> {
        self.books()
            .applied
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

pub fn quick() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(5),
        multiplier: 2.0,
        max_delay: Duration::from_millis(20),
        max_attempts: 3,
        jitter: 0.5,
    }
}

pub fn step(participant: &Participant, name: &'static str) -> Step {
    let actor = participant.clone();
    let undoer = participant.clone();
    Step::new(name, move |context: StepContext| {
        let actor = actor.clone();
        async move { actor.act(context).await }
    })
    .compensate(move |context: StepContext| {
        let undoer = undoer.clone();
        async move { undoer.undo(context).await }
    })
    .retry(quick())
    .compensation_retry(quick())
    .deadline(Duration::from_millis(300))
}

/// `three` v1: steps a, b, c; a `test.three_completed` event on commit.
pub fn three(participant: &Participant) -> SagaDefinition {
    SagaDefinition::new("three", 1)
        .deadline(Duration::from_secs(20))
        .step(step(participant, "a"))
        .step(step(participant, "b"))
        .step(step(participant, "c"))
        .on_commit(|saga| {
            let input: serde_json::Value = saga.input()?;
            Ok(vec![SagaEvent::new(
                "test.three_completed",
                &text(input.to_string()),
            )])
        })
        .on_compensated(|saga| {
            let reason = saga.failure().map(|(_, f)| f.reason.clone());
            Ok(vec![SagaEvent::new(
                "test.three_compensated",
                &text(reason.unwrap_or_default()),
            )])
        })
}

/// A text payload for the test events (a protobuf `Value`).
fn text(value: String) -> prost_types::Value {
    prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue(value)),
    }
}

pub fn config(lease_ms: u64) -> EngineConfig {
    EngineConfig {
        owner_id: Uuid::new_v4(),
        lease: Duration::from_millis(lease_ms),
        recovery_interval: Duration::from_millis(50),
        recovery_batch: 100,
        replay_wait: Duration::from_secs(10),
    }
}

pub fn engine(pool: &PgPool, participant: &Participant, lease_ms: u64) -> SagaEngine {
    let engine = SagaEngine::new(pool.clone(), None, config(lease_ms));
    engine.register(three(participant)).expect("register");
    engine
}

pub async fn database() -> (phoenix_testkit::TestDatabase, PgPool) {
    phoenix_runtime::telemetry::init_for_tests();
    phoenix_testkit::migrated_database(&phoenix_coordinator::spec()).await
}

pub fn request(key: &str, input: serde_json::Value) -> SagaRequest {
    SagaRequest::new("three", key, &input)
        .expect("valid request")
        .user("user-1")
}

pub async fn log_kinds(pool: &PgPool, saga_id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT kind || CASE WHEN step_name <> '' THEN ':' || step_name ELSE '' END FROM saga_log WHERE saga_id = $1 ORDER BY seq")
        .bind(saga_id)
        .fetch_all(pool)
        .await
        .expect("log")
}

pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
