//! Processing leases, pending images and typing stamps.

use phoenix_proto::conversations::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::timestamp;
use phoenix_runtime::idempotency::RequestKey;
use tonic::{Response, Status};

use super::{Access, Answer, duration_or, phone, positive_or};
use crate::app::Conversations;
use crate::domain::Phone;
use crate::domain::{self, DEFAULT_LEASE, DEFAULT_TYPING_INTERVAL, MAX_LEASE, MAX_TYPING_INTERVAL};
use crate::proto;

/// The phone, owner and duration of an acquire or a renewal.
fn lease_request(
    raw_phone: &str,
    owner: &str,
    ttl: Option<&prost_types::Duration>,
) -> Result<(Phone, String, chrono::Duration), Status> {
    let mut v = Violations::new();
    let phone = phone(&mut v, raw_phone);
    let owner = v.text("owner", owner, domain::MAX_OWNER_CHARS);
    let ttl = positive_or(&mut v, "ttl", ttl, DEFAULT_LEASE, MAX_LEASE);
    v.finish()?;
    Ok((phone, owner, ttl))
}

/// AcquireProcessingLease (`renew` false) and RenewProcessingLease (`renew` true).
pub async fn hold(
    c: &Conversations,
    raw_phone: &str,
    owner: &str,
    ttl: Option<&prost_types::Duration>,
    renew: bool,
    access: &Access,
) -> Result<pb::ProcessingLease, Status> {
    let (phone, owner, ttl) = lease_request(raw_phone, owner, ttl)?;
    access.bot()?;
    let lease = if renew {
        c.renew_lease(&phone, &owner, ttl).await?
    } else {
        c.acquire_lease(&phone, &owner, ttl).await?
    };
    Ok(proto::processing_lease(&lease))
}

pub async fn release(
    c: &Conversations,
    body: &pb::ReleaseProcessingLeaseRequest,
    access: &Access,
) -> Answer<pb::ReleaseProcessingLeaseResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let owner = v.text("owner", &body.owner, domain::MAX_OWNER_CHARS);
    v.finish()?;
    access.bot()?;
    let released = c.release_lease(&phone, &owner).await?;
    Ok(Response::new(pb::ReleaseProcessingLeaseResponse {
        released,
    }))
}

pub async fn add_image(
    c: &Conversations,
    body: &pb::AddPendingImageRequest,
    access: &Access,
) -> Answer<pb::AddPendingImageResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let image_ref = v.text("image_ref", &body.image_ref, domain::MAX_IMAGE_REF_CHARS);
    let caption = v.free_text("caption", &body.caption, domain::MAX_CAPTION_CHARS, false);
    let key = (!body.idempotency_key.is_empty()).then(|| {
        let key = v.idempotency_key(&body.idempotency_key);
        RequestKey::new("", key, "AddPendingImage", body)
    });
    v.finish()?;
    access.bot()?;
    let image = c
        .add_pending_image(&phone, &image_ref, &caption, key.as_ref())
        .await?;
    Ok(Response::new(pb::AddPendingImageResponse {
        image: Some(proto::pending_image(&image)),
    }))
}

pub async fn list_images(
    c: &Conversations,
    body: &pb::ListPendingImagesRequest,
    access: &Access,
) -> Answer<pb::ListPendingImagesResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    v.finish()?;
    access.bot()?;
    let images = c.pending_images(&phone).await?;
    Ok(Response::new(pb::ListPendingImagesResponse {
        images: images.iter().map(proto::pending_image).collect(),
    }))
}

pub async fn remove_images(
    c: &Conversations,
    body: &pb::RemovePendingImagesRequest,
    access: &Access,
) -> Answer<pb::RemovePendingImagesResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    v.check(
        body.up_to_id > 0,
        "up_to_id",
        "INVALID_ID",
        "must be the positive id of a queued image",
    );
    v.finish()?;
    access.bot()?;
    let removed = c.remove_pending_images(&phone, body.up_to_id).await?;
    Ok(Response::new(pb::RemovePendingImagesResponse {
        removed: i32::try_from(removed).unwrap_or(i32::MAX),
    }))
}

pub async fn typing(
    c: &Conversations,
    body: &pb::RecordTypingRequest,
    access: &Access,
) -> Answer<pb::RecordTypingResponse> {
    let mut v = Violations::new();
    let phone = phone(&mut v, &body.phone);
    let interval = duration_or(
        &mut v,
        "min_interval",
        body.min_interval.as_ref(),
        DEFAULT_TYPING_INTERVAL,
        MAX_TYPING_INTERVAL,
    );
    v.finish()?;
    access.bot()?;
    let (logged, at) = c.record_typing(&phone, interval).await?;
    Ok(Response::new(pb::RecordTypingResponse {
        logged,
        last_logged_time: Some(timestamp(at)),
    }))
}
