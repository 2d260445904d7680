//! The saga log's records and the state derived from them: plain Rust, no database, no clock.
//!
//! A saga's log is append-only (the database refuses UPDATE and DELETE on `saga_log`); its
//! state is what [`replay`] folds out of the records, in `seq` order. The `state` column of
//! `sagas` caches the result for listing; when the two disagree, the log wins.
//!
//! Conventions: steps are numbered from 0 in definition order; compensation undoes, in reverse
//! step order, every step that succeeded and the one step whose outcome is unknown, except
//! those already undone; a refused step did nothing and is not undone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use phoenix_runtime::RemoteError;
use serde::{Deserialize, Serialize};

/// Where a saga is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SagaState {
    /// Going forward.
    Running,
    /// Undoing its steps after a refusal, an unknown outcome, its deadline or a cancel.
    Compensating,
    /// Every step succeeded (terminal).
    Completed,
    /// Every step that may have had an effect was undone (terminal).
    Compensated,
    /// A compensation (or, after a pivot, a forward step) failed past its budget: an operator
    /// must look, then `RetrySaga`. Never dropped.
    Stuck,
}

impl SagaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Compensating => "COMPENSATING",
            Self::Completed => "COMPLETED",
            Self::Compensated => "COMPENSATED",
            Self::Stuck => "STUCK",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "RUNNING" => Self::Running,
            "COMPENSATING" => Self::Compensating,
            "COMPLETED" => Self::Completed,
            "COMPENSATED" => Self::Compensated,
            "STUCK" => Self::Stuck,
            _ => return None,
        })
    }

    /// Completed or compensated: nothing will happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Compensated)
    }

    /// Running or compensating: some owner drives it.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Compensating)
    }
}

/// Which way a saga is (or was, when it got stuck) going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Forward,
    Backward,
}

/// What went wrong with a call: the gRPC code's canonical name, ErrorInfo's reason, the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    pub code: String,
    pub reason: String,
    pub message: String,
    /// The peer's RetryInfo delay, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl StepFailure {
    pub fn new(code: &str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            reason: reason.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn from_remote(remote: &RemoteError) -> Self {
        let code = code_name(remote.code);
        let reason = if remote.reason.is_empty() {
            code
        } else {
            &remote.reason
        };
        // Bounded: a log record is not the place for a peer's megabyte message.
        let message: String = remote.message.chars().take(1000).collect();
        Self::new(code, reason, message)
    }

    pub(crate) fn retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after_ms = delay.map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64);
        self
    }

    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_after_ms.map(Duration::from_millis)
    }
}

/// The canonical name of a gRPC code, as logs and APIs spell it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What a log record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// The saga began (always the first record).
    Started,
    /// A step's action succeeded; the record holds its output.
    StepSucceeded,
    /// An attempt of a step's action failed and will be retried.
    StepAttemptFailed,
    /// A step was refused: compensation begins, the step itself did nothing.
    StepRefused,
    /// A step's outcome is unknown: compensation begins, the step included.
    StepUnknown,
    /// An operator cancelled the saga: compensation begins (with the step in flight, if any).
    Cancelled,
    /// A step's compensation succeeded.
    UndoSucceeded,
    /// An attempt of a step's compensation failed and will be retried.
    UndoAttemptFailed,
    /// The saga is stuck (the record's failure says why, its direction which way it was going).
    Stuck,
    /// An operator asked a stuck saga to be resumed.
    RetryRequested,
    /// Another owner took the saga over (the record's generation is the new lease's).
    Adopted,
    /// Every step succeeded.
    Completed,
    /// Every step that may have had an effect was undone.
    Compensated,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::StepSucceeded => "step_succeeded",
            Self::StepAttemptFailed => "step_attempt_failed",
            Self::StepRefused => "step_refused",
            Self::StepUnknown => "step_unknown",
            Self::Cancelled => "cancelled",
            Self::UndoSucceeded => "undo_succeeded",
            Self::UndoAttemptFailed => "undo_attempt_failed",
            Self::Stuck => "stuck",
            Self::RetryRequested => "retry_requested",
            Self::Adopted => "adopted",
            Self::Completed => "completed",
            Self::Compensated => "compensated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "started" => Self::Started,
            "step_succeeded" => Self::StepSucceeded,
            "step_attempt_failed" => Self::StepAttemptFailed,
            "step_refused" => Self::StepRefused,
            "step_unknown" => Self::StepUnknown,
            "cancelled" => Self::Cancelled,
            "undo_succeeded" => Self::UndoSucceeded,
            "undo_attempt_failed" => Self::UndoAttemptFailed,
            "stuck" => Self::Stuck,
            "retry_requested" => Self::RetryRequested,
            "adopted" => Self::Adopted,
            "completed" => Self::Completed,
            "compensated" => Self::Compensated,
            _ => return None,
        })
    }
}

/// One record of a saga's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub seq: i64,
    pub kind: RecordKind,
    /// The step it is about, when it is about one.
    pub step: Option<usize>,
    pub step_name: String,
    /// Which attempt of the step (1-based; 0 when not about an attempt).
    pub attempt: u32,
    pub output: Option<serde_json::Value>,
    pub failure: Option<StepFailure>,
    pub direction: Option<Direction>,
    /// The lease generation of the writer.
    pub generation: i64,
    /// When the attempt it records began (the record's own time when not about an attempt).
    pub started_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// A saga's state as its log says.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub state: SagaState,
    pub direction: Direction,
    /// Outputs of the steps that succeeded, by step.
    pub outputs: BTreeMap<usize, serde_json::Value>,
    /// The step whose outcome is unknown, if compensation was started by one.
    pub unknown: Option<usize>,
    pub undone: BTreeSet<usize>,
    /// What made the saga compensate (or get stuck), with the step's name.
    pub failure: Option<(String, StepFailure)>,
    /// Attempts recorded so far per step, action and compensation apart.
    pub attempts: BTreeMap<usize, u32>,
    pub undo_attempts: BTreeMap<usize, u32>,
    /// The last record's `seq` (the next record is `seq + 1`).
    pub last_seq: i64,
}

impl Progress {
    /// A saga that just began.
    pub fn started() -> Self {
        Self {
            state: SagaState::Running,
            direction: Direction::Forward,
            outputs: BTreeMap::new(),
            unknown: None,
            undone: BTreeSet::new(),
            failure: None,
            attempts: BTreeMap::new(),
            undo_attempts: BTreeMap::new(),
            last_seq: 1,
        }
    }

    /// The first step that has not succeeded.
    pub fn next_step(&self) -> usize {
        (0..)
            .find(|step| !self.outputs.contains_key(step))
            .unwrap_or(0)
    }

    /// The steps still to undo, in the order to undo them (last step first).
    pub fn to_undo(&self) -> Vec<usize> {
        let mut steps: BTreeSet<usize> = self.outputs.keys().copied().collect();
        steps.extend(self.unknown);
        steps
            .into_iter()
            .rev()
            .filter(|step| !self.undone.contains(step))
            .collect()
    }

    /// Folds one more record in.
    pub fn apply(&mut self, record: &LogRecord) {
        self.last_seq = record.seq;
        let failure = |record: &LogRecord| {
            record
                .failure
                .clone()
                .map(|failure| (record.step_name.clone(), failure))
        };
        let begin_compensation = |progress: &mut Self| {
            progress.state = SagaState::Compensating;
            progress.direction = Direction::Backward;
            if progress.failure.is_none() {
                progress.failure = failure(record);
            }
        };
        match record.kind {
            RecordKind::Started | RecordKind::Adopted => {}
            RecordKind::StepSucceeded => {
                if let Some(step) = record.step {
                    self.outputs.insert(
                        step,
                        record.output.clone().unwrap_or(serde_json::Value::Null),
                    );
                    self.attempts.insert(step, record.attempt);
                }
            }
            RecordKind::StepAttemptFailed => {
                if let Some(step) = record.step {
                    self.attempts.insert(step, record.attempt);
                }
            }
            RecordKind::StepRefused => begin_compensation(self),
            RecordKind::StepUnknown | RecordKind::Cancelled => {
                if record.step.is_some() {
                    self.unknown = record.step;
                }
                begin_compensation(self);
            }
            RecordKind::UndoSucceeded => {
                if let Some(step) = record.step {
                    self.undone.insert(step);
                    self.undo_attempts.insert(step, record.attempt);
                }
            }
            RecordKind::UndoAttemptFailed => {
                if let Some(step) = record.step {
                    self.undo_attempts.insert(step, record.attempt);
                }
            }
            RecordKind::Stuck => {
                self.state = SagaState::Stuck;
                self.direction = record.direction.unwrap_or(self.direction);
                if self.failure.is_none() {
                    self.failure = failure(record);
                }
            }
            RecordKind::RetryRequested => {
                self.state = match self.direction {
                    Direction::Forward => SagaState::Running,
                    Direction::Backward => SagaState::Compensating,
                };
                // A fresh budget for the step that got stuck.
                self.undo_attempts.clear();
            }
            RecordKind::Completed => self.state = SagaState::Completed,
            RecordKind::Compensated => self.state = SagaState::Compensated,
        }
    }
}

/// The state the log says, records in `seq` order.
pub fn replay(records: &[LogRecord]) -> Progress {
    let mut progress = Progress::started();
    for record in records {
        progress.apply(record);
    }
    progress
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, kind: RecordKind, step: Option<usize>) -> LogRecord {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        LogRecord {
            seq,
            kind,
            step,
            step_name: step.map(|s| format!("s{s}")).unwrap_or_default(),
            attempt: 1,
            output: step.map(|s| serde_json::json!(s)),
            failure: Some(StepFailure::new("FAILED_PRECONDITION", "NO", "no")),
            direction: None,
            generation: 1,
            started_at: now,
            recorded_at: now,
        }
    }

    #[test]
    fn an_unknown_step_is_undone_with_the_succeeded_ones_in_reverse_order() {
        let progress = replay(&[
            record(1, RecordKind::Started, None),
            record(2, RecordKind::StepSucceeded, Some(0)),
            record(3, RecordKind::StepSucceeded, Some(1)),
            record(4, RecordKind::StepUnknown, Some(2)),
            record(5, RecordKind::UndoSucceeded, Some(2)),
        ]);
        assert_eq!(progress.state, SagaState::Compensating);
        assert_eq!(progress.to_undo(), vec![1, 0]);
        assert_eq!(progress.failure.expect("why").0, "s2");
        assert_eq!(progress.last_seq, 5);
    }

    #[test]
    fn a_refused_step_is_not_undone_and_a_stuck_saga_resumes_its_way() {
        let mut progress = replay(&[
            record(1, RecordKind::Started, None),
            record(2, RecordKind::StepSucceeded, Some(0)),
            record(3, RecordKind::StepRefused, Some(1)),
            record(4, RecordKind::Stuck, Some(0)),
        ]);
        assert_eq!(progress.state, SagaState::Stuck);
        assert_eq!(progress.to_undo(), vec![0]);
        progress.apply(&record(5, RecordKind::RetryRequested, None));
        assert_eq!(progress.state, SagaState::Compensating);
        assert_eq!(progress.next_step(), 1);
    }
}
