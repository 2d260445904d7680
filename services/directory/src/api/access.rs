//! Who may call what, with authentication on (with it off, every caller is trusted):
//!
//! - the role `directory-admin` may do everything;
//! - a user (the token's `sub`) may change their own profile's self-service fields
//!   ([`SELF_SERVICE`]), deactivate themselves, start their own trial, cancel their own
//!   membership, join and leave channels, and create and change their own courses;
//! - registering users, the other profile fields (scores, archetypes, lifetime value, …),
//!   granting, extending and revoking VIP, listing users and subscribing to the event stream
//!   need the admin role;
//! - resolving ids (GetUser, LookupUser, BatchGetUsers, CheckVip, course reads) is open to every
//!   authenticated caller: every context resolves users here with its own token.

use phoenix_runtime::Refusal;
use phoenix_runtime::auth::{self, Caller};
use uuid::Uuid;

/// The role that may act on every user.
pub const ADMIN_ROLE: &str = "directory-admin";

/// The profile fields a user may change on themselves.
pub const SELF_SERVICE: &[&str] = &["email", "display_name", "time_zone", "username", "metadata"];

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

    /// An update of `user`'s `paths`: the user may change the self-service fields, an admin
    /// any.
    pub fn update(&self, user: Uuid, paths: &[String]) -> Result<(), Refusal> {
        self.owner(user)?;
        let Some(caller) = &self.0 else {
            return Ok(());
        };
        if caller.has_role(ADMIN_ROLE) || paths.iter().all(|p| SELF_SERVICE.contains(&p.as_str())) {
            return Ok(());
        }
        caller.require_role(ADMIN_ROLE)
    }

    /// Whether authentication is on (some checks need a read first).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }
}
