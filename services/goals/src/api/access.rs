//! Who may call what, with authentication on (with it off, every caller is trusted):
//!
//! - the role `goals-admin` may do everything;
//! - a user (the token's `sub`) may read and change their own goals, tasks, snapshots and
//!   embeddings, and search their own embeddings (SearchSimilar needs `user_id` = themselves);
//! - registering models, searching across users and subscribing to the event log need the
//!   admin role.

pub use phoenix_runtime::auth::Access;

/// The role that may act on every user's records.
pub const ADMIN_ROLE: &str = "goals-admin";

/// The caller of `request`, checked against [`ADMIN_ROLE`].
pub fn of<T>(request: &tonic::Request<T>) -> Access {
    Access::of(request, ADMIN_ROLE)
}
