//! The engine's face: registering definitions, running a saga with the caller's key and reading
//! its outcome, and the operator's retry and cancel.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use phoenix_runtime::Error;
use phoenix_runtime::stream::EventStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::definition::SagaDefinition;
use super::log::{SagaState, StepFailure};

/// How an engine owns and recovers sagas.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This engine's identity in the leases it holds; one per process (or per engine in tests).
    pub owner_id: Uuid,
    /// How long a lease lasts without renewal: a crashed owner's sagas are adopted this long
    /// after its last write or renewal.
    pub lease: Duration,
    /// How often the recovery loop looks for sagas whose lease expired.
    pub recovery_interval: Duration,
    /// Sagas adopted per recovery pass at most.
    pub recovery_batch: i64,
    /// How long a caller replaying the key of a saga that another owner drives waits for its end
    /// before it is answered with the saga's current (still running) state.
    pub replay_wait: Duration,
}

impl Default for EngineConfig {
    /// A random owner, 10 s leases, a recovery pass every second of up to 100 sagas.
    fn default() -> Self {
        Self {
            owner_id: Uuid::new_v4(),
            lease: Duration::from_secs(10),
            recovery_interval: Duration::from_secs(1),
            recovery_batch: 100,
            replay_wait: Duration::from_secs(10),
        }
    }
}

impl EngineConfig {
    /// The defaults, with `PHOENIX_SAGA_LEASE`, `PHOENIX_SAGA_RECOVERY_INTERVAL` and
    /// `PHOENIX_SAGA_REPLAY_WAIT` (durations such as `10s`, `500ms`) when set.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut config = Self::default();
        let read = |name: &str, into: &mut Duration| -> anyhow::Result<()> {
            if let Ok(text) = std::env::var(name) {
                let value = humantime::parse_duration(&text)
                    .map_err(|e| anyhow::anyhow!("{name}={text:?}: not a duration: {e}"))?;
                anyhow::ensure!(!value.is_zero(), "{name} must be longer than 0");
                *into = value;
            }
            Ok(())
        };
        read("PHOENIX_SAGA_LEASE", &mut config.lease)?;
        read(
            "PHOENIX_SAGA_RECOVERY_INTERVAL",
            &mut config.recovery_interval,
        )?;
        read("PHOENIX_SAGA_REPLAY_WAIT", &mut config.replay_wait)?;
        Ok(config)
    }
}

/// A request to run a saga: its type, the caller's idempotency key, and the input.
#[derive(Debug, Clone)]
pub struct SagaRequest {
    pub(crate) saga_type: &'static str,
    pub(crate) idempotency_key: String,
    pub(crate) user_id: String,
    pub(crate) input: serde_json::Value,
    pub(crate) fingerprint: [u8; 32],
}

impl SagaRequest {
    /// A saga of the registered type `saga_type` for `input`, under the caller's key (validate
    /// it with `Violations::idempotency_key` in the API layer; an empty key is refused here as
    /// INVALID_ARGUMENT `IDEMPOTENCY_KEY_REQUIRED` too). The request's fingerprint is the
    /// SHA-256 of the type and the input's JSON, unless [`fingerprint_of`](Self::fingerprint_of)
    /// says otherwise.
    pub fn new(
        saga_type: &'static str,
        idempotency_key: &str,
        input: &impl Serialize,
    ) -> Result<Self, Error> {
        let mut violations = phoenix_runtime::Violations::new();
        let idempotency_key = violations.idempotency_key(idempotency_key);
        violations.finish()?;
        let input = serde_json::to_value(input).map_err(|e| {
            Error::invariant("SAGA_INPUT_UNSERIALIZABLE", format!("{saga_type}: {e}"))
        })?;
        // serde_json's maps are sorted, so equal inputs give equal bytes.
        let mut hasher = Sha256::new();
        hasher.update(saga_type.as_bytes());
        hasher.update([0]);
        hasher.update(input.to_string().as_bytes());
        Ok(Self {
            saga_type,
            idempotency_key,
            user_id: String::new(),
            input,
            fingerprint: hasher.finalize().into(),
        })
    }

    /// The user the saga acts for: listed and filtered by it, and the scope of the key (two
    /// users may use the same key).
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self
    }

    /// Fingerprints the caller's protobuf request instead of the input, so that the same key
    /// with a request that differs anywhere is `IDEMPOTENCY_KEY_REUSED`.
    pub fn fingerprint_of(mut self, request: &impl prost::Message) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(self.saga_type.as_bytes());
        hasher.update([0]);
        hasher.update(request.encode_to_vec());
        self.fingerprint = hasher.finalize().into();
        self
    }
}

/// Where a saga ended (or is), as its caller reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaOutcome {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub version: u32,
    pub state: SagaState,
    /// What each step that succeeded returned, by step name (still listed after the step was
    /// compensated).
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// What made the saga compensate or get stuck: the step and its answer.
    pub failure: Option<(String, StepFailure)>,
    /// True when this answer is for an earlier request with the same key.
    pub replayed: bool,
}

impl SagaOutcome {
    /// The output of `step`, decoded.
    pub fn output<T: DeserializeOwned>(&self, step: &str) -> Result<T, Error> {
        let value = self.outputs.get(step).ok_or_else(|| {
            Error::invariant(
                "SAGA_OUTPUT_MISSING",
                format!("saga {} has no output for step {step}", self.saga_id),
            )
        })?;
        serde_json::from_value(value.clone()).map_err(|e| {
            Error::invariant(
                "SAGA_OUTPUT_UNREADABLE",
                format!("saga {} step {step}: {e}", self.saga_id),
            )
        })
    }

    /// The refusal that made the saga compensate, when a step was refused: the code, reason
    /// and message the participant answered, e.g. FAILED_PRECONDITION `INSUFFICIENT_FUNDS`.
    pub fn failure(&self) -> Option<&StepFailure> {
        self.failure.as_ref().map(|(_, failure)| failure)
    }
}

/// The definitions an engine knows, by type then version.
pub(crate) type Definitions = HashMap<&'static str, BTreeMap<u32, Arc<SagaDefinition>>>;

pub(crate) struct Inner {
    pub pool: PgPool,
    pub events: Option<EventStream>,
    pub config: EngineConfig,
    pub definitions: RwLock<Definitions>,
    /// Sagas this engine drives now.
    pub running: std::sync::Mutex<HashMap<Uuid, RunningSaga>>,
}

/// A saga this engine drives now: its lease generation, the token that makes its driver stop
/// without writing (a crash, a lost lease), and the one that makes it compensate (a cancel).
#[derive(Debug, Clone)]
pub(crate) struct RunningSaga {
    pub generation: i64,
    pub abandon: CancellationToken,
    pub cancel: CancellationToken,
}

/// The saga engine of one coordinator process. Cheap to clone (shared).
#[derive(Clone)]
pub struct SagaEngine(pub(crate) Arc<Inner>);

impl std::fmt::Debug for SagaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaEngine")
            .field("owner_id", &self.0.config.owner_id)
            .finish_non_exhaustive()
    }
}

impl SagaEngine {
    /// An engine on the coordinator's pool. `events` is the coordinator's event stream, rung
    /// after a saga's end events commit (`None`: positions are given by the stream's own
    /// schedule).
    pub fn new(pool: PgPool, events: Option<EventStream>, config: EngineConfig) -> Self {
        Self(Arc::new(Inner {
            pool,
            events,
            config,
            definitions: RwLock::new(HashMap::new()),
            running: std::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// Makes `definition` runnable (its highest version is the one new sagas start on) and
    /// resumable. Refuses a malformed definition or a version registered twice.
    pub fn register(&self, definition: SagaDefinition) -> anyhow::Result<()> {
        definition.check().map_err(|e| anyhow::anyhow!(e))?;
        let mut definitions = self
            .0
            .definitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let versions = definitions.entry(definition.saga_type).or_default();
        anyhow::ensure!(
            !versions.contains_key(&definition.version),
            "saga {} version {} is registered twice",
            definition.saga_type,
            definition.version
        );
        versions.insert(definition.version, Arc::new(definition));
        Ok(())
    }

    /// This engine's owner id, as leases name it.
    pub fn owner_id(&self) -> Uuid {
        self.0.config.owner_id
    }

    /// The coordinator's event stream the engine writes to, if it was given one.
    pub fn event_stream(&self) -> Option<&EventStream> {
        self.0.events.as_ref()
    }

    /// Starts the background work until `shutdown`: adopting sagas whose lease expired (at once,
    /// then every `recovery_interval`), renewing the leases of the sagas this engine drives,
    /// and refreshing the stuck gauge.
    pub fn start_background(&self, shutdown: CancellationToken) {
        super::recovery::start(self.clone(), shutdown);
    }

    /// Runs the saga `request` asks for and answers with its outcome once it has ended (or is
    /// stuck), driving it in this task's stead on a spawned task, so a caller that goes away
    /// does not stop it. The same key and request again: the same saga's outcome (`replayed`),
    /// waiting up to `replay_wait` while another owner drives it, adopting it when its owner is
    /// gone. The same key with another request: INVALID_ARGUMENT `IDEMPOTENCY_KEY_REUSED`.
    pub async fn run(&self, request: SagaRequest) -> Result<SagaOutcome, Error> {
        super::runs::run(self, request).await
    }

    /// The saga's outcome as its log says now (NOT_FOUND `SAGA_NOT_FOUND`).
    pub async fn outcome(&self, saga_id: Uuid) -> Result<SagaOutcome, Error> {
        super::runs::outcome(self, saga_id).await
    }

    /// Resumes a STUCK saga in the direction it was going (its compensation, usually) with a
    /// fresh budget, and answers with its outcome. FAILED_PRECONDITION `SAGA_NOT_STUCK` for a
    /// saga that is not stuck.
    pub async fn retry(&self, saga_id: Uuid) -> Result<SagaOutcome, Error> {
        super::runs::retry(self, saga_id).await
    }

    /// Compensates a running saga now: the step in flight is abandoned (its outcome unknown, so
    /// compensated too) when this engine drives it; another owner notices at its next step.
    /// FAILED_PRECONDITION `SAGA_FINISHED`, `SAGA_STUCK` or `SAGA_PAST_PIVOT` when it cannot be.
    pub async fn cancel(&self, saga_id: Uuid) -> Result<SagaOutcome, Error> {
        super::runs::cancel(self, saga_id).await
    }

    /// One recovery pass now, in this task: adopts and resumes (in the background) up to
    /// `recovery_batch` sagas whose lease expired; answers how many it adopted. For tests and
    /// tools; the background loop does this on its own.
    pub async fn recover_now(&self) -> Result<usize, Error> {
        super::recovery::pass(self).await
    }

    /// Stops driving every saga this engine drives, at once, without writing anything: what a
    /// crash does (tests use it to crash an engine between two steps). Their leases expire and
    /// another engine adopts them.
    pub fn abandon_all(&self) {
        let running = std::mem::take(
            &mut *self
                .0
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for saga in running.into_values() {
            saga.abandon.cancel();
        }
    }

    pub(crate) fn definition(
        &self,
        saga_type: &str,
        version: Option<u32>,
    ) -> Option<Arc<SagaDefinition>> {
        let definitions = self
            .0
            .definitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let versions = definitions.get(saga_type)?;
        match version {
            Some(version) => versions.get(&version).cloned(),
            None => versions.values().next_back().cloned(),
        }
    }
}
