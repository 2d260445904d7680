//! Processing leases, pending images, typing stamps, the cleanup and the event stream through
//! the gRPC API.

use std::time::Duration;

use futures_util::StreamExt;
use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_client::ConversationsServiceClient;
use phoenix_testkit::{assert_refused, field_reasons, spawn};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

type Client = ConversationsServiceClient<Channel>;

const PHONE: &str = "573001234567";

fn duration_ms(ms: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: ms / 1000,
        nanos: i32::try_from((ms % 1000) * 1_000_000).expect("fits"),
    })
}

async fn contact(client: &mut Client, phone: &str) {
    client
        .save_contact(pb::SaveContactRequest {
            phone: phone.into(),
            ..Default::default()
        })
        .await
        .expect("saved");
}

fn acquire(owner: &str, ms: i64) -> pb::AcquireProcessingLeaseRequest {
    pb::AcquireProcessingLeaseRequest {
        phone: PHONE.into(),
        owner: owner.into(),
        ttl: duration_ms(ms),
    }
}

#[tokio::test]
async fn one_holder_at_a_time_and_a_crashed_holders_lease_expires() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, PHONE).await;
    let lease = client
        .acquire_processing_lease(acquire("a", 1500))
        .await
        .expect("acquired")
        .into_inner();
    assert_eq!(lease.lease.expect("lease").owner, "a");
    let status = client
        .acquire_processing_lease(acquire("b", 1500))
        .await
        .expect_err("held");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_HELD");
    assert_eq!(
        phoenix_testkit::metadata(&status, "owner").as_deref(),
        Some("a")
    );

    // Concurrent acquirers of a free lease: exactly one wins.
    contact(&mut client, "573007654321").await;
    let mut racers = Vec::new();
    for i in 0..8 {
        let mut client = client.clone();
        racers.push(tokio::spawn(async move {
            client
                .acquire_processing_lease(pb::AcquireProcessingLeaseRequest {
                    phone: "573007654321".into(),
                    owner: format!("racer-{i}"),
                    ttl: duration_ms(10_000),
                })
                .await
        }));
    }
    let mut winners = 0;
    for racer in racers {
        match racer.await.expect("joined") {
            Ok(_) => winners += 1,
            Err(status) => assert_refused(&status, Code::FailedPrecondition, "LEASE_HELD"),
        }
    }
    assert_eq!(winners, 1);

    // "a" crashes: once its lease expires, "b" gets it, and "a" can no longer renew.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    client
        .acquire_processing_lease(acquire("b", 5000))
        .await
        .expect("expired lease taken");
    let status = client
        .renew_processing_lease(pb::RenewProcessingLeaseRequest {
            phone: PHONE.into(),
            owner: "a".into(),
            ttl: None,
        })
        .await
        .expect_err("someone else's");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_NOT_HELD");
    assert_eq!(
        field_reasons(&status),
        vec![("owner".to_owned(), "LEASE_NOT_HELD".to_owned())]
    );
    let status = client
        .release_processing_lease(pb::ReleaseProcessingLeaseRequest {
            phone: PHONE.into(),
            owner: "a".into(),
        })
        .await
        .expect_err("someone else's");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_NOT_HELD");
}

#[tokio::test]
async fn the_holder_renews_releases_and_cannot_renew_after_expiry() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, PHONE).await;
    let first = client
        .acquire_processing_lease(acquire("a", 1500))
        .await
        .expect("acquired")
        .into_inner()
        .lease
        .expect("lease");
    let renewed = client
        .renew_processing_lease(pb::RenewProcessingLeaseRequest {
            phone: PHONE.into(),
            owner: "a".into(),
            ttl: duration_ms(1500),
        })
        .await
        .expect("renewed")
        .into_inner()
        .lease
        .expect("lease");
    let at = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(at(&renewed.expire_time) > at(&first.expire_time));
    assert_eq!(at(&renewed.acquire_time), at(&first.acquire_time));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let status = client
        .renew_processing_lease(pb::RenewProcessingLeaseRequest {
            phone: PHONE.into(),
            owner: "a".into(),
            ttl: None,
        })
        .await
        .expect_err("expired");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_EXPIRED");
    let release = |owner: &str| pb::ReleaseProcessingLeaseRequest {
        phone: PHONE.into(),
        owner: owner.into(),
    };
    assert!(
        !client
            .release_processing_lease(release("a"))
            .await
            .expect("nothing to release")
            .into_inner()
            .released
    );
    client
        .acquire_processing_lease(acquire("a", 5000))
        .await
        .expect("acquired");
    assert!(
        client
            .release_processing_lease(release("a"))
            .await
            .expect("released")
            .into_inner()
            .released
    );
    client
        .acquire_processing_lease(acquire("b", 5000))
        .await
        .expect("free again");

    let status = client
        .acquire_processing_lease(pb::AcquireProcessingLeaseRequest {
            phone: PHONE.into(),
            owner: String::new(),
            ttl: duration_ms(-1),
        })
        .await
        .expect_err("bad");
    assert_eq!(
        field_reasons(&status),
        vec![
            ("owner".to_owned(), "REQUIRED".to_owned()),
            ("ttl".to_owned(), "INVALID_DURATION".to_owned())
        ]
    );
    let status = client
        .acquire_processing_lease(pb::AcquireProcessingLeaseRequest {
            phone: "573000000000".into(),
            owner: "a".into(),
            ttl: None,
        })
        .await
        .expect_err("unknown");
    assert_refused(&status, Code::NotFound, "CONTACT_NOT_FOUND");
}

#[tokio::test]
async fn pending_images_queue_in_order_and_leave_up_to_an_id() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, PHONE).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let image = client
            .add_pending_image(pb::AddPendingImageRequest {
                phone: PHONE.into(),
                image_ref: format!("media-{i}"),
                caption: "foto".into(),
                ..Default::default()
            })
            .await
            .expect("added")
            .into_inner()
            .image
            .expect("image");
        ids.push(image.id);
    }
    let list = || pb::ListPendingImagesRequest {
        phone: PHONE.into(),
    };
    let queued = client
        .list_pending_images(list())
        .await
        .expect("listed")
        .into_inner()
        .images;
    assert_eq!(
        queued
            .iter()
            .map(|i| i.image_ref.as_str())
            .collect::<Vec<_>>(),
        vec!["media-0", "media-1", "media-2"]
    );
    let removed = client
        .remove_pending_images(pb::RemovePendingImagesRequest {
            phone: PHONE.into(),
            up_to_id: ids[1],
        })
        .await
        .expect("removed")
        .into_inner();
    assert_eq!(removed.removed, 2);
    let left = client
        .list_pending_images(list())
        .await
        .expect("listed")
        .into_inner()
        .images;
    assert_eq!(left.iter().map(|i| i.id).collect::<Vec<_>>(), vec![ids[2]]);

    let status = client
        .add_pending_image(pb::AddPendingImageRequest {
            phone: PHONE.into(),
            image_ref: String::new(),
            caption: "c".repeat(5000),
            ..Default::default()
        })
        .await
        .expect_err("bad");
    assert_eq!(
        field_reasons(&status),
        vec![
            ("image_ref".to_owned(), "REQUIRED".to_owned()),
            ("caption".to_owned(), "TOO_LONG".to_owned())
        ]
    );
    let status = client
        .remove_pending_images(pb::RemovePendingImagesRequest {
            phone: PHONE.into(),
            up_to_id: 0,
        })
        .await
        .expect_err("bad");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    let status = client
        .list_pending_images(pb::ListPendingImagesRequest {
            phone: "573000000000".into(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&status, Code::NotFound, "CONTACT_NOT_FOUND");
}

#[tokio::test]
async fn typing_is_stamped_at_most_once_per_interval() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, PHONE).await;
    let typing = |ms| pb::RecordTypingRequest {
        phone: PHONE.into(),
        min_interval: duration_ms(ms),
    };
    let first = client
        .record_typing(typing(1500))
        .await
        .expect("stamped")
        .into_inner();
    assert!(first.logged);
    let second = client
        .record_typing(typing(1500))
        .await
        .expect("answered")
        .into_inner();
    assert!(!second.logged);
    assert_eq!(second.last_logged_time, first.last_logged_time);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        client
            .record_typing(typing(1500))
            .await
            .expect("stamped")
            .into_inner()
            .logged
    );
    let status = client.record_typing(typing(-1)).await.expect_err("bad");
    assert_refused(&status, Code::InvalidArgument, "INVALID_DURATION");
}

#[tokio::test]
async fn the_cleanup_removes_what_expired_and_never_an_unacknowledged_message() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, PHONE).await;
    contact(&mut client, "573007654321").await;
    client
        .set_context(pb::SetContextRequest {
            phone: PHONE.into(),
            context: "old".into(),
            ttl: duration_ms(100),
        })
        .await
        .expect("set");
    client
        .set_chat_info(pb::SetChatInfoRequest {
            phone: PHONE.into(),
            info: "{}".into(),
            ttl: duration_ms(100),
        })
        .await
        .expect("set");
    client
        .set_context(pb::SetContextRequest {
            phone: "573007654321".into(),
            context: "live".into(),
            ttl: None,
        })
        .await
        .expect("set");
    client
        .acquire_processing_lease(acquire("crashed", 100))
        .await
        .expect("acquired");
    // One buffer acknowledged (empty), one taken and never acknowledged, one never taken.
    for (phone, body) in [(PHONE, "acked"), ("573007654321", "leased")] {
        client
            .append_message(pb::AppendMessageRequest {
                phone: phone.into(),
                body: body.into(),
                debounce: duration_ms(0),
                ..Default::default()
            })
            .await
            .expect("appended");
    }
    let mut taken = Vec::new();
    while let Some(buffer) = client
        .take_ready_buffer(pb::TakeReadyBufferRequest {
            worker: "w".into(),
            lease: duration_ms(100),
        })
        .await
        .expect("took")
        .into_inner()
        .buffer
    {
        taken.push(buffer);
    }
    assert_eq!(taken.len(), 2);
    let acked = taken.iter().find(|b| b.phone == PHONE).expect("taken");
    client
        .ack_buffer(pb::AckBufferRequest {
            phone: PHONE.into(),
            lease_id: acked.lease_id.clone(),
        })
        .await
        .expect("acked");
    // Make the acknowledged buffer idle past its retention, as an hour would.
    sqlx::query("UPDATE buffers SET last_message_at = now() - interval '2 hours' WHERE phone = $1")
        .bind(PHONE)
        .execute(&service.pool)
        .await
        .expect("aged");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let removed = client
        .run_cleanup(pb::RunCleanupRequest {})
        .await
        .expect("cleaned")
        .into_inner()
        .removed
        .expect("counts");
    assert_eq!(
        (
            removed.context_entries,
            removed.chat_info_entries,
            removed.acknowledged_buffers,
            removed.expired_leases
        ),
        (1, 1, 1, 1)
    );
    let rendered = phoenix_runtime::metrics::global().render();
    assert!(
        rendered.contains("phoenix_conversations_cleaned_total{kind=\"context_entry\"}"),
        "{rendered}"
    );
    // The expired, unacknowledged lease's message is still there and is handed out again.
    let again = client
        .take_ready_buffer(pb::TakeReadyBufferRequest {
            worker: "w2".into(),
            lease: None,
        })
        .await
        .expect("took")
        .into_inner()
        .buffer
        .expect("returned");
    assert_eq!(
        again
            .messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        vec!["leased"]
    );
    let live = client
        .get_context(pb::GetContextRequest {
            phone: "573007654321".into(),
            refresh: false,
        })
        .await
        .expect("read")
        .into_inner();
    assert!(live.found);
    let second = client
        .run_cleanup(pb::RunCleanupRequest {})
        .await
        .expect("cleaned")
        .into_inner()
        .removed
        .expect("counts");
    assert_eq!(second, pb::CleanupCounts::default());
    // The acknowledged buffer's contact can buffer again.
    let fresh = client
        .append_message(pb::AppendMessageRequest {
            phone: PHONE.into(),
            body: "otra vez".into(),
            ..Default::default()
        })
        .await
        .expect("appended")
        .into_inner();
    assert_eq!(fresh.sequence, 1);
}

#[tokio::test]
async fn contact_thread_and_buffer_changes_stream_in_order_and_resume_after_a_position() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    client
        .save_thread(pb::SaveThreadRequest {
            phone: PHONE.into(),
            thread_id: "thread_a".into(),
            user_name: "Juan".into(),
            ..Default::default()
        })
        .await
        .expect("saved");
    client
        .append_message(pb::AppendMessageRequest {
            phone: PHONE.into(),
            body: "hola".into(),
            debounce: duration_ms(0),
            ..Default::default()
        })
        .await
        .expect("appended");
    let taken = client
        .take_ready_buffer(pb::TakeReadyBufferRequest {
            worker: "w".into(),
            lease: None,
        })
        .await
        .expect("took")
        .into_inner()
        .buffer
        .expect("buffer");
    client
        .ack_buffer(pb::AckBufferRequest {
            phone: PHONE.into(),
            lease_id: taken.lease_id.clone(),
        })
        .await
        .expect("acked");

    let mut stream = client
        .subscribe(pb::SubscribeRequest { after_position: 0 })
        .await
        .expect("subscribed")
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("in time")
            .expect("an event")
            .expect("ok");
        seen.push(item);
    }
    let types: Vec<&str> = seen
        .iter()
        .map(|s| s.event.as_ref().map_or("", |e| e.r#type.as_str()))
        .collect();
    assert_eq!(
        types,
        vec![
            "phoenix.conversations.v1.ContactSaved",
            "phoenix.conversations.v1.ThreadSaved",
            "phoenix.conversations.v1.BufferTaken",
            "phoenix.conversations.v1.BufferAcknowledged",
        ]
    );
    let positions: Vec<i64> = seen.iter().map(|s| s.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4]);
    let versions: Vec<i64> = seen
        .iter()
        .map(|s| s.event.as_ref().map_or(0, |e| e.aggregate_version))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    let event = seen[3].event.as_ref().expect("event");
    assert_eq!(event.aggregate_type, "contact");
    assert_eq!(event.aggregate_id, PHONE);
    let payload = pb::BufferAcknowledged::decode(
        event
            .payload
            .as_ref()
            .map_or(&[][..], |p| p.value.as_slice()),
    )
    .expect("decodes");
    assert_eq!((payload.removed, payload.remaining), (1, 0));

    // Following: a change after the catch-up arrives, and a resume after 2 starts at 3.
    client
        .save_contact(pb::SaveContactRequest {
            phone: PHONE.into(),
            name: "Juan Pérez".into(),
            ..Default::default()
        })
        .await
        .expect("saved");
    let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("in time")
        .expect("event")
        .expect("ok");
    assert_eq!(next.position, 5);
    let mut resumed = client
        .subscribe(pb::SubscribeRequest { after_position: 2 })
        .await
        .expect("subscribed")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await
        .expect("in time")
        .expect("event")
        .expect("ok");
    assert_eq!(first.position, 3);

    let status = client
        .subscribe(pb::SubscribeRequest { after_position: 99 })
        .await
        .expect_err("no such position");
    assert_refused(&status, Code::NotFound, "POSITION_NOT_FOUND");
    let status = client
        .subscribe(pb::SubscribeRequest { after_position: -1 })
        .await
        .expect_err("bad");
    assert_refused(&status, Code::InvalidArgument, "INVALID_POSITION");
}

#[tokio::test]
async fn a_retried_add_with_its_idempotency_key_queues_one_image() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, PHONE).await;
    let add = |image: &str| pb::AddPendingImageRequest {
        phone: PHONE.into(),
        image_ref: image.into(),
        caption: String::new(),
        idempotency_key: "img-1".into(),
    };
    let first = client
        .add_pending_image(add("media-1"))
        .await
        .expect("added")
        .into_inner();
    let retry = client
        .add_pending_image(add("media-1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(retry, first);
    let queued = client
        .list_pending_images(pb::ListPendingImagesRequest {
            phone: PHONE.into(),
        })
        .await
        .expect("listed")
        .into_inner()
        .images;
    assert_eq!(queued.len(), 1);
    let status = client
        .add_pending_image(add("media-2"))
        .await
        .expect_err("reused");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    let status = client
        .add_pending_image(pb::AddPendingImageRequest {
            idempotency_key: "has space".into(),
            ..add("m")
        })
        .await
        .expect_err("bad key");
    assert_refused(&status, Code::InvalidArgument, "INVALID_IDEMPOTENCY_KEY");
}
