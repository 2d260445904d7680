//! CheckVip, GrantVip, ExtendVip, StartVipTrial, CancelVip, RevokeVip, ListVipHistory.

use chrono::Duration;
use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;

use super::{Access, Answer, decoded};
use crate::app::Directory;
use crate::domain::vip::{DEFAULT_TRIAL_DAYS, MAX_GRANT_DAYS, MAX_TRIAL_DAYS, VipChange};
use crate::proto;

/// Longest reason kept in the history.
const MAX_REASON_CHARS: usize = 500;

/// A duration of a grant or trial, to the microsecond the database keeps.
fn duration(
    v: &mut Violations,
    value: Option<&prost_types::Duration>,
    max_days: i64,
    default: Option<Duration>,
) -> Option<Duration> {
    if value.is_none() {
        if default.is_none() {
            v.add("duration", "REQUIRED", "is required: a positive duration");
        }
        return default;
    }
    let d = v.positive_duration("duration", value, Duration::days(max_days))?;
    // The database keeps microseconds: a duration under one would change nothing.
    let micros = d.num_microseconds()?;
    if micros <= 0 {
        v.add(
            "duration",
            "INVALID_DURATION",
            "must be at least one microsecond (the precision of a membership period)",
        );
        return None;
    }
    Some(Duration::microseconds(micros))
}

pub async fn check(
    d: &Directory,
    body: &pb::CheckVipRequest,
    _open: &Access,
) -> Answer<pb::CheckVipResponse> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", &body.user_id);
    v.finish()?;
    let view = d.check_vip(user_id).await?;
    Ok(Response::new(pb::CheckVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

/// What a VIP change request says, whatever its message.
pub trait ChangeRequest: prost::Message + Sized {
    /// The RPC, for the idempotency fingerprint.
    const METHOD: &'static str;
    /// Whether the user may make this change on themselves (else it needs the admin role).
    const SELF_SERVICE: bool;
    const REASON_REQUIRED: bool = false;
    fn user_id(&self) -> &str;
    fn idempotency_key(&self) -> &str;
    fn reason(&self) -> &str {
        ""
    }
    /// The change, validating the request's own fields.
    fn change(&self, v: &mut Violations) -> Option<VipChange>;
}

impl ChangeRequest for pb::GrantVipRequest {
    const METHOD: &'static str = "GrantVip";
    const SELF_SERVICE: bool = false;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn change(&self, v: &mut Violations) -> Option<VipChange> {
        duration(v, self.duration.as_ref(), MAX_GRANT_DAYS, None).map(VipChange::Grant)
    }
}

impl ChangeRequest for pb::ExtendVipRequest {
    const METHOD: &'static str = "ExtendVip";
    const SELF_SERVICE: bool = false;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn change(&self, v: &mut Violations) -> Option<VipChange> {
        duration(v, self.duration.as_ref(), MAX_GRANT_DAYS, None).map(VipChange::Extend)
    }
}

impl ChangeRequest for pb::StartVipTrialRequest {
    const METHOD: &'static str = "StartVipTrial";
    const SELF_SERVICE: bool = true;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn change(&self, v: &mut Violations) -> Option<VipChange> {
        let default = Some(Duration::days(DEFAULT_TRIAL_DAYS));
        duration(v, self.duration.as_ref(), MAX_TRIAL_DAYS, default).map(VipChange::Trial)
    }
}

impl ChangeRequest for pb::CancelVipRequest {
    const METHOD: &'static str = "CancelVip";
    const SELF_SERVICE: bool = true;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn change(&self, _: &mut Violations) -> Option<VipChange> {
        Some(VipChange::Cancel)
    }
}

impl ChangeRequest for pb::RevokeVipRequest {
    const METHOD: &'static str = "RevokeVip";
    const SELF_SERVICE: bool = false;
    const REASON_REQUIRED: bool = true;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn change(&self, _: &mut Violations) -> Option<VipChange> {
        Some(VipChange::Revoke)
    }
}

/// Validates a change request whole, applies the change once per idempotency key and answers
/// with the membership after it.
pub async fn change<R: ChangeRequest>(
    d: &Directory,
    body: &R,
    access: &Access,
) -> Result<pb::VipMembership, tonic::Status> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", body.user_id());
    let key = v.idempotency_key(body.idempotency_key());
    let change = body.change(&mut v);
    let reason = v.free_text(
        "reason",
        body.reason(),
        MAX_REASON_CHARS,
        R::REASON_REQUIRED,
    );
    let change = decoded(v, change)?;
    if R::SELF_SERVICE {
        access.owner(user_id)?;
    } else {
        access.admin()?;
    }
    let key = RequestKey::new("", key, R::METHOD, body);
    let view = d.change_vip(user_id, change, &reason, &key).await?;
    Ok(proto::membership(&view))
}

pub async fn history(
    d: &Directory,
    body: &pb::ListVipHistoryRequest,
    access: &Access,
) -> Answer<pb::ListVipHistoryResponse> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", &body.user_id);
    v.finish()?;
    access.owner(user_id)?;
    let entries = d.vip_history(user_id).await?;
    Ok(Response::new(pb::ListVipHistoryResponse {
        entries: entries.iter().map(proto::history_entry).collect(),
    }))
}
