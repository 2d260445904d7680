//! The directory's errors and their one mapping to gRPC.

use phoenix_runtime::ApiError;
use tonic::{Code, Status};
use uuid::Uuid;

/// ErrorInfo domain of this service's errors.
pub const DOMAIN: &str = "directory.phoenix";

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Invalid(ApiError),
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("user {0} not found")]
    UserNotFound(Uuid),
    #[error("a user with email {0:?} already exists")]
    EmailTaken(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<DirectoryError> for Status {
    fn from(error: DirectoryError) -> Self {
        let api = match error {
            DirectoryError::Invalid(api) => api,
            DirectoryError::UnknownTimeZone(zone) => ApiError::invalid_argument(
                DOMAIN,
                vec![phoenix_runtime::FieldViolation::new(
                    "time_zone",
                    format!("{zone:?} is not an IANA time zone name such as Europe/Madrid"),
                )],
            ),
            DirectoryError::UserNotFound(id) => ApiError::new(
                Code::NotFound,
                DOMAIN,
                "USER_NOT_FOUND",
                format!("no user has id {id}"),
            )
            .with_metadata("user_id", id.to_string()),
            DirectoryError::EmailTaken(email) => ApiError::new(
                Code::AlreadyExists,
                DOMAIN,
                "EMAIL_TAKEN",
                format!("a user with email {email:?} already exists"),
            )
            .with_metadata("email", email),
            DirectoryError::Database(error) => ApiError::database(DOMAIN, error),
        };
        api.into_status()
    }
}
