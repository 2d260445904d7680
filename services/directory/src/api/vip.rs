//! CheckVip, GrantVip, ExtendVip, StartVipTrial, CancelVip, RevokeVip, ListVipHistory.

use chrono::Duration;
use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;

use super::{Answer, decoded};
use crate::app::Directory;
use crate::domain::vip::{
    DEFAULT_TRIAL_DAYS, MAX_GRANT_DAYS, MAX_TRIAL_DAYS, MembershipView, VipChange,
};
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
    d.num_microseconds().map(Duration::microseconds)
}

/// Applies a decoded change and answers with the membership after it.
async fn change(
    d: &Directory,
    user_id: &str,
    key: &str,
    method: &'static str,
    request: &impl prost::Message,
    reason: &str,
    reason_required: bool,
    decode: impl FnOnce(&mut Violations) -> Option<VipChange>,
) -> Result<MembershipView, tonic::Status> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", user_id);
    let key = v.idempotency_key(key);
    let change = decode(&mut v);
    let reason = v.free_text("reason", reason, MAX_REASON_CHARS, reason_required);
    let change = decoded(v, change)?;
    let key = RequestKey::new("", key, method, request);
    Ok(d.change_vip(user_id, change, &reason, &key).await?)
}

pub async fn check(d: &Directory, body: &pb::CheckVipRequest) -> Answer<pb::CheckVipResponse> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", &body.user_id);
    v.finish()?;
    let view = d.check_vip(user_id).await?;
    Ok(Response::new(pb::CheckVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn grant(d: &Directory, body: &pb::GrantVipRequest) -> Answer<pb::GrantVipResponse> {
    let view = change(d, &body.user_id, &body.idempotency_key, "GrantVip", body, &body.reason, false, |v| {
        duration(v, body.duration.as_ref(), MAX_GRANT_DAYS, None).map(VipChange::Grant)
    })
    .await?;
    Ok(Response::new(pb::GrantVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn extend(d: &Directory, body: &pb::ExtendVipRequest) -> Answer<pb::ExtendVipResponse> {
    let view = change(d, &body.user_id, &body.idempotency_key, "ExtendVip", body, &body.reason, false, |v| {
        duration(v, body.duration.as_ref(), MAX_GRANT_DAYS, None).map(VipChange::Extend)
    })
    .await?;
    Ok(Response::new(pb::ExtendVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn trial(
    d: &Directory,
    body: &pb::StartVipTrialRequest,
) -> Answer<pb::StartVipTrialResponse> {
    let view = change(d, &body.user_id, &body.idempotency_key, "StartVipTrial", body, "", false, |v| {
        let default = Some(Duration::days(DEFAULT_TRIAL_DAYS));
        duration(v, body.duration.as_ref(), MAX_TRIAL_DAYS, default).map(VipChange::Trial)
    })
    .await?;
    Ok(Response::new(pb::StartVipTrialResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn cancel(d: &Directory, body: &pb::CancelVipRequest) -> Answer<pb::CancelVipResponse> {
    let view = change(d, &body.user_id, &body.idempotency_key, "CancelVip", body, &body.reason, false, |_| {
        Some(VipChange::Cancel)
    })
    .await?;
    Ok(Response::new(pb::CancelVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn revoke(d: &Directory, body: &pb::RevokeVipRequest) -> Answer<pb::RevokeVipResponse> {
    let view = change(d, &body.user_id, &body.idempotency_key, "RevokeVip", body, &body.reason, true, |_| {
        Some(VipChange::Revoke)
    })
    .await?;
    Ok(Response::new(pb::RevokeVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn history(
    d: &Directory,
    body: &pb::ListVipHistoryRequest,
) -> Answer<pb::ListVipHistoryResponse> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", &body.user_id);
    v.finish()?;
    let entries = d.vip_history(user_id).await?;
    Ok(Response::new(pb::ListVipHistoryResponse {
        entries: entries.iter().map(proto::history_entry).collect(),
    }))
}
