//! Seed 001's coordinated operations: TakeDecision, ClaimMissionReward, ReactToContent,
//! SubscribeVip and AccessVipNarrative, each in its own module (its saga definition and its
//! use case), over the saga engine (`crate::saga`).
//!
//! Every operation is idempotent by the caller's key. An operation that runs a saga leaves the
//! key to the engine (same key and request: the same saga's outcome; another request:
//! IDEMPOTENCY_KEY_REUSED). An operation that may answer without a saga (TakeDecision with
//! requirements unmet, AccessVipNarrative) records its answer under the key in `request_keys`
//! (the runtime's idempotency table) together with the events it emits, so a replay answers the
//! same and emits nothing twice; when TakeDecision does run a saga, the key's record holds the
//! saga's input, so a replay after a crash starts (or rejoins) that same saga.
//!
//! Facts of other contexts are read before a saga starts ([`facts`]); unknown users, fragments,
//! decisions and plans are refused there with the owning context's NOT_FOUND reason, before
//! anything is written.

pub mod claim_reward;
pub mod facts;
pub mod participants;
pub mod plans;
pub mod react;
pub mod requirements;
pub mod settings;
pub mod steps;
pub mod subscribe_vip;
pub mod take_decision;
pub mod vip_access;

use std::time::Duration;

use chrono::Utc;
use phoenix_runtime::idempotency::{self, RequestKey};
use phoenix_runtime::stream::NewEvent;
use phoenix_runtime::{Error, Refusal, RemoteError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tonic::Status;
use uuid::Uuid;

use self::participants::{LedgerBook, LedgerBooks, Participants};
use self::settings::OperationsSettings;
use crate::saga::{SagaEngine, SagaOutcome, SagaState};

/// How long a key's recorded answer is kept.
const KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Deadline of each read made before a saga starts.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the operations need: the engine, the database, the participants and where money lives.
#[derive(Clone, Debug)]
pub struct Operations {
    pub engine: SagaEngine,
    pub pool: PgPool,
    pub participants: Option<Participants>,
    pub books: LedgerBooks,
    pub settings: OperationsSettings,
}

impl Operations {
    /// The operations over `engine`; registers their saga definitions when the participants
    /// are configured (without them no operation can run, and none is registered).
    pub fn new(
        engine: SagaEngine,
        pool: PgPool,
        participants: Option<Participants>,
        settings: OperationsSettings,
    ) -> anyhow::Result<Self> {
        let books = LedgerBooks::of(&settings);
        let operations = Self {
            engine,
            pool,
            participants,
            books,
            settings,
        };
        if let Some(participants) = &operations.participants {
            let (engine, book) = (&operations.engine, &operations.books);
            engine.register(take_decision::definition(participants, book))?;
            engine.register(claim_reward::definition(
                participants,
                book,
                &operations.settings,
            ))?;
            engine.register(react::definition(participants, book, &operations.settings))?;
            engine.register(subscribe_vip::definition(participants, book))?;
        }
        Ok(operations)
    }

    /// The participants and the ledger book of `tenant`, or why the operations cannot run:
    /// PARTICIPANTS_NOT_CONFIGURED, or the ledger's NOT_FOUND `TENANT_NOT_FOUND` for a tenant
    /// it does not have (checked before anything is written, so no saga starts on it).
    pub async fn ready(&self, tenant: Uuid) -> Result<(Participants, LedgerBook), Error> {
        let participants = self.participants.clone().ok_or_else(|| {
            Refusal::precondition(
                "PARTICIPANTS_NOT_CONFIGURED",
                "the coordinator has no URL for one of directory, narrative, ledger, missions \
                 (PHOENIX_<NAME>_URL)",
            )
        })?;
        let mut ledger = participants.ledger.clone();
        ledger
            .get_tenant(participants::within(
                phoenix_proto::ledger::v1::GetTenantRequest {
                    tenant_id: tenant.to_string(),
                },
                READ_TIMEOUT,
            ))
            .await
            .map_err(|status| peer_error("ledger", &status))?;
        Ok((participants, self.books.at(tenant)))
    }
}

/// A peer's failed answer as this service's error: a refusal keeps the peer's code, reason
/// and fields (with `peer` naming the context); UNAVAILABLE and a passed deadline stay
/// retryable; anything else is an internal failure of that peer.
pub fn peer_error(peer: &'static str, status: &Status) -> Error {
    let remote = RemoteError::from_status(status);
    if let Some(refusal) = remote.refusal()
        && remote.code != tonic::Code::Aborted
        && remote.code != tonic::Code::ResourceExhausted
    {
        return refusal.with("peer", peer).into();
    }
    match remote.code {
        tonic::Code::DeadlineExceeded => Error::DeadlineExceeded {
            reason: "PEER_DEADLINE_EXCEEDED".into(),
            message: format!("{peer} did not answer in time"),
        },
        tonic::Code::Unavailable
        | tonic::Code::Aborted
        | tonic::Code::ResourceExhausted
        | tonic::Code::Cancelled => Error::unavailable(
            "PEER_UNAVAILABLE",
            format!("{peer} cannot serve now: {}", remote.message),
            remote.retry_delay,
        ),
        _ => Error::internal(format!("{peer} failed: {status}")),
    }
}

/// The saga's failure as the API answers it (step, reason, message, state), or `None` when it
/// completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Failure {
    pub step: String,
    pub code: String,
    pub reason: String,
    pub message: String,
    pub state: String,
}

/// What a finished saga's caller learns: completed, or why not. A saga still running when
/// the engine's wait ended (another replica drives it) is UNAVAILABLE `SAGA_IN_PROGRESS`:
/// retry with the same key.
pub fn settled(outcome: &SagaOutcome) -> Result<Option<Failure>, Error> {
    let state = match outcome.state {
        SagaState::Completed => return Ok(None),
        SagaState::Compensated => "compensated",
        SagaState::Stuck => "stuck",
        SagaState::Running | SagaState::Compensating => {
            return Err(Error::unavailable(
                "SAGA_IN_PROGRESS",
                format!(
                    "saga {} is still {}; retry with the same idempotency key",
                    outcome.saga_id,
                    outcome.state.as_str()
                ),
                Some(Duration::from_secs(1)),
            ));
        }
    };
    let failure = match &outcome.failure {
        Some((step, failure)) => Failure {
            step: step.clone(),
            code: failure.code.clone(),
            reason: failure.reason.clone(),
            message: failure.message.clone(),
            state: state.to_owned(),
        },
        None => Failure {
            step: String::new(),
            code: String::new(),
            reason: "SAGA_CANCELLED".to_owned(),
            message: "the saga was cancelled before it finished".to_owned(),
            state: state.to_owned(),
        },
    };
    Ok(Some(failure))
}

/// A saga refused at its first step for naming something that does not exist (NOT_FOUND,
/// e.g. an unknown run) did nothing: the caller gets the error itself, with the participant's
/// reason, rather than a compensated saga.
pub fn not_found_first(failure: &Option<Failure>, first_step: &str) -> Result<(), Refusal> {
    match failure {
        Some(failure)
            if failure.step == first_step
                && failure.code == "NOT_FOUND"
                && failure.state == "compensated" =>
        {
            Err(Refusal::not_found(&failure.reason, failure.message.clone()))
        }
        _ => Ok(()),
    }
}

impl From<Failure> for phoenix_proto::coordinator::v1::SagaFailure {
    fn from(failure: Failure) -> Self {
        Self {
            step: failure.step,
            reason: failure.reason,
            message: failure.message,
            state: failure.state,
        }
    }
}

/// An event of an operation that ran no saga, appended with the answer it belongs to: its own
/// aggregate (`operation` / a fresh id), version 1, its catalogue message as the payload, at
/// the catalogue's default priority for `event_type`.
pub fn operation_event(event_type: &'static str, payload: &impl prost::Message) -> NewEvent {
    let mut event = NewEvent::new(
        "operation",
        Uuid::now_v7(),
        1,
        event_type,
        payload,
        Utc::now(),
    );
    event.priority = crate::bus::catalog::default_priority(event_type);
    event
}

/// The answer recorded under `key`, if a request with it ran before; IDEMPOTENCY_KEY_REUSED
/// when that request was another.
pub async fn recorded<T: DeserializeOwned>(
    pool: &PgPool,
    key: &RequestKey,
) -> Result<Option<T>, Error> {
    let prior = idempotency::find(pool, key, Utc::now()).await?;
    Ok(idempotency::replayable(prior, key)?)
}

/// Records `answer` under `key` with `events`, in one transaction; a concurrent request that
/// recorded first wins and its answer is returned.
pub async fn record<T>(
    pool: &PgPool,
    key: &RequestKey,
    answer: T,
    events: Vec<NewEvent>,
) -> Result<T, Error>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    idempotency::once(pool, key, KEY_TTL, move |connection| {
        Box::pin(async move {
            phoenix_runtime::stream::append(connection, Uuid::nil(), &events).await?;
            Ok(answer)
        })
    })
    .await
}
