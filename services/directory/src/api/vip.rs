//! CheckVip, GrantVip, ExtendVip, StartVipTrial, CancelVip, RevokeVip, ListVipHistory.

use chrono::Duration;
use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::idempotency::RequestKey;
use tonic::Response;

use super::{Access, Answer, decoded};
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

/// The fields every VIP change request has.
struct ChangeCall<'a, M> {
    method: &'static str,
    request: &'a M,
    user_id: &'a str,
    idempotency_key: &'a str,
    reason: &'a str,
    reason_required: bool,
    /// Whether the user may make this change on themselves (else it needs the admin role).
    self_service: bool,
}

/// Validates a change request whole (its own fields by `decode`), applies the change and
/// answers with the membership after it.
async fn change<M: prost::Message>(
    d: &Directory,
    access: &Access,
    call: ChangeCall<'_, M>,
    decode: impl FnOnce(&mut Violations) -> Option<VipChange>,
) -> Result<MembershipView, tonic::Status> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", call.user_id);
    let key = v.idempotency_key(call.idempotency_key);
    let change = decode(&mut v);
    let reason = v.free_text(
        "reason",
        call.reason,
        MAX_REASON_CHARS,
        call.reason_required,
    );
    let change = decoded(v, change)?;
    if call.self_service {
        access.owner(user_id)?;
    } else {
        access.admin()?;
    }
    let key = RequestKey::new("", key, call.method, call.request);
    Ok(d.change_vip(user_id, change, &reason, &key).await?)
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

pub async fn grant(
    d: &Directory,
    body: &pb::GrantVipRequest,
    access: &Access,
) -> Answer<pb::GrantVipResponse> {
    let view = change(
        d,
        access,
        ChangeCall {
            method: "GrantVip",
            self_service: false,
            request: body,
            user_id: &body.user_id,
            idempotency_key: &body.idempotency_key,
            reason: &body.reason,
            reason_required: false,
        },
        |v| duration(v, body.duration.as_ref(), MAX_GRANT_DAYS, None).map(VipChange::Grant),
    )
    .await?;
    Ok(Response::new(pb::GrantVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn extend(
    d: &Directory,
    body: &pb::ExtendVipRequest,
    access: &Access,
) -> Answer<pb::ExtendVipResponse> {
    let view = change(
        d,
        access,
        ChangeCall {
            method: "ExtendVip",
            self_service: false,
            request: body,
            user_id: &body.user_id,
            idempotency_key: &body.idempotency_key,
            reason: &body.reason,
            reason_required: false,
        },
        |v| duration(v, body.duration.as_ref(), MAX_GRANT_DAYS, None).map(VipChange::Extend),
    )
    .await?;
    Ok(Response::new(pb::ExtendVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn trial(
    d: &Directory,
    body: &pb::StartVipTrialRequest,
    access: &Access,
) -> Answer<pb::StartVipTrialResponse> {
    let view = change(
        d,
        access,
        ChangeCall {
            method: "StartVipTrial",
            self_service: true,
            request: body,
            user_id: &body.user_id,
            idempotency_key: &body.idempotency_key,
            reason: "",
            reason_required: false,
        },
        |v| {
            let default = Some(Duration::days(DEFAULT_TRIAL_DAYS));
            duration(v, body.duration.as_ref(), MAX_TRIAL_DAYS, default).map(VipChange::Trial)
        },
    )
    .await?;
    Ok(Response::new(pb::StartVipTrialResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn cancel(
    d: &Directory,
    body: &pb::CancelVipRequest,
    access: &Access,
) -> Answer<pb::CancelVipResponse> {
    let view = change(
        d,
        access,
        ChangeCall {
            method: "CancelVip",
            self_service: true,
            request: body,
            user_id: &body.user_id,
            idempotency_key: &body.idempotency_key,
            reason: &body.reason,
            reason_required: false,
        },
        |_| Some(VipChange::Cancel),
    )
    .await?;
    Ok(Response::new(pb::CancelVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn revoke(
    d: &Directory,
    body: &pb::RevokeVipRequest,
    access: &Access,
) -> Answer<pb::RevokeVipResponse> {
    let view = change(
        d,
        access,
        ChangeCall {
            method: "RevokeVip",
            self_service: false,
            request: body,
            user_id: &body.user_id,
            idempotency_key: &body.idempotency_key,
            reason: &body.reason,
            reason_required: true,
        },
        |_| Some(VipChange::Revoke),
    )
    .await?;
    Ok(Response::new(pb::RevokeVipResponse {
        membership: Some(proto::membership(&view)),
    }))
}

pub async fn history(
    d: &Directory,
    body: &pb::ListVipHistoryRequest,
    _open: &Access,
) -> Answer<pb::ListVipHistoryResponse> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", &body.user_id);
    v.finish()?;
    let entries = d.vip_history(user_id).await?;
    Ok(Response::new(pb::ListVipHistoryResponse {
        entries: entries.iter().map(proto::history_entry).collect(),
    }))
}
