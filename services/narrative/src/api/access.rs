//! Who may call what, with authentication on (with it off, every caller is trusted):
//!
//! - the role `narrative-admin` may do everything: the catalog upserts, the event stream,
//!   content whatever the requirements (`include_content`), and any user's progress — the
//!   coordinator's sagas call with it;
//! - a user (the token's `sub`) may read and change their own progress;
//! - reading fragments (without content they may not see) and experiences is open to every
//!   authenticated caller.

/// The role that may act on the catalog and on every user.
pub const ADMIN_ROLE: &str = "narrative-admin";

/// The caller of one request, checked against [`ADMIN_ROLE`].
pub type Access = phoenix_runtime::auth::Access;

/// The caller of `request`.
pub fn of<T>(request: &tonic::Request<T>) -> Access {
    Access::of(request, ADMIN_ROLE)
}
