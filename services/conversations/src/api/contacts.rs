//! SaveContact, GetContact, SaveThread, GetThread.

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::Violations;
use tonic::Response;

use super::{Access, Answer, phone};
use crate::app::Conversations;
use crate::domain::{ContactProfile, contact};
use crate::proto;

pub async fn save(
    c: &Conversations,
    body: &pb::SaveContactRequest,
    access: &Access,
) -> Answer<pb::SaveContactResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let name = v.take(contact::name("name", &body.name)).flatten();
    let chat_id = v
        .take(contact::chat_id(&phone, &body.chat_id))
        .unwrap_or_default();
    let labels = v.take(contact::labels(&body.labels)).unwrap_or_default();
    let directory_user_id = v.optional_uuid("directory_user_id", &body.directory_user_id);
    let last_activity_at = body
        .last_activity_time
        .as_ref()
        .and_then(|t| v.timestamp("last_activity_time", Some(t)));
    v.finish()?;
    access.bot()?;
    let profile = ContactProfile {
        name,
        chat_id,
        labels,
        directory_user_id,
        last_activity_at,
    };
    let (contact, changed) = c.save_contact(&phone, &profile).await?;
    Ok(Response::new(pb::SaveContactResponse {
        contact: Some(proto::contact(&contact)),
        changed,
    }))
}

pub async fn get(
    c: &Conversations,
    body: &pb::GetContactRequest,
    access: &Access,
) -> Answer<pb::GetContactResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    v.finish()?;
    access.bot()?;
    let view = c.contact(&phone).await?;
    Ok(Response::new(pb::GetContactResponse {
        contact: Some(proto::contact(&view.contact)),
        active_thread: view.active_thread.as_ref().map(proto::thread),
    }))
}

pub async fn save_thread(
    c: &Conversations,
    body: &pb::SaveThreadRequest,
    access: &Access,
) -> Answer<pb::SaveThreadResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let thread_id = v
        .take(contact::thread_id(&body.thread_id))
        .unwrap_or_default();
    let chat_id = (!body.chat_id.trim().is_empty())
        .then(|| v.take(contact::chat_id(&phone, &body.chat_id)))
        .flatten();
    let user_name = v
        .take(contact::name("user_name", &body.user_name))
        .flatten();
    v.finish()?;
    access.bot()?;
    let saved = c
        .save_thread(&phone, &thread_id, chat_id.as_deref(), user_name.as_deref())
        .await?;
    Ok(Response::new(pb::SaveThreadResponse {
        contact: Some(proto::contact(&saved.contact)),
        thread: Some(proto::thread(&saved.thread)),
    }))
}

pub async fn get_thread(
    c: &Conversations,
    body: &pb::GetThreadRequest,
    access: &Access,
) -> Answer<pb::GetThreadResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    v.finish()?;
    access.bot()?;
    let thread = c.thread(&phone).await?;
    Ok(Response::new(pb::GetThreadResponse {
        thread: Some(proto::thread(&thread)),
    }))
}
