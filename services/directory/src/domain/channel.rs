//! The bot's channels (seed 001): a free one, and a VIP one every user with VIP access belongs
//! in. An active VIP outside the VIP channel is an inconsistency the auditor reports and
//! `EnsureChannelMembership` repairs.

use chrono::{DateTime, Utc};
use phoenix_runtime::Refusal;
use uuid::Uuid;

use super::VipStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Free,
    Vip,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Vip => "vip",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "free" => Some(Self::Free),
            "vip" => Some(Self::Vip),
            _ => None,
        }
    }
}

/// A user's membership of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMembership {
    pub user_id: Uuid,
    pub channel: Channel,
    pub joined_at: DateTime<Utc>,
}

/// What `EnsureChannelMembership` does to the VIP channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    Join,
    Leave,
    Nothing,
}

/// The VIP channel follows VIP access: a user with access joins it, one without leaves it.
pub fn vip_channel_repair(has_access: bool, in_vip_channel: bool) -> Repair {
    match (has_access, in_vip_channel) {
        (true, false) => Repair::Join,
        (false, true) => Repair::Leave,
        _ => Repair::Nothing,
    }
}

/// Whether a user with VIP status `status` may join `channel`: the VIP channel is for users
/// with VIP access only.
pub fn may_join(user_id: Uuid, channel: Channel, status: VipStatus) -> Result<(), Refusal> {
    if channel == Channel::Vip && !status.has_access() {
        return Err(Refusal::precondition(
            "VIP_REQUIRED",
            format!("user {user_id} has no VIP access (status {status:?}): the VIP channel is for VIP members"),
        )
        .with("user_id", user_id)
        .with("vip_status", format!("{status:?}").to_uppercase()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vip_channel_follows_access() {
        assert_eq!(vip_channel_repair(true, false), Repair::Join);
        assert_eq!(vip_channel_repair(false, true), Repair::Leave);
        assert_eq!(vip_channel_repair(true, true), Repair::Nothing);
        assert_eq!(vip_channel_repair(false, false), Repair::Nothing);
    }
}
