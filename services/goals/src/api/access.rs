//! Who may call what, with authentication on (with it off, every caller is trusted):
//!
//! - the role `goals-admin` may do everything;
//! - a user (the token's `sub`) may read and change their own goals, tasks, snapshots and
//!   embeddings, and search their own embeddings (SearchSimilar needs `user_id` = themselves);
//! - registering models, searching across users and subscribing to the event log need the
//!   admin role.

use phoenix_runtime::Refusal;
use phoenix_runtime::auth::{self, Caller};
use uuid::Uuid;

/// The role that may act on every user's records.
pub const ADMIN_ROLE: &str = "goals-admin";

/// The caller of one request (`None`: authentication is off).
pub struct Access(Option<Caller>);

impl Access {
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self(auth::caller(request).cloned())
    }

    /// PERMISSION_DENIED `ROLE_REQUIRED` unless the caller is an admin.
    pub fn admin(&self) -> Result<(), Refusal> {
        self.0
            .as_ref()
            .map_or(Ok(()), |c| c.require_role(ADMIN_ROLE))
    }

    /// PERMISSION_DENIED `NOT_OWNER` unless the caller is `user` or an admin.
    pub fn owner(&self, user: Uuid) -> Result<(), Refusal> {
        self.0
            .as_ref()
            .map_or(Ok(()), |c| c.require_owner(&user.to_string(), ADMIN_ROLE))
    }

    /// Whether authentication is on (an owner check on a record needs a read first).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }
}
