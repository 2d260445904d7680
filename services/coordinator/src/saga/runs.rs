//! The engine's entry points: running a saga for a caller (or replaying its key), reading an
//! outcome, resuming an adopted or stuck saga, cancelling one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use phoenix_runtime::{Error, Refusal};
use tokio::time::Instant;
use uuid::Uuid;

use super::context::{SagaData, TraceContext};
use super::driver::{Driver, Stop};
use super::engine::{SagaEngine, SagaOutcome, SagaRequest};
use super::log::{self, Direction, Progress, RecordKind, SagaState};
use super::metrics;
use super::store::{self, NewSaga, SagaRow, Takeover};

/// Longest pause between two looks at a saga another owner drives.
const WAIT_POLL_MAX: Duration = Duration::from_millis(100);

pub(crate) async fn run(engine: &SagaEngine, request: SagaRequest) -> Result<SagaOutcome, Error> {
    let definition = engine
        .definition(request.saga_type, None)
        .ok_or_else(|| Error::invariant("SAGA_TYPE_UNREGISTERED", request.saga_type))?;
    let config = &engine.0.config;
    let saga_id = Uuid::now_v7();
    let (traceparent, tracestate) = phoenix_runtime::telemetry::current_trace_headers();
    let created = store::create(
        &engine.0.pool,
        &NewSaga {
            saga_id,
            saga_type: definition.saga_type,
            version: definition.version,
            key_scope: &request.user_id,
            idempotency_key: &request.idempotency_key,
            fingerprint: &request.fingerprint,
            user_id: &request.user_id,
            input: &request.input,
            traceparent: &traceparent,
            tracestate: &tracestate,
            deadline: definition.deadline,
            owner_id: config.owner_id,
            lease: config.lease,
        },
    )
    .await?;
    if created {
        metrics::saga_started(definition.saga_type);
        let saga = Arc::new(SagaData {
            saga_id,
            saga_type: definition.saga_type,
            user_id: request.user_id,
            input: request.input,
            trace: TraceContext {
                traceparent,
                tracestate,
            },
            step_names: definition.steps.iter().map(|s| s.name).collect(),
        });
        let driver = Driver {
            engine: engine.clone(),
            deadline: Instant::now() + definition.deadline,
            definition,
            saga,
            progress: Progress::started(),
            generation: 1,
            cancel_requested: false,
        };
        return drive_to_end(engine, saga_id, driver).await;
    }
    let row = store::find_by_key(&engine.0.pool, &request.user_id, &request.idempotency_key)
        .await?
        .ok_or_else(|| {
            Error::invariant(
                "SAGA_KEY_VANISHED",
                "the caller's key was taken, then not found",
            )
        })?;
    if row.fingerprint != request.fingerprint {
        return Err(key_reused(&request, &row).into());
    }
    phoenix_runtime::metrics::global().count_replay();
    let mut outcome = settle(engine, row).await?;
    outcome.replayed = true;
    Ok(outcome)
}

fn key_reused(request: &SagaRequest, row: &SagaRow) -> Refusal {
    Refusal::invalid(
        "idempotency_key",
        "IDEMPOTENCY_KEY_REUSED",
        format!(
            "idempotency key {} was first used for another request (a {} saga); send a new key for a new request",
            phoenix_runtime::quote(&request.idempotency_key),
            row.saga_type
        ),
    )
    .with("saga_id", row.saga_id)
}

/// The outcome of a saga that exists: at once when it ended or is stuck; after driving it
/// when its owner is gone; after waiting for it (up to `replay_wait`) while another drives it.
async fn settle(engine: &SagaEngine, row: SagaRow) -> Result<SagaOutcome, Error> {
    if !row.state.is_active() {
        return outcome(engine, row.saga_id).await;
    }
    wait_for_end(engine, row.saga_id).await
}

/// Waits while another owner drives the saga, adopting it if that owner's lease expires.
async fn wait_for_end(engine: &SagaEngine, saga_id: Uuid) -> Result<SagaOutcome, Error> {
    let caller_left = phoenix_runtime::middleware::CURRENT_CALL
        .try_with(|call| call.remaining())
        .ok();
    let budget = caller_left.map_or(engine.0.config.replay_wait, |left| {
        left.min(engine.0.config.replay_wait)
    });
    let until = Instant::now() + budget.saturating_sub(Duration::from_millis(20));
    let mut pause = Duration::from_millis(5);
    loop {
        let row = load(engine, saga_id).await?;
        if !row.state.is_active() {
            return outcome(engine, saga_id).await;
        }
        if row.lease_expired
            && let Some(generation) = store::take_over(
                &engine.0.pool,
                saga_id,
                engine.0.config.owner_id,
                engine.0.config.lease,
                Takeover::Expired,
            )
            .await?
        {
            metrics::saga_adopted();
            return resume_inline(engine, saga_id, generation).await;
        }
        if Instant::now() + pause >= until {
            return outcome(engine, saga_id).await;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(WAIT_POLL_MAX);
    }
}

/// Drives on a task of its own, so the caller going away does not stop the saga.
async fn drive_to_end(
    engine: &SagaEngine,
    saga_id: Uuid,
    driver: Driver,
) -> Result<SagaOutcome, Error> {
    let definition = driver.definition.clone();
    // With the caller's context: the saga's spans belong to the coordinator's traces.
    let ended = tokio::spawn(phoenix_runtime::telemetry::with_current_context(
        driver.drive(),
    ))
    .await
    .map_err(|e| Error::internal(format!("the driver of saga {saga_id} crashed: {e}")))?;
    match ended {
        Ok(progress) => Ok(outcome_of(
            saga_id,
            definition.saga_type,
            definition.version,
            &progress,
            |index| definition.steps[index].name.to_owned(),
        )),
        Err(Stop::Fenced) => Box::pin(wait_for_end(engine, saga_id)).await,
        Err(Stop::Abandoned) => Err(Error::unavailable(
            "SAGA_ABANDONED",
            format!("the coordinator stopped driving saga {saga_id}; it will be resumed"),
            None,
        )),
        Err(Stop::Failed(error)) => {
            tracing::warn!(%saga_id, %error, "a saga's log could not be written; it will be resumed when its lease expires");
            Err(error)
        }
    }
}

/// Resumes a saga this engine just took over (generation `generation`) and drives it to its
/// end in the background; the recovery loop's work.
pub(crate) async fn resume(
    engine: &SagaEngine,
    saga_id: Uuid,
    generation: i64,
) -> Result<SagaOutcome, Error> {
    resume_inline(engine, saga_id, generation).await
}

async fn resume_inline(
    engine: &SagaEngine,
    saga_id: Uuid,
    generation: i64,
) -> Result<SagaOutcome, Error> {
    let row = load(engine, saga_id).await?;
    let records = store::load_log(&engine.0.pool, saga_id).await?;
    let progress = log::replay(&records);
    let definition = engine
        .definition(&row.saga_type, Some(row.version))
        .ok_or_else(|| {
            Error::invariant(
                "SAGA_DEFINITION_MISSING",
                format!(
                    "saga {saga_id} began on {} version {}, which this coordinator does not have",
                    row.saga_type, row.version
                ),
            )
        })?;
    let saga = Arc::new(SagaData {
        saga_id,
        saga_type: definition.saga_type,
        user_id: row.user_id.clone(),
        input: row.input.clone(),
        trace: TraceContext {
            traceparent: row.traceparent.clone(),
            tracestate: row.tracestate.clone(),
        },
        step_names: definition.steps.iter().map(|s| s.name).collect(),
    });
    let left = (row.deadline_at - Utc::now()).to_std().unwrap_or_default();
    let driver = Driver {
        engine: engine.clone(),
        definition,
        saga,
        progress,
        generation,
        deadline: Instant::now() + left,
        cancel_requested: row.cancel_requested,
    };
    drive_to_end(engine, saga_id, driver).await
}

async fn load(engine: &SagaEngine, saga_id: Uuid) -> Result<SagaRow, Error> {
    store::load(&engine.0.pool, saga_id)
        .await?
        .ok_or_else(|| not_found(saga_id).into())
}

fn not_found(saga_id: Uuid) -> Refusal {
    Refusal::not_found("SAGA_NOT_FOUND", format!("no saga has id {saga_id}"))
        .at("saga_id")
        .with("saga_id", saga_id)
}

/// The outcome as the log says now.
pub(crate) async fn outcome(engine: &SagaEngine, saga_id: Uuid) -> Result<SagaOutcome, Error> {
    let row = load(engine, saga_id).await?;
    let records = store::load_log(&engine.0.pool, saga_id).await?;
    let progress = log::replay(&records);
    let names: BTreeMap<usize, String> = records
        .iter()
        .filter(|r| r.kind == RecordKind::StepSucceeded)
        .filter_map(|r| r.step.map(|step| (step, r.step_name.clone())))
        .collect();
    Ok(outcome_of(
        saga_id,
        &row.saga_type,
        row.version,
        &progress,
        |index| names.get(&index).cloned().unwrap_or_default(),
    ))
}

fn outcome_of(
    saga_id: Uuid,
    saga_type: &str,
    version: u32,
    progress: &Progress,
    name: impl Fn(usize) -> String,
) -> SagaOutcome {
    SagaOutcome {
        saga_id,
        saga_type: saga_type.to_owned(),
        version,
        state: progress.state,
        outputs: progress
            .outputs
            .iter()
            .map(|(index, output)| (name(*index), output.clone()))
            .collect(),
        failure: progress.failure.clone(),
        replayed: false,
    }
}

pub(crate) async fn retry(engine: &SagaEngine, saga_id: Uuid) -> Result<SagaOutcome, Error> {
    let row = load(engine, saga_id).await?;
    if row.state != SagaState::Stuck {
        return Err(not_stuck(saga_id, row.state).into());
    }
    let progress = log::replay(&store::load_log(&engine.0.pool, saga_id).await?);
    let state = match progress.direction {
        Direction::Forward => SagaState::Running,
        Direction::Backward => SagaState::Compensating,
    };
    if engine
        .definition(&row.saga_type, Some(row.version))
        .is_none()
    {
        return Err(Error::unavailable(
            "SAGA_DEFINITION_MISSING",
            format!(
                "this coordinator does not have {} version {}",
                row.saga_type, row.version
            ),
            None,
        ));
    }
    let Some(generation) = store::take_over(
        &engine.0.pool,
        saga_id,
        engine.0.config.owner_id,
        engine.0.config.lease,
        Takeover::Retry(state),
    )
    .await?
    else {
        return Err(not_stuck(saga_id, load(engine, saga_id).await?.state).into());
    };
    tracing::info!(%saga_id, "RetrySaga: resuming a stuck saga");
    resume_inline(engine, saga_id, generation).await
}

fn not_stuck(saga_id: Uuid, state: SagaState) -> Refusal {
    Refusal::precondition(
        "SAGA_NOT_STUCK",
        format!(
            "saga {saga_id} is {}: only a STUCK saga can be retried",
            state.as_str()
        ),
    )
    .with("state", state.as_str())
}

pub(crate) async fn cancel(engine: &SagaEngine, saga_id: Uuid) -> Result<SagaOutcome, Error> {
    let row = load(engine, saga_id).await?;
    match row.state {
        SagaState::Completed | SagaState::Compensated => {
            return Err(Refusal::precondition(
                "SAGA_FINISHED",
                format!("saga {saga_id} is {} already", row.state.as_str()),
            )
            .with("state", row.state.as_str())
            .into());
        }
        SagaState::Stuck => {
            return Err(Refusal::precondition(
                "SAGA_STUCK",
                format!("saga {saga_id} is STUCK: resume it with RetrySaga"),
            )
            .into());
        }
        SagaState::Compensating => return outcome(engine, saga_id).await,
        SagaState::Running => {}
    }
    let records = store::load_log(&engine.0.pool, saga_id).await?;
    let progress = log::replay(&records);
    if let Some(definition) = engine.definition(&row.saga_type, Some(row.version)) {
        let pivot = definition
            .steps
            .iter()
            .enumerate()
            .find(|(index, step)| step.pivot && progress.outputs.contains_key(index));
        if let Some((_, step)) = pivot {
            return Err(Refusal::precondition(
                "SAGA_PAST_PIVOT",
                format!(
                    "saga {saga_id} passed its forward-only step {}: it can only complete",
                    step.name
                ),
            )
            .into());
        }
    }
    store::request_cancel(&engine.0.pool, saga_id).await?;
    let local = engine
        .0
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&saga_id)
        .cloned();
    if let Some(running) = local {
        running.cancel.cancel();
    }
    tracing::info!(%saga_id, "CancelSaga: the saga compensates");
    wait_for_end(engine, saga_id).await
}
