//! The ledger's one error type and its one mapping to gRPC.

use phoenix_runtime::ApiError;
use phoenix_runtime::idempotency::{self, RequestKey};
use tonic::Status;

use crate::domain::{Refusal, RefusalKind};

/// ErrorInfo domain of this service's errors.
pub const DOMAIN: &str = "ledger.phoenix";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Malformed request fields, all of them at once.
    #[error("{0}")]
    Invalid(ApiError),
    /// The caller may not touch this tenant.
    #[error("{0}")]
    Denied(ApiError),
    /// A rule said no.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// A transfer of a linked batch was refused, so the whole batch was.
    #[error("transfers[{index}]: {refusal}")]
    RefusedInBatch { index: usize, refusal: Refusal },
    /// The idempotency key was used for a different request.
    #[error("idempotency key {:?} reused", key.key)]
    KeyReused { key: RequestKey, method: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Invalid(api) | LedgerError::Denied(api) => api,
            LedgerError::Refused(refusal) => refusal.into_api_error(DOMAIN),
            LedgerError::RefusedInBatch { index, refusal } => {
                let refusal = refusal.within(&format!("transfers[{index}]"));
                let message = format!(
                    "linked batch refused at transfers[{index}]: {}",
                    refusal.message
                );
                let mut api = Refusal { message, ..refusal }.into_api_error(DOMAIN);
                api = api.with_metadata("index", index.to_string());
                api
            }
            LedgerError::KeyReused { key, method } => {
                idempotency::mismatch_error(DOMAIN, &key, &method)
            }
            LedgerError::Database(error) => ApiError::database(DOMAIN, error),
        }
    }
}

impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Self {
        ApiError::from(error).into_status()
    }
}

/// The code a refusal would have on its own, as the batch results spell it.
pub fn code_name(kind: RefusalKind) -> &'static str {
    match kind {
        RefusalKind::Invalid => "INVALID_ARGUMENT",
        RefusalKind::NotFound => "NOT_FOUND",
        RefusalKind::AlreadyExists => "ALREADY_EXISTS",
        RefusalKind::Precondition => "FAILED_PRECONDITION",
        RefusalKind::Conflict => "ABORTED",
    }
}
