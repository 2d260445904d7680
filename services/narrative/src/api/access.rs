//! Who may call what, with authentication on (with it off, every caller is trusted):
//!
//! - the role `narrative-admin` may do everything: the catalog upserts, the event stream,
//!   content whatever the requirements (`include_content`), and any user's progress — the
//!   coordinator's sagas call with it;
//! - a user (the token's `sub`) may read their own progress and make the changes that are
//!   theirs to make (visits, decisions, reactions, abandoning an experience), but not the
//!   grants and compensations of the coordinator's sagas ([`SAGA_ONLY`]): a user who could
//!   unlock fragments or complete components would meet requirements by themselves, and one
//!   who could revert a decision, a component or a reaction whose rewards were granted would
//!   be paid again for doing it anew;
//! - reading fragments (without content they may not see) and experiences is open to every
//!   authenticated caller.

/// The role that may act on the catalog and on every user.
pub const ADMIN_ROLE: &str = "narrative-admin";

/// The changes only an admin (the coordinator's sagas) may make, by method name: the grants
/// (unlocks, component progress) and the compensations (locks, reverts).
pub const SAGA_ONLY: &[&str] = &[
    "UnlockFragments",
    "LockFragments",
    "UnlockExperience",
    "LockExperience",
    "ProgressExperienceComponent",
    "RevertExperienceComponent",
    "RevertDecision",
    "RevertReaction",
];

/// The caller of one request, checked against [`ADMIN_ROLE`].
pub type Access = phoenix_runtime::auth::Access;

/// The caller of `request`.
pub fn of<T>(request: &tonic::Request<T>) -> Access {
    Access::of(request, ADMIN_ROLE)
}
