//! What an operator sees of the sagas: pages of sagas filtered by state, type, user and time,
//! and one saga with each step's state, attempts, timings, last error and output, all read
//! from the log.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Error, Refusal};
use uuid::Uuid;

use super::definition::SagaDefinition;
use super::engine::SagaEngine;
use super::log::{self, LogRecord, RecordKind, SagaState, StepFailure};
use super::store;

/// Which sagas to list.
#[derive(Debug, Clone, Default)]
pub struct SagaFilter {
    pub state: Option<SagaState>,
    pub saga_type: Option<String>,
    pub user_id: Option<String>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// Where a page ends: the last saga's creation time and id (sagas are listed newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaCursor {
    pub created_at: DateTime<Utc>,
    pub saga_id: Uuid,
}

/// One saga as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaSummary {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub version: u32,
    pub user_id: String,
    pub idempotency_key: String,
    pub state: SagaState,
    pub input: serde_json::Value,
    /// The step and answer that made it compensate or get stuck.
    pub failure: Option<(String, StepFailure)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub deadline_at: DateTime<Utc>,
    pub owner_id: Uuid,
    pub generation: i64,
    pub traceparent: String,
}

/// Where one step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Retrying,
    Succeeded,
    Refused,
    Unknown,
    Compensated,
    Stuck,
}

/// One step as the log tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub name: String,
    pub index: usize,
    pub state: StepState,
    pub attempts: u32,
    pub compensation_attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_error: Option<StepFailure>,
    pub output: Option<serde_json::Value>,
    pub pivot: bool,
}

/// One saga with its steps and its whole log.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaDetail {
    pub saga: SagaSummary,
    pub steps: Vec<StepView>,
    pub log: Vec<LogRecord>,
}

impl SagaEngine {
    /// A page of sagas matching `filter`, newest first, after `after`; and the cursor of the
    /// next page when there is one.
    pub async fn list(
        &self,
        filter: &SagaFilter,
        after: Option<SagaCursor>,
        limit: i64,
    ) -> Result<(Vec<SagaSummary>, Option<SagaCursor>), Error> {
        let mut sagas = store::list(&self.0.pool, filter, after, limit + 1).await?;
        let next = if sagas.len() as i64 > limit {
            sagas.truncate(limit as usize);
            sagas.last().map(|s| SagaCursor {
                created_at: s.created_at,
                saga_id: s.saga_id,
            })
        } else {
            None
        };
        Ok((sagas, next))
    }

    /// One saga with every step and its log (NOT_FOUND `SAGA_NOT_FOUND`).
    pub async fn detail(&self, saga_id: Uuid) -> Result<SagaDetail, Error> {
        let mut filter_one = store::list_one(&self.0.pool, saga_id).await?;
        let mut saga = filter_one.pop().ok_or_else(|| {
            Error::from(
                Refusal::not_found("SAGA_NOT_FOUND", format!("no saga has id {saga_id}"))
                    .at("saga_id")
                    .with("saga_id", saga_id),
            )
        })?;
        let records = store::load_log(&self.0.pool, saga_id).await?;
        let progress = log::replay(&records);
        // The log wins over the cached state.
        saga.state = progress.state;
        saga.failure = progress.failure.clone();
        let definition = self.definition(&saga.saga_type, Some(saga.version));
        Ok(SagaDetail {
            steps: steps(&records, definition.as_deref()),
            saga,
            log: records,
        })
    }
}

/// Each step's view, from the log (and the definition, for the steps not run yet).
pub fn steps(records: &[LogRecord], definition: Option<&SagaDefinition>) -> Vec<StepView> {
    let mut views: Vec<StepView> = definition
        .map(|d| {
            d.steps
                .iter()
                .enumerate()
                .map(|(index, step)| pending(index, step.name, step.pivot))
                .collect()
        })
        .unwrap_or_default();
    for record in records {
        let Some(index) = record.step else { continue };
        while views.len() <= index {
            views.push(pending(views.len(), "", false));
        }
        let view = &mut views[index];
        if view.name.is_empty() {
            view.name.clone_from(&record.step_name);
        }
        view.started_at.get_or_insert(record.started_at);
        view.ended_at = Some(record.recorded_at);
        if record.failure.is_some() {
            view.last_error.clone_from(&record.failure);
        }
        match record.kind {
            RecordKind::StepSucceeded => {
                view.state = StepState::Succeeded;
                view.attempts = record.attempt;
                view.output.clone_from(&record.output);
            }
            RecordKind::StepAttemptFailed => {
                view.state = StepState::Retrying;
                view.attempts = record.attempt;
            }
            RecordKind::StepRefused => {
                view.state = StepState::Refused;
                view.attempts = record.attempt;
            }
            RecordKind::StepUnknown | RecordKind::Cancelled => {
                view.state = StepState::Unknown;
                view.attempts = view.attempts.max(record.attempt);
            }
            RecordKind::UndoSucceeded => {
                view.state = StepState::Compensated;
                view.compensation_attempts = record.attempt;
            }
            RecordKind::UndoAttemptFailed => view.compensation_attempts = record.attempt,
            RecordKind::Stuck => view.state = StepState::Stuck,
            _ => {}
        }
    }
    views
}

fn pending(index: usize, name: &str, pivot: bool) -> StepView {
    StepView {
        name: name.to_owned(),
        index,
        state: StepState::Pending,
        attempts: 0,
        compensation_attempts: 0,
        started_at: None,
        ended_at: None,
        last_error: None,
        output: None,
        pivot,
    }
}
