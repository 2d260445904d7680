//! VIP memberships: what each change does to a user's membership, and the status at an instant.
//!
//! A membership keeps the status its last change left (trial, active, cancelled) and its
//! period. Reading it at an instant `t` gives EXPIRED for a trial or membership whose end is at
//! or before `t`: the end instant is exclusive. Cancel (the user) and revoke (an operator) end
//! access at once. A user has one trial in their life.

use chrono::{DateTime, Duration, Utc};
use phoenix_runtime::Refusal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest grant or extension.
pub const MAX_GRANT_DAYS: i64 = 3660;
/// Longest trial, and the default one.
pub const MAX_TRIAL_DAYS: i64 = 30;
pub const DEFAULT_TRIAL_DAYS: i64 = 7;

/// What a membership's last change left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Trial,
    Active,
    Cancelled,
}

impl Stored {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Active => "active",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "trial" => Some(Self::Trial),
            "active" => Some(Self::Active),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A membership's status at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum VipStatus {
    #[default]
    None,
    Trial,
    Active,
    Expired,
    Cancelled,
}

impl VipStatus {
    /// Whether the status gives VIP access.
    pub fn has_access(self) -> bool {
        matches!(self, Self::Trial | Self::Active)
    }
}

/// A user's current membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub user_id: Uuid,
    pub stored: Stored,
    pub period_start: DateTime<Utc>,
    /// Exclusive: at this instant a trial or membership has expired.
    pub period_end: DateTime<Utc>,
    /// Changes so far: the version of the last history entry.
    pub version: i64,
}

impl Membership {
    /// The status at `now`. The store's list filter (`store::users::list`) states the same rule
    /// in SQL; they change together.
    pub fn status_at(&self, now: DateTime<Utc>) -> VipStatus {
        match self.stored {
            Stored::Cancelled => VipStatus::Cancelled,
            _ if now >= self.period_end => VipStatus::Expired,
            Stored::Trial => VipStatus::Trial,
            Stored::Active => VipStatus::Active,
        }
    }
}

/// The status of a user who may have no membership, at `now`.
pub fn status_of(membership: Option<&Membership>, now: DateTime<Utc>) -> VipStatus {
    membership.map_or(VipStatus::None, |m| m.status_at(now))
}

/// A membership as one RPC answers it: read at `checked_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipView {
    pub user_id: Uuid,
    pub membership: Option<Membership>,
    pub status: VipStatus,
    pub checked_at: DateTime<Utc>,
}

impl MembershipView {
    pub fn at(user_id: Uuid, membership: Option<Membership>, now: DateTime<Utc>) -> Self {
        Self {
            user_id,
            status: status_of(membership.as_ref(), now),
            membership,
            checked_at: now,
        }
    }
}

/// One change a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipChange {
    Grant(Duration),
    Extend(Duration),
    Trial(Duration),
    Cancel,
    Revoke,
}

impl VipChange {
    pub fn name(self) -> &'static str {
        match self {
            Self::Grant(_) => "grant",
            Self::Extend(_) => "extend",
            Self::Trial(_) => "trial",
            Self::Cancel => "cancel",
            Self::Revoke => "revoke",
        }
    }
}

/// The membership after `change` at `now`, given the current one and whether the user had
/// their trial.
pub fn apply(
    user_id: Uuid,
    current: Option<&Membership>,
    trial_used: bool,
    change: VipChange,
    now: DateTime<Utc>,
) -> Result<Membership, Refusal> {
    let status = status_of(current, now);
    let version = current.map_or(0, |m| m.version) + 1;
    let running = current.filter(|_| status.has_access());
    let (stored, start, end) = match (change, running) {
        // Time is added to a running trial or membership; a trial becomes a membership.
        (VipChange::Grant(d), Some(m)) => (Stored::Active, m.period_start, later(m.period_end, d)?),
        (VipChange::Grant(d), None) => (Stored::Active, now, later(now, d)?),
        (VipChange::Extend(d), Some(m)) if m.stored == Stored::Active => {
            (Stored::Active, m.period_start, later(m.period_end, d)?)
        }
        (VipChange::Extend(_), _) => return Err(not_active(user_id, status)),
        (VipChange::Trial(_), _) if trial_used => {
            return Err(Refusal::precondition(
                "VIP_TRIAL_USED",
                format!("user {user_id} has already had their VIP trial"),
            )
            .with("user_id", user_id));
        }
        (VipChange::Trial(_), Some(_)) => {
            return Err(Refusal::precondition(
                "VIP_ALREADY_ACTIVE",
                format!("user {user_id} already has VIP access: no trial is needed"),
            )
            .with("user_id", user_id));
        }
        (VipChange::Trial(d), None) => (Stored::Trial, now, later(now, d)?),
        // Never an end before the start (a clock a little behind the one that started it).
        (VipChange::Cancel | VipChange::Revoke, Some(m)) => {
            (Stored::Cancelled, m.period_start, now.max(m.period_start))
        }
        (VipChange::Cancel | VipChange::Revoke, None) => return Err(not_active(user_id, status)),
    };
    Ok(Membership {
        user_id,
        stored,
        period_start: start,
        period_end: end,
        version,
    })
}

fn later(from: DateTime<Utc>, by: Duration) -> Result<DateTime<Utc>, Refusal> {
    from.checked_add_signed(by)
        .filter(|t| chrono::Datelike::year(t) <= 9999)
        .ok_or_else(|| {
            Refusal::invalid(
                "duration",
                "VIP_PERIOD_TOO_LONG",
                "the membership would end after the year 9999",
            )
        })
}

fn not_active(user_id: Uuid, status: VipStatus) -> Refusal {
    Refusal::precondition(
        "VIP_NOT_ACTIVE",
        format!("user {user_id} has no running VIP membership (status {status:?})"),
    )
    .with("user_id", user_id)
    .with("vip_status", format!("{status:?}").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    fn user() -> Uuid {
        Uuid::from_u128(7)
    }

    #[test]
    fn a_membership_expires_at_its_end_instant() {
        let m = apply(
            user(),
            None,
            false,
            VipChange::Grant(Duration::seconds(60)),
            at(0),
        )
        .expect("granted");
        assert_eq!(m.status_at(at(59)), VipStatus::Active);
        assert_eq!(
            m.status_at(at(60) - Duration::nanoseconds(1)),
            VipStatus::Active
        );
        assert_eq!(m.status_at(at(60)), VipStatus::Expired);
        assert_eq!(m.status_at(at(61)), VipStatus::Expired);
    }

    #[test]
    fn a_grant_adds_to_a_running_period_and_starts_anew_after_expiry() {
        let d = Duration::seconds(100);
        let first = apply(user(), None, false, VipChange::Grant(d), at(0)).expect("granted");
        let more = apply(user(), Some(&first), false, VipChange::Grant(d), at(50)).expect("more");
        assert_eq!(
            (more.period_start, more.period_end, more.version),
            (at(0), at(200), 2)
        );
        let anew = apply(user(), Some(&more), false, VipChange::Grant(d), at(300)).expect("new");
        assert_eq!((anew.period_start, anew.period_end), (at(300), at(400)));
    }

    #[test]
    fn a_trial_is_once_and_not_for_a_vip() {
        let d = Duration::days(7);
        let trial = apply(user(), None, false, VipChange::Trial(d), at(0)).expect("trial");
        assert_eq!(trial.status_at(at(1)), VipStatus::Trial);
        let again = apply(
            user(),
            Some(&trial),
            true,
            VipChange::Trial(d),
            at(10_000_000),
        )
        .expect_err("second trial");
        assert_eq!(again.reason, "VIP_TRIAL_USED");
        let vip = apply(user(), None, false, VipChange::Grant(d), at(0)).expect("vip");
        let refused =
            apply(user(), Some(&vip), false, VipChange::Trial(d), at(1)).expect_err("vip");
        assert_eq!(refused.reason, "VIP_ALREADY_ACTIVE");
        let converted = apply(user(), Some(&trial), true, VipChange::Grant(d), at(1)).expect("buy");
        assert_eq!(converted.stored, Stored::Active);
        assert_eq!(converted.period_end, at(0) + d + d);
    }

    #[test]
    fn extend_cancel_and_revoke_need_a_running_membership() {
        let d = Duration::seconds(100);
        let trial = apply(user(), None, false, VipChange::Trial(d), at(0)).expect("trial");
        let refused = apply(user(), Some(&trial), true, VipChange::Extend(d), at(1))
            .expect_err("a trial is not extended");
        assert_eq!(refused.reason, "VIP_NOT_ACTIVE");
        let cancelled = apply(user(), Some(&trial), true, VipChange::Cancel, at(10)).expect("ok");
        assert_eq!(cancelled.status_at(at(10)), VipStatus::Cancelled);
        assert_eq!(cancelled.period_end, at(10));
        for change in [VipChange::Cancel, VipChange::Revoke, VipChange::Extend(d)] {
            let refused =
                apply(user(), Some(&cancelled), true, change, at(11)).expect_err("not running");
            assert_eq!(refused.reason, "VIP_NOT_ACTIVE");
        }
        assert_eq!(
            apply(user(), None, false, VipChange::Revoke, at(0))
                .expect_err("none")
                .reason,
            "VIP_NOT_ACTIVE"
        );
    }

    #[test]
    fn a_cancel_read_before_the_grant_it_waited_for_never_ends_before_the_start() {
        let d = Duration::seconds(100);
        let granted = apply(user(), None, false, VipChange::Grant(d), at(10)).expect("granted");
        for change in [VipChange::Cancel, VipChange::Revoke] {
            let ended = apply(user(), Some(&granted), false, change, at(5)).expect("ended");
            assert_eq!((ended.period_start, ended.period_end), (at(10), at(10)));
            assert_eq!(ended.status_at(at(5)), VipStatus::Cancelled);
        }
    }
}
