//! VIP memberships: CheckVip and the changes, each at most once per idempotency key.

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};
use phoenix_runtime::stream::NewEvent;
use uuid::Uuid;

use super::users::locked;
use super::{Directory, IDEMPOTENCY_TTL, USER_AGGREGATE, publish};
use crate::domain::vip::{self, MembershipView, VipChange};
use crate::proto;
use crate::store::{users, vip as store};

impl Directory {
    /// The user's membership now; NOT_FOUND for an unknown user.
    pub async fn check_vip(&self, user_id: Uuid) -> Result<MembershipView, Error> {
        let (_, membership) = users::get(&self.pool, user_id, false)
            .await?
            .ok_or_else(|| crate::error::user_not_found(user_id))?;
        Ok(MembershipView::at(user_id, membership, self.now()))
    }

    /// Applies `change` to the user's membership once per `key`: a retry with the same key
    /// and request answers the first outcome (also while the first is still running: it waits
    /// for it), another request with the key is refused.
    pub async fn change_vip(
        &self,
        user_id: Uuid,
        change: VipChange,
        reason: &str,
        key: &RequestKey,
    ) -> Result<MembershipView, Error> {
        let reason = reason.to_owned();
        let idempotency_key = key.key.clone();
        let view = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let (user, current) = locked(connection, user_id).await?;
                // The clock is read under the user's lock: a change that waited for another
                // never acts at an instant before the one it waited for.
                let now = super::now();
                let next = vip::apply(user_id, current.as_ref(), user.vip_trial_used, change, now)?;
                store::record(connection, &next, change, &reason, &idempotency_key, now).await?;
                if let VipChange::Trial(_) = change {
                    users::use_trial(connection, user_id, next.period_end).await?;
                }
                let version = users::next_version(connection, user_id).await?;
                let view = MembershipView::at(user_id, Some(next), now);
                let event = NewEvent::new(
                    USER_AGGREGATE,
                    user_id,
                    version,
                    "phoenix.directory.v1.VipStatusChanged",
                    &pb::VipStatusChanged {
                        user_id: user_id.to_string(),
                        change: proto::vip_change(change).into(),
                        membership: Some(proto::membership(&view)),
                    },
                    now,
                );
                publish(connection, &[event]).await?;
                Ok(view)
            })
        })
        .await?;
        self.events.appended();
        Ok(view)
    }

    /// Every change of the user's membership, oldest first.
    pub async fn vip_history(&self, user_id: Uuid) -> Result<Vec<store::HistoryEntry>, Error> {
        users::get(&self.pool, user_id, false)
            .await?
            .ok_or_else(|| crate::error::user_not_found(user_id))?;
        store::history(&self.pool, user_id).await
    }
}
