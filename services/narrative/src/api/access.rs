//! Who may call what, with authentication on (with it off, every caller is trusted):
//!
//! - the role `narrative-admin` may do everything: the catalog upserts, the event stream,
//!   content whatever the requirements (`include_content`), and any user's progress — the
//!   coordinator's sagas call with it;
//! - a user (the token's `sub`) may read and change their own progress;
//! - reading fragments (without content they may not see) and experiences is open to every
//!   authenticated caller.

use phoenix_runtime::Refusal;
use phoenix_runtime::auth::{self, Caller};
use uuid::Uuid;

/// The role that may act on the catalog and on every user.
pub const ADMIN_ROLE: &str = "narrative-admin";

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
}
