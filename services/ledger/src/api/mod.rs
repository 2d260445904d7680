//! The gRPC face of the ledger: each handler decodes and validates its request whole (with
//! [`Violations`]), calls one use case of [`crate::app::Ledger`] and encodes the answer. One
//! module per tonic service; this one holds what they share (tenant scoping, page tokens).

pub mod event_store;
pub mod governance;
mod import;
pub mod ledger;
pub mod shop;
pub mod stock;

use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::{Refusal, Violations, auth};
use tonic::Request;
use uuid::Uuid;

use crate::error;

/// Role that may manage tenants and act on any tenant when authentication is on.
pub const ADMIN_ROLE: &str = "ledger-admin";

/// The tenant a call acts on, checked into `violations`. With authentication off it is
/// `tenant_id`. With it on, the caller's token decides: an empty `tenant_id` means the token's
/// tenant, and another tenant is PERMISSION_DENIED (unless the caller is a ledger admin).
pub fn tenant_of<T>(
    request: &Request<T>,
    tenant_id: &str,
    violations: &mut Violations,
) -> Result<Uuid, Refusal> {
    let caller = auth::caller(request);
    let named = if tenant_id.is_empty() {
        caller.and_then(|c| c.tenant.as_deref()).unwrap_or_default()
    } else {
        tenant_id
    };
    let tenant = violations.uuid("tenant_id", named);
    if let Some(caller) = caller
        && Uuid::try_parse(named).is_ok()
        && !caller.has_role(ADMIN_ROLE)
    {
        caller.require_tenant(&tenant.to_string())?;
    }
    Ok(tenant)
}

/// With authentication on, PERMISSION_DENIED unless the caller is a ledger admin.
pub fn require_admin<T>(request: &Request<T>) -> Result<(), Refusal> {
    auth::require_role(request, ADMIN_ROLE)
}

/// The caller's tenant when authentication is on and the caller is not an admin.
pub fn caller_tenant<T>(request: &Request<T>) -> Result<Option<Uuid>, Refusal> {
    match auth::caller(request) {
        Some(caller) if !caller.has_role(ADMIN_ROLE) => {
            let tenant = caller.tenant.as_deref().unwrap_or_default();
            Uuid::try_parse(tenant)
                .map(Some)
                .map_err(|_| error::no_tenant_in_token())
        }
        _ => Ok(None),
    }
}

/// The response, or the error as gRPC sees it.
pub fn answer<T>(
    result: Result<T, phoenix_runtime::Error>,
) -> Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}

/// A page token that is the last code (sku, shop item id) of the previous page: empty is the
/// start (`None`).
pub fn code_token<'t>(violations: &mut Violations, token: &'t str) -> Option<&'t str> {
    if token.is_empty() {
        return None;
    }
    violations.take(crate::domain::stock::check_code("page_token", token));
    Some(token)
}

/// A page token that is a version or position: empty is the start (0).
pub fn version_token(violations: &mut Violations, token: &str) -> i64 {
    violations
        .page_token(token, |t| t.parse::<i64>().ok().filter(|v| *v >= 0))
        .unwrap_or(0)
}

/// Ends the validation of a mutating call: its `idempotency_key` is checked with the other
/// fields, every violation is refused at once, and the key fingerprints the whole request.
pub fn keyed(
    mut violations: Violations,
    scope: impl ToString,
    idempotency_key: &str,
    method: &'static str,
    request: &impl prost::Message,
) -> Result<RequestKey, Refusal> {
    let key = violations.idempotency_key(idempotency_key);
    violations.finish()?;
    Ok(RequestKey::new(scope.to_string(), key, method, request))
}
