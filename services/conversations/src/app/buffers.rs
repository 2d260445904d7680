//! Message buffers: AppendMessage, TakeReadyBuffer and AckBuffer (rules in
//! `domain::buffer`).

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::Error;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Conversations, contact_event, publish};
use crate::domain::buffer::{Ack, check_ack, not_held};
use crate::domain::{BufferPolicy, Phone, TakenBuffer};
use crate::store::buffers::{self as store, Appended};
use crate::store::contacts;
use crate::{error, metrics};

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    pub removed: i32,
    pub remaining: i32,
}

impl Conversations {
    /// Appends a message to the contact's buffer. With a `message_id` already buffered, the
    /// first append is answered and nothing is added (a retry).
    pub async fn append_message(
        &self,
        phone: &Phone,
        body: &str,
        message_id: Option<&str>,
        policy: &BufferPolicy,
    ) -> Result<Appended, Error> {
        if let Some(id) = message_id
            && let Some(first) = store::find_message(&self.pool, phone, id).await?
        {
            return Ok(first);
        }
        match store::append(&self.pool, phone, body, message_id, policy).await? {
            Some(appended) => Ok(appended),
            // A concurrent retry of the same message got there first.
            None => {
                let id = message_id.unwrap_or_default();
                store::find_message(&self.pool, phone, id).await?.ok_or_else(|| {
                    Error::invariant(
                        "BUFFERED_MESSAGE_VANISHED",
                        format!("message {id:?} of {phone} was buffered concurrently but cannot be read"),
                    )
                })
            }
        }
    }

    /// Leases one ready buffer to `worker` for `lease`, with every message buffered so far in
    /// sequence order; `None` when no buffer is ready.
    pub async fn take_ready_buffer(
        &self,
        worker: &str,
        lease: chrono::Duration,
    ) -> Result<Option<TakenBuffer>, Error> {
        let mut transaction = self.pool.begin().await?;
        let Some(leased) = store::take(&mut transaction, worker, lease).await? else {
            return Ok(None);
        };
        let messages =
            store::messages(&mut *transaction, &leased.phone, leased.taken_up_to).await?;
        let event = pb::BufferTaken {
            phone: leased.phone.to_string(),
            lease_id: leased.lease_id.to_string(),
            worker: worker.to_owned(),
            up_to_sequence: leased.taken_up_to,
            messages: i32::try_from(messages.len()).unwrap_or(i32::MAX),
        };
        buffer_event(
            &mut transaction,
            &leased.phone,
            "phoenix.conversations.v1.BufferTaken",
            &event,
        )
        .await?;
        transaction.commit().await?;
        self.events.appended();
        let buffers = &metrics::get().buffers;
        metrics::count(buffers, "taken", 1);
        metrics::count(buffers, "redelivered", u64::from(leased.redeliveries > 0));
        Ok(Some(TakenBuffer {
            phone: leased.phone,
            lease_id: leased.lease_id,
            lease_expires_at: leased.lease_expires_at,
            messages,
            redeliveries: leased.redeliveries,
        }))
    }

    /// Removes the messages `lease` took, if it is the buffer's live lease (FAILED_PRECONDITION
    /// `LEASE_NOT_HELD` or `LEASE_EXPIRED` otherwise); messages appended since stay. The same
    /// lease acknowledged again is answered as the first time.
    pub async fn ack_buffer(&self, phone: &Phone, lease: Uuid) -> Result<Acknowledged, Error> {
        let mut transaction = self.pool.begin().await?;
        let Some(locked) = store::lock_lease(&mut transaction, phone).await? else {
            if contacts::get(&mut *transaction, phone, false)
                .await?
                .is_none()
            {
                return Err(error::contact_not_found(phone).into());
            }
            return Err(not_held(lease).into());
        };
        let up_to = match check_ack(&locked.state, lease, locked.now)? {
            Ack::Replay => {
                return Ok(Acknowledged {
                    removed: locked.last_acked_count.unwrap_or_default(),
                    remaining: locked.message_count,
                });
            }
            Ack::Remove { up_to } => up_to,
        };
        let (removed, remaining) =
            store::acknowledge(&mut transaction, phone, lease, up_to).await?;
        let event = pb::BufferAcknowledged {
            phone: phone.to_string(),
            lease_id: lease.to_string(),
            up_to_sequence: up_to,
            removed,
            remaining,
        };
        buffer_event(
            &mut transaction,
            phone,
            "phoenix.conversations.v1.BufferAcknowledged",
            &event,
        )
        .await?;
        transaction.commit().await?;
        self.events.appended();
        let buffers = &metrics::get().buffers;
        metrics::count(buffers, "acknowledged", 1);
        metrics::count(
            buffers,
            "messages_acknowledged",
            u64::try_from(removed).unwrap_or(0),
        );
        Ok(Acknowledged { removed, remaining })
    }
}

/// Appends a buffer change to the contact's stream, at its next version.
async fn buffer_event(
    connection: &mut PgConnection,
    phone: &Phone,
    event_type: &'static str,
    payload: &impl prost::Message,
) -> Result<(), Error> {
    let (version, now) = contacts::next_version(connection, phone).await?;
    publish(
        connection,
        &[contact_event(phone, version, event_type, payload, now)],
    )
    .await
}
