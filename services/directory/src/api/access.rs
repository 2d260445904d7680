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
pub use phoenix_runtime::auth::Access;
use uuid::Uuid;

/// The role that may act on every user.
pub const ADMIN_ROLE: &str = "directory-admin";

/// The profile fields a user may change on themselves.
pub const SELF_SERVICE: &[&str] = &["email", "display_name", "time_zone", "username", "metadata"];

/// The caller of `request`, checked against [`ADMIN_ROLE`].
pub fn of<T>(request: &tonic::Request<T>) -> Access {
    Access::of(request, ADMIN_ROLE)
}

/// An update of `user`'s `paths`: the user may change the self-service fields, an admin any.
pub fn update(access: &Access, user: Uuid, paths: &[String]) -> Result<(), Refusal> {
    access.owner(user)?;
    if paths.iter().all(|p| SELF_SERVICE.contains(&p.as_str())) {
        return Ok(());
    }
    access.admin()
}
