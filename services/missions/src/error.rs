//! The missions service's one error type and its one mapping to gRPC.

use phoenix_runtime::ApiError;
use tonic::{Code, Status};

use crate::domain::Refusal;

/// ErrorInfo domain of this service's errors.
pub const DOMAIN: &str = "missions.phoenix";

#[derive(Debug, thiserror::Error)]
pub enum MissionsError {
    /// Malformed request fields, all of them at once.
    #[error("{0}")]
    Invalid(ApiError),
    /// The caller may not do this.
    #[error("{0}")]
    Denied(ApiError),
    /// A rule said no.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The FILE store could not be read or written (I/O, or JSON that does not parse).
    #[error("missions store {path}: {detail}")]
    FileStore { path: String, detail: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl MissionsError {
    pub fn file_store(path: &std::path::Path, detail: impl std::fmt::Display) -> Self {
        Self::FileStore {
            path: path.display().to_string(),
            detail: detail.to_string(),
        }
    }
}

impl From<MissionsError> for ApiError {
    fn from(error: MissionsError) -> Self {
        match error {
            MissionsError::Invalid(api) | MissionsError::Denied(api) => api,
            MissionsError::Refused(refusal) => refusal.into_api_error(DOMAIN),
            // The store is this service's own storage: failing to use it is our fault, and the
            // caller may retry (UNAVAILABLE), never a half-written board.
            MissionsError::FileStore { path, detail } => ApiError::new(
                Code::Unavailable,
                DOMAIN,
                "FILE_STORE_UNAVAILABLE",
                format!("the missions file store {path} could not be used: {detail}"),
            ),
            MissionsError::Database(error) => ApiError::database(DOMAIN, error),
        }
    }
}

impl From<MissionsError> for Status {
    fn from(error: MissionsError) -> Self {
        ApiError::from(error).into_status()
    }
}
