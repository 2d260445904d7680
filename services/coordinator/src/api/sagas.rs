//! `SagaService`: the sagas as operators see them, and the operator's retry and cancel.
//!
//! Who may call: with authentication on, the role `coordinator-admin` may do everything; a user
//! may list (with `user_id` = themselves) and read their own sagas.

use phoenix_proto::coordinator::v1 as pb;
use phoenix_runtime::auth::Access;
use phoenix_runtime::convert::{optional_timestamp, time_from_proto, timestamp};
use phoenix_runtime::{Error, Violations};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::saga::{
    SagaCursor, SagaEngine, SagaFilter, SagaState, SagaSummary, StepFailure, StepState, StepView,
};

/// The role that may see every saga and retry or cancel one.
pub const ADMIN_ROLE: &str = "coordinator-admin";

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 500;

type Answer<T> = Result<Response<T>, Status>;

/// The tonic face of the saga engine.
#[derive(Debug, Clone)]
pub struct SagaApi {
    engine: SagaEngine,
}

impl SagaApi {
    pub fn new(engine: SagaEngine) -> Self {
        Self { engine }
    }
}

#[tonic::async_trait]
impl pb::saga_service_server::SagaService for SagaApi {
    async fn list_sagas(&self, r: Request<pb::ListSagasRequest>) -> Answer<pb::ListSagasResponse> {
        let access = Access::of(&r, ADMIN_ROLE);
        let body = r.get_ref();
        let mut v = Violations::new();
        let state = saga_state_filter(&mut v, body.state);
        let from = body
            .start_time
            .as_ref()
            .and_then(|t| time(&mut v, "start_time", t));
        let to = body
            .end_time
            .as_ref()
            .and_then(|t| time(&mut v, "end_time", t));
        if let (Some(from), Some(to)) = (from, to) {
            v.check(
                from < to,
                "end_time",
                "INVALID_TIME_RANGE",
                "must be after start_time",
            );
        }
        let limit = v.page_size(body.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let after = v.page_token(&body.page_token, cursor);
        v.finish().map_err(Error::from)?;
        let filter = SagaFilter {
            state,
            saga_type: non_empty(&body.saga_type),
            user_id: non_empty(&body.user_id),
            from,
            to,
        };
        match &filter.user_id {
            Some(user) => access.owner(user).map_err(Error::from)?,
            None => access.admin().map_err(Error::from)?,
        }
        let (sagas, next) = self.engine.list(&filter, after, limit).await?;
        Ok(Response::new(pb::ListSagasResponse {
            sagas: sagas.iter().map(|s| saga(s, Vec::new())).collect(),
            next_page_token: next.map(next_token).unwrap_or_default(),
        }))
    }

    async fn get_saga(&self, r: Request<pb::GetSagaRequest>) -> Answer<pb::GetSagaResponse> {
        let access = Access::of(&r, ADMIN_ROLE);
        let saga_id = saga_id(&r.get_ref().saga_id)?;
        let detail = self.engine.detail(saga_id).await?;
        if detail.saga.user_id.is_empty() {
            access.admin().map_err(Error::from)?;
        } else {
            access.owner(&detail.saga.user_id).map_err(Error::from)?;
        }
        Ok(Response::new(pb::GetSagaResponse {
            saga: Some(saga(&detail.saga, detail.steps.iter().map(step).collect())),
            log: detail.log.iter().map(record).collect(),
        }))
    }

    async fn retry_saga(&self, r: Request<pb::RetrySagaRequest>) -> Answer<pb::RetrySagaResponse> {
        Access::of(&r, ADMIN_ROLE).admin().map_err(Error::from)?;
        let saga_id = saga_id(&r.get_ref().saga_id)?;
        self.engine.retry(saga_id).await?;
        Ok(Response::new(pb::RetrySagaResponse {
            saga: Some(self.summary(saga_id).await?),
        }))
    }

    async fn cancel_saga(
        &self,
        r: Request<pb::CancelSagaRequest>,
    ) -> Answer<pb::CancelSagaResponse> {
        Access::of(&r, ADMIN_ROLE).admin().map_err(Error::from)?;
        let saga_id = saga_id(&r.get_ref().saga_id)?;
        self.engine.cancel(saga_id).await?;
        Ok(Response::new(pb::CancelSagaResponse {
            saga: Some(self.summary(saga_id).await?),
        }))
    }
}

impl SagaApi {
    async fn summary(&self, saga_id: Uuid) -> Result<pb::Saga, Error> {
        let detail = self.engine.detail(saga_id).await?;
        Ok(saga(&detail.saga, detail.steps.iter().map(step).collect()))
    }
}

fn saga_id(value: &str) -> Result<Uuid, Error> {
    let mut v = Violations::new();
    let id = v.uuid("saga_id", value);
    v.finish()?;
    Ok(id)
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn time(
    v: &mut Violations,
    field: &str,
    value: &prost_types::Timestamp,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let time = time_from_proto(value);
    if time.is_none() {
        v.add(field, "INVALID_TIMESTAMP", "is not a valid timestamp");
    }
    time
}

fn saga_state_filter(v: &mut Violations, value: i32) -> Option<SagaState> {
    match pb::SagaState::try_from(value) {
        Ok(pb::SagaState::Unspecified) => None,
        Ok(pb::SagaState::Running) => Some(SagaState::Running),
        Ok(pb::SagaState::Compensating) => Some(SagaState::Compensating),
        Ok(pb::SagaState::Completed) => Some(SagaState::Completed),
        Ok(pb::SagaState::Compensated) => Some(SagaState::Compensated),
        Ok(pb::SagaState::Stuck) => Some(SagaState::Stuck),
        Err(_) => {
            v.add(
                "state",
                "INVALID_STATE",
                format!("{value} is not a SagaState"),
            );
            None
        }
    }
}

fn state(state: SagaState) -> pb::SagaState {
    match state {
        SagaState::Running => pb::SagaState::Running,
        SagaState::Compensating => pb::SagaState::Compensating,
        SagaState::Completed => pb::SagaState::Completed,
        SagaState::Compensated => pb::SagaState::Compensated,
        SagaState::Stuck => pb::SagaState::Stuck,
    }
}

/// `<created_at micros>/<saga id>`.
fn cursor(token: &str) -> Option<SagaCursor> {
    let (micros, id) = token.split_once('/')?;
    Some(SagaCursor {
        created_at: chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        saga_id: id.parse().ok()?,
    })
}

fn next_token(cursor: SagaCursor) -> String {
    format!(
        "{}/{}",
        cursor.created_at.timestamp_micros(),
        cursor.saga_id
    )
}

fn error(failure: &StepFailure) -> pb::StepError {
    pb::StepError {
        code: failure.code.clone(),
        reason: failure.reason.clone(),
        message: failure.message.clone(),
    }
}

fn saga(summary: &SagaSummary, steps: Vec<pb::SagaStep>) -> pb::Saga {
    pb::Saga {
        saga_id: summary.saga_id.to_string(),
        saga_type: summary.saga_type.clone(),
        definition_version: summary.version as i32,
        user_id: summary.user_id.clone(),
        idempotency_key: summary.idempotency_key.clone(),
        state: state(summary.state).into(),
        input_json: summary.input.to_string(),
        failed_step: summary
            .failure
            .as_ref()
            .map(|(step, _)| step.clone())
            .unwrap_or_default(),
        failure: summary.failure.as_ref().map(|(_, f)| error(f)),
        create_time: Some(timestamp(summary.created_at)),
        update_time: Some(timestamp(summary.updated_at)),
        finish_time: optional_timestamp(summary.finished_at),
        deadline_time: Some(timestamp(summary.deadline_at)),
        owner_id: summary.owner_id.to_string(),
        lease_generation: summary.generation,
        traceparent: summary.traceparent.clone(),
        steps,
    }
}

fn step(view: &StepView) -> pb::SagaStep {
    pb::SagaStep {
        name: view.name.clone(),
        index: view.index as i32,
        state: match view.state {
            StepState::Pending => pb::StepState::Pending,
            StepState::Retrying => pb::StepState::Retrying,
            StepState::Succeeded => pb::StepState::Succeeded,
            StepState::Refused => pb::StepState::Refused,
            StepState::Unknown => pb::StepState::Unknown,
            StepState::Compensated => pb::StepState::Compensated,
            StepState::Stuck => pb::StepState::Stuck,
        }
        .into(),
        attempts: view.attempts as i32,
        compensation_attempts: view.compensation_attempts as i32,
        start_time: optional_timestamp(view.started_at),
        end_time: optional_timestamp(view.ended_at),
        last_error: view.last_error.as_ref().map(error),
        output_json: view
            .output
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        pivot: view.pivot,
    }
}

fn record(record: &crate::saga::log::LogRecord) -> pb::SagaLogRecord {
    pb::SagaLogRecord {
        seq: record.seq,
        kind: record.kind.as_str().to_owned(),
        step: record.step_name.clone(),
        attempt: record.attempt as i32,
        generation: record.generation,
        error: record.failure.as_ref().map(error),
        record_time: Some(timestamp(record.recorded_at)),
    }
}
