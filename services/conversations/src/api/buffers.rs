//! AppendMessage, TakeReadyBuffer, AckBuffer.

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::Violations;
use tonic::Response;

use super::{Access, Answer, duration_or, phone, positive_or};
use crate::app::Conversations;
use crate::domain::buffer::{self, BufferPolicy};
use crate::domain::{self, DEFAULT_LEASE, MAX_LEASE};
use crate::proto;

pub async fn append(
    c: &Conversations,
    body: &pb::AppendMessageRequest,
    access: &Access,
) -> Answer<pb::AppendMessageResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    message_body(&mut v, &body.body);
    let message_id = v.optional_text("message_id", &body.message_id, domain::MAX_MESSAGE_ID_CHARS);
    let policy = BufferPolicy {
        debounce: duration_or(
            &mut v,
            "debounce",
            body.debounce.as_ref(),
            buffer::DEFAULT_DEBOUNCE,
            buffer::MAX_DEBOUNCE,
        ),
        max_wait: positive_or(
            &mut v,
            "max_wait",
            body.max_wait.as_ref(),
            buffer::DEFAULT_MAX_WAIT,
            buffer::MAX_MAX_WAIT,
        ),
        max_messages: match body.max_messages {
            0 => buffer::DEFAULT_MAX_MESSAGES,
            n if (1..=buffer::MAX_MAX_MESSAGES).contains(&n) => n,
            n => {
                v.add(
                    "max_messages",
                    "OUT_OF_RANGE",
                    format!(
                        "must be between 0 (default {}) and {}, got {n}",
                        buffer::DEFAULT_MAX_MESSAGES,
                        buffer::MAX_MAX_MESSAGES
                    ),
                );
                buffer::DEFAULT_MAX_MESSAGES
            }
        },
    };
    v.finish()?;
    access.bot()?;
    let message_id = (!message_id.is_empty()).then_some(message_id.as_str());
    let appended = c
        .append_message(&phone, &body.body, message_id, &policy)
        .await?;
    Ok(Response::new(pb::AppendMessageResponse {
        sequence: appended.sequence,
        buffered: appended.buffered,
        replayed: appended.replayed,
    }))
}

/// A message is kept exactly as sent (not trimmed): 1 to 16,384 characters, no NUL or other
/// control characters but line breaks and tabs.
fn message_body(v: &mut Violations, body: &str) {
    let chars = body.chars().count();
    if body.trim().is_empty() {
        v.add("body", "REQUIRED", "is required: the message text");
    } else if chars > domain::MAX_MESSAGE_CHARS {
        v.add(
            "body",
            "MESSAGE_TOO_LONG",
            format!(
                "must be at most {} characters, got {chars}",
                domain::MAX_MESSAGE_CHARS
            ),
        );
    } else if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        v.add(
            "body",
            "CONTROL_CHARACTER",
            "must not contain control characters other than line breaks and tabs",
        );
    }
}

pub async fn take(
    c: &Conversations,
    body: &pb::TakeReadyBufferRequest,
    access: &Access,
) -> Answer<pb::TakeReadyBufferResponse> {
    let mut v = Violations::new();
    let worker = v.text("worker", &body.worker, domain::MAX_OWNER_CHARS);
    let lease = positive_or(
        &mut v,
        "lease",
        body.lease.as_ref(),
        DEFAULT_LEASE,
        MAX_LEASE,
    );
    v.finish()?;
    access.bot()?;
    let taken = c.take_ready_buffer(&worker, lease).await?;
    Ok(Response::new(pb::TakeReadyBufferResponse {
        found: taken.is_some(),
        buffer: taken.as_ref().map(proto::leased_buffer),
    }))
}

pub async fn ack(
    c: &Conversations,
    body: &pb::AckBufferRequest,
    access: &Access,
) -> Answer<pb::AckBufferResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let lease = v.uuid("lease_id", &body.lease_id);
    v.finish()?;
    access.bot()?;
    let done = c.ack_buffer(&phone, lease).await?;
    Ok(Response::new(pb::AckBufferResponse {
        removed: done.removed,
        remaining: done.remaining,
    }))
}
