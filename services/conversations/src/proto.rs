//! Domain ⇄ `phoenix.conversations.v1` conversions, for the API's answers and the events'
//! payloads.

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::convert::{optional_timestamp, struct_from_json, timestamp};

use crate::domain::buffer::BufferedMessage;
use crate::domain::lease::ProcessingLease;
use crate::domain::{Contact, TakenBuffer, Thread, UserState};
use crate::store::caches::CacheEntry;
use crate::store::leases::PendingImage;

pub fn contact(c: &Contact) -> pb::Contact {
    pb::Contact {
        phone: c.phone.to_string(),
        name: c.profile.name.clone().unwrap_or_default(),
        chat_id: c.profile.chat_id.clone(),
        labels: c.profile.labels.clone(),
        directory_user_id: c
            .profile
            .directory_user_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        last_activity_time: optional_timestamp(c.profile.last_activity_at),
        create_time: Some(timestamp(c.created_at)),
        update_time: Some(timestamp(c.updated_at)),
        version: c.version,
    }
}

pub fn thread(t: &Thread) -> pb::Thread {
    pb::Thread {
        thread_id: t.thread_id.clone(),
        phone: t.phone.to_string(),
        active: t.active,
        user_name: t.user_name.clone().unwrap_or_default(),
        create_time: Some(timestamp(t.created_at)),
        last_message_time: Some(timestamp(t.last_message_at)),
    }
}

pub fn cache_entry(e: &CacheEntry) -> pb::CacheEntry {
    pb::CacheEntry {
        phone: e.phone.to_string(),
        value: e.value.clone(),
        write_time: Some(timestamp(e.written_at)),
        expire_time: Some(timestamp(e.expires_at)),
    }
}

pub fn user_state(s: &UserState) -> pb::UserState {
    pb::UserState {
        phone: s.phone.to_string(),
        last_voice_input_time: optional_timestamp(s.last_voice_input_at),
        preferences: Some(struct_from_json(&s.preferences)),
        update_time: optional_timestamp(s.updated_at),
    }
}

fn message(m: &BufferedMessage) -> pb::BufferedMessage {
    pb::BufferedMessage {
        sequence: m.sequence,
        body: m.body.clone(),
        message_id: m.message_id.clone().unwrap_or_default(),
        receive_time: Some(timestamp(m.received_at)),
    }
}

pub fn leased_buffer(b: &TakenBuffer) -> pb::LeasedBuffer {
    pb::LeasedBuffer {
        phone: b.phone.to_string(),
        lease_id: b.lease_id.to_string(),
        lease_expire_time: Some(timestamp(b.lease_expires_at)),
        messages: b.messages.iter().map(message).collect(),
        redeliveries: b.redeliveries,
    }
}

pub fn processing_lease(l: &ProcessingLease) -> pb::ProcessingLease {
    pb::ProcessingLease {
        phone: l.phone.to_string(),
        owner: l.owner.clone(),
        acquire_time: Some(timestamp(l.acquired_at)),
        expire_time: Some(timestamp(l.expires_at)),
    }
}

pub fn pending_image(i: &PendingImage) -> pb::PendingImage {
    pb::PendingImage {
        id: i.id,
        phone: i.phone.to_string(),
        image_ref: i.image_ref.clone(),
        caption: i.caption.clone(),
        add_time: Some(timestamp(i.added_at)),
    }
}
