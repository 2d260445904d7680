//! Driving one saga: its steps forward, then (if it must) their compensations backward, one
//! log append per transition, as the holder of one lease generation.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use phoenix_runtime::Error;
use phoenix_runtime::stream::{NewEvent, Origin};
use tokio::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::context::{FinishedSaga, SagaData, StepContext};
use super::definition::{EventsOf, SagaDefinition, StepError};
use super::engine::{RunningSaga, SagaEngine};
use super::log::{Direction, LogRecord, Progress, RecordKind, SagaState, StepFailure};
use super::metrics;
use super::store::{self, Appended, NewRecord, Transition};

/// Why a driver stopped before the saga ended or got stuck.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Another owner holds the saga now; it drives it.
    Fenced,
    /// This engine stopped driving it without writing (a simulated crash, a lost lease).
    Abandoned,
    /// The log could not be written; the lease will expire and recovery resumes it.
    Failed(Error),
}

pub(crate) struct Driver {
    pub engine: SagaEngine,
    pub definition: Arc<SagaDefinition>,
    pub saga: Arc<SagaData>,
    pub progress: Progress,
    pub generation: i64,
    /// The whole saga's deadline.
    pub deadline: Instant,
    pub cancel_requested: bool,
}

/// Removes the saga from the engine's running set when its driver ends, however it ends.
struct Registered<'a> {
    engine: &'a SagaEngine,
    saga_id: uuid::Uuid,
    generation: i64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut running = self
            .engine
            .0
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if running
            .get(&self.saga_id)
            .is_some_and(|saga| saga.generation == self.generation)
        {
            running.remove(&self.saga_id);
        }
    }
}

/// A record about to be written, before its seq is known.
struct Entry {
    kind: RecordKind,
    step: Option<usize>,
    attempt: u32,
    output: Option<serde_json::Value>,
    failure: Option<StepFailure>,
    direction: Option<Direction>,
    started_at: chrono::DateTime<Utc>,
}

impl Entry {
    fn new(kind: RecordKind, step: Option<usize>) -> Self {
        Self {
            kind,
            step,
            attempt: 0,
            output: None,
            failure: None,
            direction: None,
            started_at: Utc::now(),
        }
    }

    fn attempt(mut self, attempt: u32, started_at: chrono::DateTime<Utc>) -> Self {
        self.attempt = attempt;
        self.started_at = started_at;
        self
    }

    fn failure(mut self, failure: StepFailure) -> Self {
        self.failure = Some(failure);
        self
    }
}

/// How an attempt of an action or compensation ended.
enum Attempt<T> {
    Done(T),
    Failed(StepError),
    /// The operator cancelled the saga while the action ran.
    Cancelled,
}

impl Driver {
    /// Drives the saga until it ends or gets stuck; answers its progress then.
    pub async fn drive(mut self) -> Result<Progress, Stop> {
        let tokens = RunningSaga {
            generation: self.generation,
            abandon: tokio_util::sync::CancellationToken::new(),
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        self.engine
            .0
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.saga.saga_id, tokens.clone());
        let engine = self.engine.clone();
        let _registered = Registered {
            engine: &engine,
            saga_id: self.saga.saga_id,
            generation: self.generation,
        };
        loop {
            if tokens.abandon.is_cancelled() {
                return Err(Stop::Abandoned);
            }
            match self.progress.state {
                SagaState::Running => self.forward(&tokens).await?,
                SagaState::Compensating => self.backward(&tokens).await?,
                SagaState::Completed | SagaState::Compensated | SagaState::Stuck => {
                    return Ok(self.progress);
                }
            }
        }
    }

    fn steps(&self) -> usize {
        self.definition.steps.len()
    }

    /// Whether a pivot before `step` has succeeded: the saga can only go forward.
    fn past_pivot(&self, step: usize) -> bool {
        self.definition.steps[..step.min(self.steps())]
            .iter()
            .enumerate()
            .any(|(index, s)| s.pivot && self.progress.outputs.contains_key(&index))
    }

    async fn forward(&mut self, tokens: &RunningSaga) -> Result<(), Stop> {
        let index = self.progress.next_step();
        let past_pivot = self.past_pivot(index);
        if !past_pivot && (self.cancel_requested || tokens.cancel.is_cancelled()) {
            let cancelled = Entry::new(RecordKind::Cancelled, None).failure(cancelled());
            return self
                .write(vec![cancelled], SagaState::Compensating, None)
                .await;
        }
        if index >= self.steps() {
            // Every step succeeded, but the end could not be written with them (its events
            // failed, and an operator resumed the saga).
            return self.complete(Vec::new()).await;
        }
        let step = self.definition.steps[index].clone();
        let forward_only = past_pivot || step.pivot;
        let mut attempt = self.progress.attempts.get(&index).copied().unwrap_or(0) + 1;
        loop {
            if !forward_only && Instant::now() >= self.deadline {
                let unknown =
                    Entry::new(RecordKind::StepUnknown, Some(index)).failure(StepFailure::new(
                        "DEADLINE_EXCEEDED",
                        "SAGA_DEADLINE_EXCEEDED",
                        format!(
                            "the saga's deadline of {:?} passed",
                            self.definition.deadline
                        ),
                    ));
                return self
                    .write(vec![unknown], SagaState::Compensating, None)
                    .await;
            }
            let started_at = Utc::now();
            let mut until = Instant::now() + step.deadline;
            if !forward_only {
                until = until.min(self.deadline);
            }
            let context = self.context(index, attempt, false, until);
            let action = step.action.run(context);
            let allow_cancel = !forward_only;
            let outcome = self.attempt(tokens, allow_cancel, until, action).await?;
            metrics::step_finished(
                self.saga.saga_type,
                step.name,
                (Utc::now() - started_at).to_std().unwrap_or_default(),
            );
            let error = match outcome {
                Attempt::Done(output) => {
                    let mut succeeded = Entry::new(RecordKind::StepSucceeded, Some(index))
                        .attempt(attempt, started_at);
                    succeeded.output = Some(output);
                    if index + 1 == self.steps() {
                        return self.complete(vec![succeeded]).await;
                    }
                    return self.write(vec![succeeded], SagaState::Running, None).await;
                }
                Attempt::Cancelled => {
                    let cancelled = Entry::new(RecordKind::Cancelled, Some(index))
                        .attempt(attempt, started_at)
                        .failure(cancelled());
                    return self
                        .write(vec![cancelled], SagaState::Compensating, None)
                        .await;
                }
                Attempt::Failed(error) => error,
            };
            match error {
                StepError::Transient(failure) if attempt < step.retry.max_attempts => {
                    let failed = Entry::new(RecordKind::StepAttemptFailed, Some(index))
                        .attempt(attempt, started_at)
                        .failure(failure.clone());
                    self.write(vec![failed], SagaState::Running, None).await?;
                    let pause = step
                        .retry
                        .delay(attempt, rand::random(), failure.retry_delay());
                    self.pause(tokens, pause, allow_cancel).await?;
                    attempt += 1;
                }
                StepError::Refused(failure) if !past_pivot => {
                    let refused = Entry::new(RecordKind::StepRefused, Some(index))
                        .attempt(attempt, started_at)
                        .failure(failure);
                    return self
                        .write(vec![refused], SagaState::Compensating, None)
                        .await;
                }
                StepError::Transient(failure) | StepError::Unknown(failure) if !forward_only => {
                    let unknown = Entry::new(RecordKind::StepUnknown, Some(index))
                        .attempt(attempt, started_at)
                        .failure(failure);
                    return self
                        .write(vec![unknown], SagaState::Compensating, None)
                        .await;
                }
                other => {
                    // A pivot whose outcome is unknown, or a step after a pivot that cannot
                    // finish: going back is not possible, so an operator must look.
                    let mut stuck = Entry::new(RecordKind::Stuck, Some(index))
                        .attempt(attempt, started_at)
                        .failure(other.failure().clone());
                    stuck.direction = Some(Direction::Forward);
                    return self.stuck(stuck).await;
                }
            }
        }
    }

    async fn backward(&mut self, tokens: &RunningSaga) -> Result<(), Stop> {
        let pending: Vec<usize> = self
            .progress
            .to_undo()
            .into_iter()
            .filter(|index| self.definition.steps[*index].compensation.is_some())
            .collect();
        let Some(&index) = pending.first() else {
            return self.compensated(Vec::new()).await;
        };
        let step = self.definition.steps[index].clone();
        let Some(compensation) = step.compensation.clone() else {
            return Err(Stop::Failed(Error::invariant(
                "SAGA_COMPENSATION_MISSING",
                step.name,
            )));
        };
        let mut attempt = self
            .progress
            .undo_attempts
            .get(&index)
            .copied()
            .unwrap_or(0)
            + 1;
        loop {
            let started_at = Utc::now();
            let until = Instant::now() + step.deadline;
            let context = self.context(index, attempt, true, until);
            let undo = compensation.undo(context);
            let outcome = self.attempt(tokens, false, until, undo).await?;
            metrics::step_finished(
                self.saga.saga_type,
                step.name,
                (Utc::now() - started_at).to_std().unwrap_or_default(),
            );
            let error = match outcome {
                // A compensation is not cancellable; a spurious wake-up is one more attempt.
                Attempt::Cancelled => continue,
                Attempt::Done(()) => {
                    let undone = Entry::new(RecordKind::UndoSucceeded, Some(index))
                        .attempt(attempt, started_at);
                    if pending.len() == 1 {
                        return self.compensated(vec![undone]).await;
                    }
                    return self
                        .write(vec![undone], SagaState::Compensating, None)
                        .await;
                }
                Attempt::Failed(error) => error,
            };
            let retryable = !matches!(error, StepError::Refused(_));
            if retryable && attempt < step.compensation_retry.max_attempts {
                let failure = error.failure().clone();
                let failed = Entry::new(RecordKind::UndoAttemptFailed, Some(index))
                    .attempt(attempt, started_at)
                    .failure(failure.clone());
                self.write(vec![failed], SagaState::Compensating, None)
                    .await?;
                let pause =
                    step.compensation_retry
                        .delay(attempt, rand::random(), failure.retry_delay());
                self.pause(tokens, pause, false).await?;
                attempt += 1;
                continue;
            }
            let mut stuck = Entry::new(RecordKind::Stuck, Some(index))
                .attempt(attempt, started_at)
                .failure(error.failure().clone());
            stuck.direction = Some(Direction::Backward);
            return self.stuck(stuck).await;
        }
    }

    /// Runs one attempt until it ends, its deadline passes, the saga is cancelled (when
    /// `allow_cancel`) or the engine abandons it. A panicking step is an unknown outcome.
    async fn attempt<T>(
        &self,
        tokens: &RunningSaga,
        allow_cancel: bool,
        until: Instant,
        call: super::definition::StepFuture<T>,
    ) -> Result<Attempt<T>, Stop> {
        let span = self.span();
        let call = std::panic::AssertUnwindSafe(call.instrument(span)).catch_unwind();
        tokio::select! {
            biased;
            () = tokens.abandon.cancelled() => Err(Stop::Abandoned),
            () = tokens.cancel.cancelled(), if allow_cancel => Ok(Attempt::Cancelled),
            ended = tokio::time::timeout_at(until, call) => Ok(match ended {
                Ok(Ok(Ok(value))) => Attempt::Done(value),
                Ok(Ok(Err(error))) => Attempt::Failed(error),
                Ok(Err(_panic)) => Attempt::Failed(StepError::unknown(
                    "STEP_PANICKED",
                    "the step panicked; its outcome is unknown",
                )),
                Err(_elapsed) => Attempt::Failed(StepError::Transient(StepFailure::new(
                    "DEADLINE_EXCEEDED",
                    "STEP_DEADLINE_EXCEEDED",
                    "the step's attempt did not finish within its deadline",
                ))),
            }),
        }
    }

    /// Waits out a retry pause, unless the engine abandons the saga or (when `allow_cancel`) it
    /// is cancelled, which the next loop turn acts on.
    async fn pause(
        &mut self,
        tokens: &RunningSaga,
        pause: Duration,
        allow_cancel: bool,
    ) -> Result<(), Stop> {
        tokio::select! {
            biased;
            () = tokens.abandon.cancelled() => Err(Stop::Abandoned),
            () = tokens.cancel.cancelled(), if allow_cancel => {
                self.cancel_requested = true;
                Ok(())
            }
            () = tokio::time::sleep(pause) => Ok(()),
        }
    }

    /// A span continuing the saga's stored trace: the runtime's client sends its context.
    fn span(&self) -> tracing::Span {
        let span = tracing::info_span!(
            "saga_step",
            saga_id = %self.saga.saga_id,
            saga_type = self.saga.saga_type,
        );
        if !self.saga.trace.traceparent.is_empty() {
            let mut headers = http::HeaderMap::new();
            for (name, value) in [
                ("traceparent", &self.saga.trace.traceparent),
                ("tracestate", &self.saga.trace.tracestate),
            ] {
                if let Ok(value) = http::HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            let _ = span.set_parent(phoenix_runtime::telemetry::extract_context(&headers));
        }
        span
    }

    fn context(
        &self,
        step: usize,
        attempt: u32,
        compensating: bool,
        until: Instant,
    ) -> StepContext {
        StepContext {
            saga: self.saga.clone(),
            outputs: Arc::new(self.progress.outputs.clone()),
            step,
            attempt,
            compensating,
            deadline: until,
        }
    }

    async fn complete(&mut self, entries: Vec<Entry>) -> Result<(), Stop> {
        let mut outputs = self.progress.outputs.clone();
        for entry in &entries {
            if let (Some(step), Some(output)) = (entry.step, &entry.output) {
                outputs.insert(step, output.clone());
            }
        }
        let builder = self.definition.on_commit.clone();
        self.end(entries, SagaState::Completed, builder, outputs, None)
            .await
    }

    async fn compensated(&mut self, entries: Vec<Entry>) -> Result<(), Stop> {
        let failure = self.progress.failure.clone();
        let outputs = self.progress.outputs.clone();
        let builder = self.definition.on_compensated.clone();
        self.end(entries, SagaState::Compensated, builder, outputs, failure)
            .await
    }

    /// Writes `entries` and the end `state` (completed or compensated) with its events; when
    /// the events cannot be built, the saga is STUCK instead, so no end goes without them.
    async fn end(
        &mut self,
        mut entries: Vec<Entry>,
        state: SagaState,
        builder: Option<EventsOf>,
        outputs: std::collections::BTreeMap<usize, serde_json::Value>,
        failure: Option<(String, StepFailure)>,
    ) -> Result<(), Stop> {
        let (kind, direction) = if state == SagaState::Completed {
            (RecordKind::Completed, Direction::Forward)
        } else {
            (RecordKind::Compensated, Direction::Backward)
        };
        match self.events(builder, outputs, failure) {
            Ok(events) => {
                entries.push(Entry::new(kind, None));
                self.write(entries, state, Some(events)).await?;
                metrics::saga_finished(self.saga.saga_type, state);
                Ok(())
            }
            Err(error) => {
                let mut stuck = Entry::new(RecordKind::Stuck, None).failure(events_failed(&error));
                stuck.direction = Some(direction);
                entries.push(stuck);
                self.write(entries, SagaState::Stuck, None).await?;
                self.report_stuck();
                Ok(())
            }
        }
    }

    async fn stuck(&mut self, entry: Entry) -> Result<(), Stop> {
        self.write(vec![entry], SagaState::Stuck, None).await?;
        self.report_stuck();
        Ok(())
    }

    fn report_stuck(&self) {
        metrics::saga_finished(self.saga.saga_type, SagaState::Stuck);
        let (step, failure) = self
            .progress
            .failure
            .clone()
            .unwrap_or_else(|| (String::new(), StepFailure::new("UNKNOWN", "UNKNOWN", "")));
        tracing::error!(
            saga_id = %self.saga.saga_id,
            saga_type = self.saga.saga_type,
            step,
            code = failure.code,
            reason = failure.reason,
            message = failure.message,
            "saga STUCK: an operator must look at it, then RetrySaga"
        );
    }

    /// The end events of the saga, as stream rows on the saga's own aggregate.
    fn events(
        &self,
        builder: Option<EventsOf>,
        outputs: std::collections::BTreeMap<usize, serde_json::Value>,
        failure: Option<(String, StepFailure)>,
    ) -> Result<Vec<NewEvent>, StepError> {
        let Some(builder) = builder else {
            return Ok(Vec::new());
        };
        let finished = FinishedSaga {
            saga: self.saga.clone(),
            outputs,
            failure,
        };
        let now = Utc::now();
        Ok(builder(&finished)?
            .into_iter()
            .enumerate()
            .map(|(index, event)| NewEvent {
                aggregate_type: "saga",
                aggregate_id: self.saga.saga_id.to_string(),
                version: index as i64 + 1,
                event_type: event.event_type,
                payload: event.payload,
                occurred_at: now,
                priority: event.priority,
                origin: None,
            })
            .collect())
    }

    /// Appends `entries` as the holder of this generation and folds them into the progress.
    async fn write(
        &mut self,
        entries: Vec<Entry>,
        state: SagaState,
        events: Option<Vec<NewEvent>>,
    ) -> Result<(), Stop> {
        let now = Utc::now();
        let records: Vec<NewRecord> = entries
            .into_iter()
            .enumerate()
            .map(|(offset, entry)| NewRecord {
                seq: self.progress.last_seq + 1 + offset as i64,
                kind: entry.kind,
                step: entry.step,
                step_name: entry
                    .step
                    .map_or("", |index| self.definition.steps[index].name),
                attempt: entry.attempt,
                output: entry.output,
                failure: entry.failure,
                direction: entry.direction,
                started_at: entry.started_at,
            })
            .collect();
        let pool = &self.engine.0.pool;
        let lease = self.engine.0.config.lease;
        let state = Transition {
            state,
            durable: state != self.progress.state,
        };
        let saga_id = self.saga.saga_id;
        let written = match &events {
            Some(events) if !events.is_empty() => {
                let origin = Origin {
                    traceparent: self.saga.trace.traceparent.clone(),
                    tracestate: self.saga.trace.tracestate.clone(),
                    correlation_id: saga_id.to_string(),
                };
                store::append_with_events(
                    pool,
                    saga_id,
                    self.generation,
                    state,
                    lease,
                    &records,
                    events,
                    &origin,
                )
                .await
            }
            _ => store::append(pool, saga_id, self.generation, state, lease, &records).await,
        };
        match written.map_err(Stop::Failed)? {
            Appended::Fenced => {
                tracing::warn!(%saga_id, generation = self.generation, "saga adopted by another owner: this one stops driving it");
                return Err(Stop::Fenced);
            }
            Appended::Written { cancel_requested } => self.cancel_requested = cancel_requested,
        }
        if events.is_some_and(|events| !events.is_empty())
            && let Some(stream) = &self.engine.0.events
        {
            stream.appended();
        }
        for record in records {
            self.progress.apply(&LogRecord {
                seq: record.seq,
                kind: record.kind,
                step: record.step,
                step_name: record.step_name.to_owned(),
                attempt: record.attempt,
                output: record.output,
                failure: record.failure,
                direction: record.direction,
                generation: self.generation,
                started_at: record.started_at,
                recorded_at: now,
            });
        }
        Ok(())
    }
}

fn cancelled() -> StepFailure {
    StepFailure::new(
        "CANCELLED",
        "SAGA_CANCELLED",
        "an operator cancelled the saga",
    )
}

fn events_failed(error: &StepError) -> StepFailure {
    let mut failure = error.failure().clone();
    failure.reason = "SAGA_EVENTS_FAILED".to_owned();
    failure
}
