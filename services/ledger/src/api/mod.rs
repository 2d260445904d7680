//! The gRPC face of the ledger: proto ⇄ domain and validation, nothing else. One module per
//! tonic service; this one holds what they share (tenant scoping, keys, ids, pages).

pub mod event_store;
pub mod governance;
mod import;
pub mod ledger;
pub mod stock;

use phoenix_runtime::idempotency::{self, RequestKey};
use phoenix_runtime::{ApiError, FieldViolation, auth, fields};
use tonic::{Code, Request};
use uuid::Uuid;

use crate::config::LedgerSettings;
use crate::domain::Refusal;
use crate::error::{DOMAIN, LedgerError};

/// Role that may manage tenants and act on any tenant when authentication is on.
pub const ADMIN_ROLE: &str = "ledger-admin";

/// What every service of the ledger needs.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub pool: sqlx::PgPool,
    pub settings: LedgerSettings,
    /// Ends server streams (subscriptions) when the service shuts down.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The tenant a call acts on. With authentication off it is `tenant_id`. With it on, the
/// caller's token decides: an empty `tenant_id` means the token's tenant, and another tenant is
/// PERMISSION_DENIED (unless the caller is a ledger admin).
pub fn tenant_of<T>(request: &Request<T>, tenant_id: &str) -> Result<Uuid, LedgerError> {
    let caller = auth::caller(request);
    let named = if tenant_id.is_empty() {
        caller.and_then(|c| c.tenant.as_deref()).unwrap_or_default()
    } else {
        tenant_id
    };
    let tenant = uuid_field("tenant_id", named)?;
    if let Some(caller) = caller
        && !caller.roles.iter().any(|r| r == ADMIN_ROLE)
    {
        caller
            .require_tenant(&tenant.to_string())
            .map_err(LedgerError::Denied)?;
    }
    Ok(tenant)
}

/// With authentication on, PERMISSION_DENIED unless the caller is a ledger admin.
pub fn require_admin<T>(request: &Request<T>) -> Result<(), LedgerError> {
    match auth::caller(request) {
        Some(caller) => caller.require_role(ADMIN_ROLE).map_err(LedgerError::Denied),
        None => Ok(()),
    }
}

/// The caller's tenant when authentication is on and the caller is not an admin.
pub fn caller_tenant<T>(request: &Request<T>) -> Result<Option<Uuid>, LedgerError> {
    match auth::caller(request) {
        Some(caller) if !caller.roles.iter().any(|r| r == ADMIN_ROLE) => {
            let tenant = caller.tenant.as_deref().unwrap_or_default();
            Ok(Some(Uuid::parse_str(tenant).map_err(|_| {
                LedgerError::Denied(ApiError::new(
                    Code::PermissionDenied,
                    DOMAIN,
                    "NO_TENANT",
                    "the caller's token names no tenant",
                ))
            })?))
        }
        _ => Ok(None),
    }
}

/// The idempotency key of a mutating call, fingerprinting `request` (which carries the key).
pub fn request_key(
    scope: impl ToString,
    key: &str,
    method: &'static str,
    request: &impl prost::Message,
) -> Result<RequestKey, LedgerError> {
    idempotency::check_key(key).map_err(|violation| {
        LedgerError::Invalid(ApiError::invalid_argument(DOMAIN, vec![violation]))
    })?;
    Ok(RequestKey::new(scope.to_string(), key, method, request))
}

/// A required UUID field.
pub fn uuid_field(field: &str, value: &str) -> Result<Uuid, LedgerError> {
    fields::uuid(DOMAIN, field, value).map_err(LedgerError::Invalid)
}

/// Bad fields reported together as one INVALID_ARGUMENT.
pub fn invalid(refusals: Vec<Refusal>) -> LedgerError {
    LedgerError::Invalid(ApiError::invalid_argument(
        DOMAIN,
        refusals
            .into_iter()
            .map(|r| FieldViolation::new(r.field.unwrap_or_default(), r.message))
            .collect(),
    ))
}

/// A page size: 0 means `default`; negative or above `max` is INVALID_ARGUMENT.
pub fn page_size(value: i32, default: i64, max: i64) -> Result<i64, LedgerError> {
    fields::page_size(DOMAIN, value, default, max).map_err(LedgerError::Invalid)
}

/// An optional duration that, when given, must be positive.
pub fn duration_field(
    field: &str,
    value: Option<&prost_types::Duration>,
) -> Result<Option<chrono::Duration>, LedgerError> {
    fields::positive_duration(DOMAIN, field, value).map_err(LedgerError::Invalid)
}

/// A timestamp field as a UTC time.
pub fn time_field(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<chrono::DateTime<chrono::Utc>, LedgerError> {
    fields::time(DOMAIN, field, value).map_err(LedgerError::Invalid)
}
