//! What a saga is made of: its steps, their actions and compensations, their retry policies and
//! deadlines, and the events it emits when it ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use phoenix_runtime::RemoteError;
use phoenix_runtime::stream::Priority;
use serde::Serialize;
use tonic::Code;

use super::context::{FinishedSaga, StepContext};
use super::log::StepFailure;

/// What a step's action or compensation ends with.
pub type StepResult<T> = Result<T, StepError>;

/// The boxed future of an action or compensation.
pub type StepFuture<T> = Pin<Box<dyn Future<Output = StepResult<T>> + Send + 'static>>;

/// Why a step's call did not succeed, as the engine acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// Trying again can succeed (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
    /// CANCELLED): retried by the step's policy.
    Transient(StepFailure),
    /// The participant said no and did nothing: forward, compensation begins (this step is not
    /// compensated); in a compensation, the saga is STUCK.
    Refused(StepFailure),
    /// It may or may not have happened and retrying will not tell (INTERNAL, UNKNOWN,
    /// DATA_LOSS): forward, compensation begins, this step included.
    Unknown(StepFailure),
}

impl StepError {
    /// A refusal the step itself decides (e.g. a participant's answer that says no in a field
    /// rather than with a status): `reason` is the stable SCREAMING_SNAKE_CASE reason the
    /// saga's outcome carries.
    pub fn refused(reason: &str, message: impl Into<String>) -> Self {
        Self::Refused(StepFailure::new("FAILED_PRECONDITION", reason, message))
    }

    /// A failure whose outcome is unknown, decided by the step (e.g. a stored output that no
    /// longer decodes).
    pub fn unknown(reason: &str, message: impl Into<String>) -> Self {
        Self::Unknown(StepFailure::new("INTERNAL", reason, message))
    }

    /// Classifies a peer's status with the runtime's decoder ([`RemoteError::from_status`]).
    pub fn from_status(status: &tonic::Status) -> Self {
        let remote = RemoteError::from_status(status);
        let failure = StepFailure::from_remote(&remote);
        match remote.code {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled => Self::Transient(failure.retry_after(remote.retry_delay)),
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Ok => Self::Unknown(failure),
            _ => Self::Refused(failure),
        }
    }

    /// What happened, as recorded in the saga's log.
    pub fn failure(&self) -> &StepFailure {
        match self {
            Self::Transient(failure) | Self::Refused(failure) | Self::Unknown(failure) => failure,
        }
    }
}

impl From<tonic::Status> for StepError {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

impl From<serde_json::Error> for StepError {
    fn from(error: serde_json::Error) -> Self {
        Self::unknown("SAGA_DATA_UNREADABLE", error.to_string())
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failure = self.failure();
        write!(
            f,
            "{} {}: {}",
            failure.code, failure.reason, failure.message
        )
    }
}

/// A step's action: calls a participant and returns the step's output, stored as JSON.
/// Implemented for every `Fn(StepContext) -> impl Future<Output = StepResult<impl Serialize>>`;
/// implement it on a type for steps that carry their own clients.
pub trait Action: Send + Sync + 'static {
    fn run(&self, context: StepContext) -> StepFuture<serde_json::Value>;
}

impl<F, Fut, O> Action for F
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StepResult<O>> + Send + 'static,
    O: Serialize + 'static,
{
    fn run(&self, context: StepContext) -> StepFuture<serde_json::Value> {
        let future = self(context);
        Box::pin(async move {
            let output = future.await?;
            Ok(serde_json::to_value(output)?)
        })
    }
}

/// A step's compensation: undoes the action, and is safe when the action never happened.
pub trait Compensation: Send + Sync + 'static {
    fn undo(&self, context: StepContext) -> StepFuture<()>;
}

impl<F, Fut> Compensation for F
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StepResult<()>> + Send + 'static,
{
    fn undo(&self, context: StepContext) -> StepFuture<()> {
        Box::pin(self(context))
    }
}

/// How often and how patiently a step (or its compensation) is tried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Pause before the second attempt.
    pub initial_delay: Duration,
    /// Each pause is the previous one times this (≥ 1).
    pub multiplier: f64,
    /// No pause is longer.
    pub max_delay: Duration,
    /// Attempts in all, the first included (≥ 1).
    pub max_attempts: u32,
    /// Fraction of each pause drawn at random (0: none, 1: full jitter), so retries of many
    /// sagas against one recovering participant do not arrive together.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 5 attempts, 50 ms doubling to at most 2 s, half jitter.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(50),
            multiplier: 2.0,
            max_delay: Duration::from_secs(2),
            max_attempts: 5,
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based), before jitter is drawn with `random`
    /// in [0, 1). A peer's RetryInfo delay, when longer, wins.
    pub fn delay(&self, attempt: u32, random: f64, at_least: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self
            .initial_delay
            .mul_f64(self.multiplier.max(1.0).powi(exponent))
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let pause = base.mul_f64(1.0 - jitter * random.clamp(0.0, 1.0));
        at_least.map_or(pause, |delay| pause.max(delay))
    }
}

/// One step of a saga.
#[derive(Clone)]
pub struct Step {
    pub(crate) name: &'static str,
    pub(crate) action: Arc<dyn Action>,
    pub(crate) compensation: Option<Arc<dyn Compensation>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) compensation_retry: RetryPolicy,
    pub(crate) deadline: Duration,
    pub(crate) pivot: bool,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("compensates", &self.compensation.is_some())
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .field("pivot", &self.pivot)
            .finish()
    }
}

impl Step {
    /// A step named `name` (unique in its saga, stable across versions: it is part of the
    /// idempotency key) running `action`. Without [`compensate`](Self::compensate) it has
    /// nothing to undo (a read, a check).
    pub fn new(name: &'static str, action: impl Action) -> Self {
        Self {
            name,
            action: Arc::new(action),
            compensation: None,
            retry: RetryPolicy::default(),
            compensation_retry: RetryPolicy {
                max_attempts: 8,
                ..RetryPolicy::default()
            },
            deadline: Duration::from_secs(5),
            pivot: false,
        }
    }

    /// How the action is undone.
    pub fn compensate(mut self, compensation: impl Compensation) -> Self {
        self.compensation = Some(Arc::new(compensation));
        self
    }

    /// The action's retry policy (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The compensation's retry policy: its attempts are the budget after which the saga is
    /// STUCK (default: 8 attempts, 50 ms doubling to 2 s).
    pub fn compensation_retry(mut self, policy: RetryPolicy) -> Self {
        self.compensation_retry = policy;
        self
    }

    /// Deadline of one attempt of the action or compensation (default 5 s); the attempt's
    /// calls get it as their gRPC deadline through [`StepContext::request`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Marks the step forward-only: see the module documentation ("pivot" steps).
    pub fn pivot(mut self) -> Self {
        self.pivot = true;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// An event a saga emits when it ends, appended in the transaction that records the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaEvent {
    /// The event type, e.g. `commerce.purchase_completed` (seed 001, section 3.2).
    pub event_type: &'static str,
    /// The encoded payload: the type's `phoenix.events.v1` catalogue message.
    pub payload: Vec<u8>,
    pub priority: Priority,
}

impl SagaEvent {
    /// An event of the catalogue: its payload message, at the catalogue's default priority for
    /// `event_type` (`bus::catalog`), so an emitter cannot drift from the documented table.
    pub fn new(event_type: &'static str, payload: &impl prost::Message) -> Self {
        Self {
            event_type,
            payload: payload.encode_to_vec(),
            priority: crate::bus::catalog::default_priority(event_type),
        }
    }

    /// Another priority than the catalogue's default.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// Builds the events of a finished saga from its input and outputs.
pub type EventsOf = Arc<dyn Fn(&FinishedSaga) -> StepResult<Vec<SagaEvent>> + Send + Sync>;

/// A saga: a type name, a version, ordered steps, a deadline, and the events of its ends.
#[derive(Clone)]
pub struct SagaDefinition {
    pub(crate) saga_type: &'static str,
    pub(crate) version: u32,
    pub(crate) steps: Vec<Step>,
    pub(crate) deadline: Duration,
    pub(crate) on_commit: Option<EventsOf>,
    pub(crate) on_compensated: Option<EventsOf>,
}

impl std::fmt::Debug for SagaDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaDefinition")
            .field("saga_type", &self.saga_type)
            .field("version", &self.version)
            .field("steps", &self.steps)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl SagaDefinition {
    /// A saga of type `saga_type` (e.g. `purchase`), version `version` (≥ 1). A saga in flight
    /// resumes on the version it began with, so change steps by registering a new version and
    /// keep the old one registered until no saga of it is left.
    pub fn new(saga_type: &'static str, version: u32) -> Self {
        Self {
            saga_type,
            version,
            steps: Vec::new(),
            deadline: Duration::from_secs(60),
            on_commit: None,
            on_compensated: None,
        }
    }

    /// The next step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Whole-saga deadline (default 60 s), from its start: when it passes while going forward,
    /// the saga compensates (the step in flight included). Compensation is not bounded by it.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The events to append when the saga completes (the seed's `tx.on_commit`).
    pub fn on_commit(
        mut self,
        events: impl Fn(&FinishedSaga) -> StepResult<Vec<SagaEvent>> + Send + Sync + 'static,
    ) -> Self {
        self.on_commit = Some(Arc::new(events));
        self
    }

    /// The events to append when the saga is compensated (e.g. `commerce.purchase_failed`).
    pub fn on_compensated(
        mut self,
        events: impl Fn(&FinishedSaga) -> StepResult<Vec<SagaEvent>> + Send + Sync + 'static,
    ) -> Self {
        self.on_compensated = Some(Arc::new(events));
        self
    }

    pub fn saga_type(&self) -> &'static str {
        self.saga_type
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Refuses a definition the engine cannot run: no steps, duplicate step names, a zero
    /// version, an empty policy.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err(format!("{}: versions start at 1", self.saga_type));
        }
        if self.steps.is_empty() {
            return Err(format!("{} v{}: no steps", self.saga_type, self.version));
        }
        let mut names = std::collections::HashSet::new();
        for step in &self.steps {
            if !names.insert(step.name) {
                return Err(format!(
                    "{} v{}: two steps are named {}",
                    self.saga_type, self.version, step.name
                ));
            }
            if step.retry.max_attempts == 0 || step.compensation_retry.max_attempts == 0 {
                return Err(format!("{}: max_attempts must be at least 1", step.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_maximum_with_jitter_below() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            multiplier: 3.0,
            max_delay: Duration::from_millis(500),
            max_attempts: 5,
            jitter: 0.5,
        };
        assert_eq!(policy.delay(1, 0.0, None), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 0.0, None), Duration::from_millis(300));
        assert_eq!(policy.delay(3, 0.0, None), Duration::from_millis(500));
        assert_eq!(policy.delay(2, 1.0, None), Duration::from_millis(150));
        assert_eq!(
            policy.delay(1, 0.0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn statuses_are_classified_as_the_issue_says() {
        use tonic::Status;
        for status in [
            Status::unavailable("x"),
            Status::deadline_exceeded("x"),
            Status::resource_exhausted("x"),
            Status::aborted("x"),
        ] {
            assert!(matches!(StepError::from(status), StepError::Transient(_)));
        }
        for status in [
            Status::failed_precondition("x"),
            Status::invalid_argument("x"),
            Status::not_found("x"),
            Status::permission_denied("x"),
        ] {
            assert!(matches!(StepError::from(status), StepError::Refused(_)));
        }
        assert!(matches!(
            StepError::from(Status::internal("x")),
            StepError::Unknown(_)
        ));
    }
}
