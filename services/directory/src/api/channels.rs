//! JoinChannel, LeaveChannel, ListChannelMemberships, EnsureChannelMembership.

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Violations;
use tonic::Response;
use uuid::Uuid;

use super::{Access, Answer, decoded};
use crate::app::Directory;
use crate::domain::Channel;
use crate::proto;

fn user_and_channel(user_id: &str, channel: i32) -> Result<(Uuid, Channel), tonic::Status> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", user_id);
    let channel = v
        .enumeration::<pb::Channel>(
            "channel",
            channel,
            "REQUIRED",
            "CHANNEL_FREE or CHANNEL_VIP",
        )
        .and_then(proto::channel_from);
    Ok((user_id, decoded(v, channel)?))
}

fn user_id(value: &str) -> Result<Uuid, tonic::Status> {
    let mut v = Violations::new();
    let id = v.uuid("user_id", value);
    v.finish()?;
    Ok(id)
}

pub async fn join(
    d: &Directory,
    body: &pb::JoinChannelRequest,
    access: &Access,
) -> Answer<pb::JoinChannelResponse> {
    let (user_id, channel) = user_and_channel(&body.user_id, body.channel)?;
    access.owner(user_id)?;
    let changed = d.join_channel(user_id, channel).await?;
    let membership = d
        .channel_memberships(user_id)
        .await?
        .into_iter()
        .find(|m| m.channel == channel);
    Ok(Response::new(pb::JoinChannelResponse {
        membership: membership.as_ref().map(proto::channel_membership),
        changed,
    }))
}

pub async fn leave(
    d: &Directory,
    body: &pb::LeaveChannelRequest,
    access: &Access,
) -> Answer<pb::LeaveChannelResponse> {
    let (user_id, channel) = user_and_channel(&body.user_id, body.channel)?;
    access.owner(user_id)?;
    let changed = d.leave_channel(user_id, channel).await?;
    Ok(Response::new(pb::LeaveChannelResponse { changed }))
}

pub async fn list(
    d: &Directory,
    body: &pb::ListChannelMembershipsRequest,
    access: &Access,
) -> Answer<pb::ListChannelMembershipsResponse> {
    let user_id = user_id(&body.user_id)?;
    access.owner(user_id)?;
    let memberships = d.channel_memberships(user_id).await?;
    Ok(Response::new(pb::ListChannelMembershipsResponse {
        memberships: memberships.iter().map(proto::channel_membership).collect(),
    }))
}

pub async fn ensure(
    d: &Directory,
    body: &pb::EnsureChannelMembershipRequest,
    access: &Access,
) -> Answer<pb::EnsureChannelMembershipResponse> {
    let user_id = user_id(&body.user_id)?;
    access.owner(user_id)?;
    let ensured = d.ensure_channel_membership(user_id).await?;
    Ok(Response::new(pb::EnsureChannelMembershipResponse {
        memberships: ensured
            .memberships
            .iter()
            .map(proto::channel_membership)
            .collect(),
        joined: ensured.joined,
        left: ensured.left,
    }))
}
