//! What a step sees while it runs, and what the event builders see when a saga ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;
use uuid::Uuid;

use super::definition::{StepError, StepResult};
use super::log::StepFailure;

/// A saga's stored W3C trace context: every step continues this trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: String,
}

/// The saga's data a step can read: input, and the outputs of the steps that succeeded.
#[derive(Debug)]
pub(crate) struct SagaData {
    pub saga_id: Uuid,
    pub saga_type: &'static str,
    pub user_id: String,
    pub input: serde_json::Value,
    pub trace: TraceContext,
    /// Step names in definition order.
    pub step_names: Vec<&'static str>,
}

/// What one attempt of a step's action or compensation gets.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub(crate) saga: Arc<SagaData>,
    pub(crate) outputs: Arc<BTreeMap<usize, serde_json::Value>>,
    pub(crate) step: usize,
    pub(crate) attempt: u32,
    pub(crate) compensating: bool,
    pub(crate) deadline: Instant,
}

impl StepContext {
    pub fn saga_id(&self) -> Uuid {
        self.saga.saga_id
    }

    pub fn saga_type(&self) -> &'static str {
        self.saga.saga_type
    }

    /// The user the saga was started for (empty when none was given).
    pub fn user_id(&self) -> &str {
        &self.saga.user_id
    }

    /// This step's name.
    pub fn step(&self) -> &'static str {
        self.saga.step_names[self.step]
    }

    /// Which attempt this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether this is the compensation rather than the action.
    pub fn is_compensation(&self) -> bool {
        self.compensating
    }

    /// The idempotency key to send with this call: `saga:<saga id>:<step>` for the action,
    /// `saga:<saga id>:<step>:undo` for the compensation. The same on every attempt, after a
    /// crash and on any replica.
    pub fn idempotency_key(&self) -> String {
        if self.compensating {
            format!("{}:undo", self.action_idempotency_key())
        } else {
            self.action_idempotency_key()
        }
    }

    /// The key the action used (or would have used): what a compensation names to find the
    /// effect to undo, e.g. the pending transfer created with that key.
    pub fn action_idempotency_key(&self) -> String {
        format!("saga:{}:{}", self.saga.saga_id, self.step())
    }

    /// The idempotency key of another step's action of this saga.
    pub fn idempotency_key_of(&self, step: &str) -> String {
        format!("saga:{}:{step}", self.saga.saga_id)
    }

    /// The saga's input.
    pub fn input<T: DeserializeOwned>(&self) -> StepResult<T> {
        Ok(serde_json::from_value(self.saga.input.clone())?)
    }

    /// This step's own output: in a compensation, `None` when the action's outcome is unknown
    /// (so the compensation must cope with an action that may never have happened).
    pub fn output<T: DeserializeOwned>(&self) -> StepResult<Option<T>> {
        self.outputs
            .get(&self.step)
            .map(|value| serde_json::from_value(value.clone()))
            .transpose()
            .map_err(Into::into)
    }

    /// The output of an earlier step, which must have succeeded (it did, in the action of any
    /// later step; in a compensation it may not have: use [`StepContext::output_of_if_any`]).
    pub fn output_of<T: DeserializeOwned>(&self, step: &str) -> StepResult<T> {
        self.output_of_if_any(step)?.ok_or_else(|| {
            StepError::unknown(
                "SAGA_OUTPUT_MISSING",
                format!("step {step} of {} has no output", self.saga.saga_type),
            )
        })
    }

    /// The output of another step if it succeeded.
    pub fn output_of_if_any<T: DeserializeOwned>(&self, step: &str) -> StepResult<Option<T>> {
        output_named(&self.saga, &self.outputs, step)
    }

    /// The saga's trace context. Steps need not send it: every step runs in a span that
    /// continues it, and the runtime's client injects the current span's context.
    pub fn trace_context(&self) -> &TraceContext {
        &self.saga.trace
    }

    /// Time left for this attempt.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// `message` as a request whose gRPC deadline is the time left for this attempt.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.remaining().max(Duration::from_millis(1)));
        request
    }
}

/// A saga that just ended, as its `on_commit` / `on_compensated` event builders see it.
#[derive(Debug)]
pub struct FinishedSaga {
    pub(crate) saga: Arc<SagaData>,
    pub(crate) outputs: BTreeMap<usize, serde_json::Value>,
    pub(crate) failure: Option<(String, StepFailure)>,
}

impl FinishedSaga {
    pub fn saga_id(&self) -> Uuid {
        self.saga.saga_id
    }

    pub fn user_id(&self) -> &str {
        &self.saga.user_id
    }

    pub fn input<T: DeserializeOwned>(&self) -> StepResult<T> {
        Ok(serde_json::from_value(self.saga.input.clone())?)
    }

    /// The output of a step that succeeded (every step, on completion).
    pub fn output_of<T: DeserializeOwned>(&self, step: &str) -> StepResult<Option<T>> {
        output_named(&self.saga, &self.outputs, step)
    }

    /// On compensation: the step that made the saga go back and what it answered.
    pub fn failure(&self) -> Option<(&str, &StepFailure)> {
        self.failure
            .as_ref()
            .map(|(step, failure)| (step.as_str(), failure))
    }
}

/// The output of the step named `step`, decoded, if it succeeded.
fn output_named<T: DeserializeOwned>(
    saga: &SagaData,
    outputs: &BTreeMap<usize, serde_json::Value>,
    step: &str,
) -> StepResult<Option<T>> {
    let index = saga.step_names.iter().position(|name| *name == step);
    index
        .and_then(|index| outputs.get(&index))
        .map(|value| serde_json::from_value(value.clone()))
        .transpose()
        .map_err(Into::into)
}
