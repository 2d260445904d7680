//! Contacts and threads: SaveContact, GetContact, and the seed's saveThread / getThread.

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::Error;
use sqlx::PgConnection;

use super::{Conversations, contact_event, publish};
use crate::domain::{Contact, ContactProfile, Phone, Thread};
use crate::store::contacts as store;
use crate::{error, proto};

/// A contact with its active thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    pub contact: Contact,
    pub active_thread: Option<Thread>,
}

/// What SaveThread answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedThread {
    pub contact: Contact,
    pub thread: Thread,
}

impl Conversations {
    /// Creates the contact or replaces its profile; `changed` is false when it already held
    /// this profile (nothing is written then, no event).
    pub async fn save_contact(
        &self,
        phone: &Phone,
        profile: &ContactProfile,
    ) -> Result<(Contact, bool), Error> {
        let mut transaction = self.pool.begin().await?;
        let (contact, created) = match locked_or_created(&mut transaction, phone, profile).await? {
            (contact, true) => (contact, true),
            (current, false) => {
                let wanted = ContactProfile {
                    last_activity_at: profile
                        .last_activity_at
                        .or(current.profile.last_activity_at),
                    ..profile.clone()
                };
                if wanted == current.profile {
                    return Ok((current, false));
                }
                (
                    store::update(&mut transaction, phone, &wanted).await?,
                    false,
                )
            }
        };
        publish(&mut transaction, &[saved(&contact, created)]).await?;
        transaction.commit().await?;
        self.events.appended();
        Ok((contact, true))
    }

    /// The contact and its active thread; NOT_FOUND `CONTACT_NOT_FOUND`.
    pub async fn contact(&self, phone: &Phone) -> Result<ContactView, Error> {
        let contact = store::get(&self.pool, phone, false)
            .await?
            .ok_or_else(|| error::contact_not_found(phone))?;
        let active_thread = store::active_thread(&self.pool, phone).await?;
        Ok(ContactView {
            contact,
            active_thread,
        })
    }

    /// The seed's saveThread: the contact (created when new) gets `thread_id` as its one active
    /// thread, its chat id and name when given, and its last activity now.
    pub async fn save_thread(
        &self,
        phone: &Phone,
        thread_id: &str,
        chat_id: Option<&str>,
        user_name: Option<&str>,
    ) -> Result<SavedThread, Error> {
        let mut transaction = self.pool.begin().await?;
        let now = store::now(&mut transaction).await?;
        let fresh = ContactProfile {
            name: user_name.map(str::to_owned),
            chat_id: chat_id.map_or_else(|| phone.default_chat_id(), str::to_owned),
            labels: Vec::new(),
            directory_user_id: None,
            last_activity_at: Some(now),
        };
        let (mut contact, created) = locked_or_created(&mut transaction, phone, &fresh).await?;
        if let Some(owner) = store::thread_owner(&mut transaction, thread_id).await?
            && owner != *phone
        {
            return Err(error::thread_of_another_contact(thread_id).into());
        }
        let mut events = Vec::new();
        if !created {
            let wanted = ContactProfile {
                name: fresh.name.clone().or(contact.profile.name.clone()),
                chat_id: chat_id.map_or_else(|| contact.profile.chat_id.clone(), str::to_owned),
                last_activity_at: Some(now),
                ..contact.profile.clone()
            };
            if wanted != contact.profile {
                contact = store::update(&mut transaction, phone, &wanted).await?;
                events.push(saved(&contact, false));
            }
        } else {
            events.push(saved(&contact, true));
        }
        let (thread, replaced) =
            store::activate_thread(&mut transaction, phone, thread_id, user_name, None).await?;
        let (version, _) = store::next_version(&mut transaction, phone).await?;
        contact.version = version;
        events.push(contact_event(
            phone,
            version,
            "phoenix.conversations.v1.ThreadSaved",
            &pb::ThreadSaved {
                thread: Some(proto::thread(&thread)),
                replaced_thread_id: replaced.unwrap_or_default(),
            },
            thread.last_message_at,
        ));
        publish(&mut transaction, &events).await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(SavedThread { contact, thread })
    }

    /// The seed's getThread: the active thread; NOT_FOUND `CONTACT_NOT_FOUND` or
    /// `THREAD_NOT_FOUND`.
    pub async fn thread(&self, phone: &Phone) -> Result<Thread, Error> {
        let view = self.contact(phone).await?;
        view.active_thread
            .ok_or_else(|| error::thread_not_found(phone).into())
    }
}

/// The contact locked for the transaction, or created with `profile` (true) when new.
pub(super) async fn locked_or_created(
    connection: &mut PgConnection,
    phone: &Phone,
    profile: &ContactProfile,
) -> Result<(Contact, bool), Error> {
    if let Some(contact) = store::get(&mut *connection, phone, true).await? {
        return Ok((contact, false));
    }
    if let Some(contact) = store::insert(connection, phone, profile).await? {
        return Ok((contact, true));
    }
    // A concurrent call created it between the two statements: it is committed now.
    let contact = store::get(&mut *connection, phone, true)
        .await?
        .ok_or_else(|| {
            Error::invariant(
                "CONTACT_VANISHED",
                format!("contact {phone} was inserted concurrently but cannot be read"),
            )
        })?;
    Ok((contact, false))
}

/// The event of a contact's creation or profile change, at its current version.
pub(super) fn saved(contact: &Contact, created: bool) -> phoenix_runtime::stream::NewEvent {
    contact_event(
        &contact.phone,
        contact.version,
        "phoenix.conversations.v1.ContactSaved",
        &pb::ContactSaved {
            contact: Some(proto::contact(contact)),
            created,
        },
        contact.updated_at,
    )
}
