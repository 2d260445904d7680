//! The gRPC face of the missions service: decode and validate a request, call one use case of
//! `app`, encode the answer. One module per tonic service; this one holds the decoding they
//! share, and `proto` the encoding.

mod analytics;
mod board;
mod catalog;
mod clock;
mod migration;
mod proto;

use chrono_tz::Tz;
use phoenix_runtime::{Error, Refusal, Violations, auth};
use tonic::{Request, Status};
use uuid::Uuid;

use crate::ADMIN_ROLE;
use crate::domain::board::{BoardKey, SlotKey};

/// A season id (`board::season_id_violation`, the rule the importers apply too).
fn season(violations: &mut Violations, value: &str) -> String {
    if let Some((reason, message)) = crate::domain::board::season_id_violation(value) {
        violations.add("season_id", reason, message);
    }
    value.to_owned()
}

/// A board's key: its user and season.
fn board_key(violations: &mut Violations, user_id: &str, season_id: &str) -> BoardKey {
    BoardKey {
        user_id: violations.uuid("user_id", user_id),
        season_id: season(violations, season_id),
    }
}

/// The IANA zone of `time_zone` (UTC stands in for a bad one until `finish()`).
fn time_zone(violations: &mut Violations, value: &str) -> Tz {
    violations.time_zone("time_zone", value).unwrap_or(Tz::UTC)
}

/// A slot of the board (main stands in for a bad one until `finish()`).
fn slot_field(violations: &mut Violations, value: i32) -> SlotKey {
    violations
        .enumeration::<phoenix_proto::missions::v1::SlotKey>(
            "slot_key",
            value,
            "SLOT_KEY_REQUIRED",
            "SLOT_KEY_MAIN, SLOT_KEY_HUNT or SLOT_KEY_SKILL",
        )
        .and_then(|key| proto::slot_key_from(key.into()))
        .unwrap_or(SlotKey::Main)
}

/// A field a `Violations` helper decoded, after `finish()` accepted the request: the helpers
/// answer `None` only with a violation, so this never fails; if it did, it says which field.
fn validated<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| {
        Error::invariant(
            "VALIDATED_FIELD_MISSING",
            format!("{field} passed validation without a value"),
        )
    })
}

/// Decodes a call on one user's board: its key and the call's own fields (`fields`), validated
/// together, then, with authentication on, the owner check. What every board RPC starts with.
fn board_call<T, F>(
    request: &Request<T>,
    user_id: &str,
    season_id: &str,
    fields: impl FnOnce(&mut Violations) -> F,
) -> Result<(BoardKey, F), Status> {
    let mut violations = Violations::new();
    let key = board_key(&mut violations, user_id, season_id);
    let decoded = fields(&mut violations);
    violations.finish()?;
    require_owner(request, key.user_id)?;
    Ok((key, decoded))
}

/// With authentication on, PERMISSION_DENIED unless the caller has the admin role.
fn require_admin<T>(request: &Request<T>) -> Result<(), Refusal> {
    auth::require_role(request, ADMIN_ROLE)
}

/// With authentication on, PERMISSION_DENIED `NOT_OWNER` unless the caller is the board's
/// user (its token's `sub`) or holds the admin role: a user acts on its own board only.
fn require_owner<T>(request: &Request<T>, user_id: Uuid) -> Result<(), Refusal> {
    auth::require_owner(request, &user_id.to_string(), ADMIN_ROLE)
}

/// A count as a protobuf int64.
fn count(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}
