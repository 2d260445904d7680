//! Per-contact processing leases (the seed's `activeProcessing` set): one holder at a time,
//! each lease with an expiry after which it is nobody's.

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, quote};

/// A processing lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingLease {
    pub phone: super::Phone,
    pub owner: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl ProcessingLease {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// Whether `owner` may acquire over `current` at `now`: a free, expired or own lease is.
pub fn check_acquire(
    current: Option<&ProcessingLease>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    match current {
        Some(lease) if lease.is_live(now) && lease.owner != owner => Err(Refusal::precondition(
            "LEASE_HELD",
            format!(
                "the contact is being processed by {} until {}",
                quote(&lease.owner),
                lease.expires_at.to_rfc3339()
            ),
        )
        .with("owner", phoenix_runtime::fact(&lease.owner))
        .with("expire_time", lease.expires_at.to_rfc3339())),
        _ => Ok(()),
    }
}

/// Whether `owner` may renew `current` at `now`: only its own live lease.
pub fn check_renew(
    current: Option<&ProcessingLease>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    match current {
        Some(lease) if lease.owner == owner && lease.is_live(now) => Ok(()),
        Some(lease) if lease.owner == owner => Err(Refusal::precondition(
            "LEASE_EXPIRED",
            format!(
                "the lease expired at {}; acquire it again",
                lease.expires_at.to_rfc3339()
            ),
        )
        .with("expire_time", lease.expires_at.to_rfc3339())
        .at("owner")),
        _ => Err(not_held(owner)),
    }
}

/// What releasing does: `Ok(true)` deletes the owner's live lease, `Ok(false)` has nothing to
/// release (none, expired, or an expired one of another owner); another owner's live lease is
/// refused.
pub fn check_release(
    current: Option<&ProcessingLease>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    match current {
        None => Ok(false),
        Some(lease) if !lease.is_live(now) => Ok(false),
        Some(lease) if lease.owner == owner => Ok(true),
        Some(_) => Err(not_held(owner)),
    }
}

fn not_held(owner: &str) -> Refusal {
    Refusal::precondition(
        "LEASE_NOT_HELD",
        format!(
            "{} does not hold the contact's processing lease",
            quote(owner)
        ),
    )
    .at("owner")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("valid")
    }

    fn lease(owner: &str, expires: i64) -> ProcessingLease {
        ProcessingLease {
            phone: super::super::Phone::stored("573001234567".into()),
            owner: owner.into(),
            acquired_at: at(0),
            expires_at: at(expires),
        }
    }

    #[test]
    fn one_holder_at_a_time_until_it_expires() {
        let held = lease("a", 60);
        assert!(check_acquire(None, "b", at(1)).is_ok());
        assert_eq!(
            check_acquire(Some(&held), "b", at(1))
                .expect_err("held")
                .reason,
            "LEASE_HELD"
        );
        assert!(check_acquire(Some(&held), "a", at(1)).is_ok());
        assert!(check_acquire(Some(&held), "b", at(60)).is_ok());
    }

    #[test]
    fn only_the_owner_renews_and_only_before_expiry() {
        let held = lease("a", 60);
        assert!(check_renew(Some(&held), "a", at(59)).is_ok());
        assert_eq!(
            check_renew(Some(&held), "b", at(1))
                .expect_err("other")
                .reason,
            "LEASE_NOT_HELD"
        );
        assert_eq!(
            check_renew(Some(&held), "a", at(60))
                .expect_err("late")
                .reason,
            "LEASE_EXPIRED"
        );
        assert_eq!(
            check_renew(None, "a", at(1)).expect_err("none").reason,
            "LEASE_NOT_HELD"
        );
    }

    #[test]
    fn releasing_is_idempotent_but_not_someone_elses() {
        let held = lease("a", 60);
        assert_eq!(check_release(Some(&held), "a", at(1)), Ok(true));
        assert_eq!(check_release(None, "a", at(1)), Ok(false));
        assert_eq!(check_release(Some(&held), "a", at(61)), Ok(false));
        assert_eq!(
            check_release(Some(&held), "b", at(1))
                .expect_err("other")
                .reason,
            "LEASE_NOT_HELD"
        );
    }
}
