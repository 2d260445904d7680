//! Channel memberships, and keeping the VIP channel in line with VIP access.

use chrono::{DateTime, Utc};
use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::convert::timestamp;
use phoenix_runtime::stream::NewEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::users::locked;
use super::{Directory, USER_AGGREGATE, publish};
use crate::domain::Channel;
use crate::domain::channel::{ChannelMembership, Repair, may_join, vip_channel_repair};
use crate::domain::vip::status_of;
use crate::proto;
use crate::store::{channels as store, users};

/// What EnsureChannelMembership did.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub memberships: Vec<ChannelMembership>,
    pub joined: bool,
    pub left: bool,
}

impl Directory {
    /// Makes the user a member of `channel`; `false` when they already were.
    /// The VIP channel needs VIP access (FAILED_PRECONDITION `VIP_REQUIRED`), read under the
    /// user's lock.
    pub async fn join_channel(&self, user_id: Uuid, channel: Channel) -> Result<bool, Error> {
        let mut transaction = self.pool.begin().await?;
        let (_, membership) = locked(&mut transaction, user_id).await?;
        let now = super::now();
        may_join(user_id, channel, status_of(membership.as_ref(), now))?;
        let changed = join(&mut transaction, user_id, channel, now).await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(changed)
    }

    /// Ends the user's membership of `channel`; `false` when they were not a member.
    pub async fn leave_channel(&self, user_id: Uuid, channel: Channel) -> Result<bool, Error> {
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        locked(&mut transaction, user_id).await?;
        let changed = leave(&mut transaction, user_id, channel, now).await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(changed)
    }

    pub async fn channel_memberships(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<ChannelMembership>, Error> {
        users::get(&self.pool, user_id, false)
            .await?
            .ok_or_else(|| crate::error::user_not_found(user_id))?;
        store::of_user(&self.pool, user_id).await
    }

    /// Joins a user with VIP access to the VIP channel, or removes one without; idempotent.
    pub async fn ensure_channel_membership(&self, user_id: Uuid) -> Result<Ensured, Error> {
        let mut transaction = self.pool.begin().await?;
        let (_, membership) = locked(&mut transaction, user_id).await?;
        let now = super::now();
        let in_vip = store::of_user(&mut *transaction, user_id)
            .await?
            .iter()
            .any(|m| m.channel == Channel::Vip);
        let access = status_of(membership.as_ref(), now).has_access();
        let repair = vip_channel_repair(access, in_vip);
        match repair {
            Repair::Join => {
                join(&mut transaction, user_id, Channel::Vip, now).await?;
            }
            Repair::Leave => {
                leave(&mut transaction, user_id, Channel::Vip, now).await?;
            }
            Repair::Nothing => {}
        }
        let memberships = store::of_user(&mut *transaction, user_id).await?;
        transaction.commit().await?;
        if repair != Repair::Nothing {
            self.events.appended();
            tracing::info!(user_id = %user_id, ?repair, "VIP channel membership repaired");
        }
        Ok(Ensured {
            memberships,
            joined: repair == Repair::Join,
            left: repair == Repair::Leave,
        })
    }
}

async fn join(
    connection: &mut PgConnection,
    user_id: Uuid,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    if !store::join(connection, user_id, channel, now).await? {
        return Ok(false);
    }
    let payload = pb::UserJoinedChannel {
        user_id: user_id.to_string(),
        channel: proto::channel(channel).into(),
        join_time: Some(timestamp(now)),
    };
    announce(
        connection,
        user_id,
        "phoenix.directory.v1.UserJoinedChannel",
        &payload,
        now,
    )
    .await?;
    Ok(true)
}

async fn leave(
    connection: &mut PgConnection,
    user_id: Uuid,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    if !store::leave(connection, user_id, channel).await? {
        return Ok(false);
    }
    let payload = pb::UserLeftChannel {
        user_id: user_id.to_string(),
        channel: proto::channel(channel).into(),
        leave_time: Some(timestamp(now)),
    };
    announce(
        connection,
        user_id,
        "phoenix.directory.v1.UserLeftChannel",
        &payload,
        now,
    )
    .await?;
    Ok(true)
}

async fn announce(
    connection: &mut PgConnection,
    user_id: Uuid,
    event_type: &'static str,
    payload: &impl prost::Message,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let version = users::next_version(connection, user_id).await?;
    let event = NewEvent::new(USER_AGGREGATE, user_id, version, event_type, payload, now);
    publish(connection, &[event]).await
}
