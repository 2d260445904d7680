//! Debounced message buffers and their leases through the gRPC API: readiness, one worker per
//! buffer, no message lost or reordered whatever the concurrency or crashes.

use std::collections::BTreeMap;
use std::time::Duration;

use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_client::ConversationsServiceClient;
use phoenix_testkit::{assert_refused, field_reasons, spawn};
use tonic::Code;
use tonic::transport::Channel;

type Client = ConversationsServiceClient<Channel>;

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

/// Appends `body` with a debounce of `debounce_ms`, a maximum wait of 60 s and 1,000 messages.
async fn append(
    client: &mut Client,
    phone: &str,
    body: &str,
    debounce_ms: i64,
) -> pb::AppendMessageResponse {
    client
        .append_message(pb::AppendMessageRequest {
            phone: phone.into(),
            body: body.into(),
            debounce: duration_ms(debounce_ms),
            max_wait: duration_ms(60_000),
            max_messages: 1000,
            ..Default::default()
        })
        .await
        .expect("appended")
        .into_inner()
}

async fn take(client: &mut Client, worker: &str, lease_ms: i64) -> Option<pb::LeasedBuffer> {
    let answer = client
        .take_ready_buffer(pb::TakeReadyBufferRequest {
            worker: worker.into(),
            lease: duration_ms(lease_ms),
        })
        .await
        .expect("took")
        .into_inner();
    assert_eq!(answer.found, answer.buffer.is_some());
    answer.buffer
}

async fn ack(
    client: &mut Client,
    buffer: &pb::LeasedBuffer,
) -> Result<pb::AckBufferResponse, tonic::Status> {
    client
        .ack_buffer(pb::AckBufferRequest {
            phone: buffer.phone.clone(),
            lease_id: buffer.lease_id.clone(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn bodies(buffer: &pb::LeasedBuffer) -> Vec<String> {
    buffer.messages.iter().map(|m| m.body.clone()).collect()
}

#[tokio::test]
async fn a_buffer_is_ready_after_the_debounce_window_and_each_message_resets_it() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    assert_eq!(
        append(&mut client, "573001234567", "hola", 1000)
            .await
            .sequence,
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        take(&mut client, "w1", 5000).await.is_none(),
        "the window has not passed"
    );
    let second = append(&mut client, "573001234567", "¿hay cupo?", 1000).await;
    assert_eq!((second.sequence, second.buffered), (2, 2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        take(&mut client, "w1", 5000).await.is_none(),
        "the second message reset the timer"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let taken = take(&mut client, "w1", 5000).await.expect("ready");
    assert_eq!(bodies(&taken), vec!["hola", "¿hay cupo?"]);
    assert_eq!(
        taken
            .messages
            .iter()
            .map(|m| m.sequence)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    let done = ack(&mut client, &taken).await.expect("acked");
    assert_eq!((done.removed, done.remaining), (2, 0));
    assert!(take(&mut client, "w1", 5000).await.is_none());
}

#[tokio::test]
async fn the_maximum_count_and_the_maximum_wait_make_a_buffer_ready() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    contact(&mut client, "573007654321").await;
    for i in 0..3 {
        client
            .append_message(pb::AppendMessageRequest {
                phone: "573001234567".into(),
                body: format!("m{i}"),
                debounce: duration_ms(600_000),
                max_messages: 3,
                ..Default::default()
            })
            .await
            .expect("appended");
    }
    let taken = take(&mut client, "w1", 5000).await.expect("full");
    assert_eq!(bodies(&taken), vec!["m0", "m1", "m2"]);

    client
        .append_message(pb::AppendMessageRequest {
            phone: "573007654321".into(),
            body: "espera".into(),
            debounce: duration_ms(600_000),
            max_wait: duration_ms(1000),
            ..Default::default()
        })
        .await
        .expect("appended");
    assert!(take(&mut client, "w1", 5000).await.is_none());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let waited = take(&mut client, "w1", 5000)
        .await
        .expect("waited long enough");
    assert_eq!(waited.phone, "573007654321");
}

#[tokio::test]
async fn two_workers_never_take_the_same_buffer() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let contacts: Vec<String> = (0..40).map(|i| format!("5730000{i:05}")).collect();
    for phone in &contacts {
        contact(&mut client, phone).await;
        for m in 0..3 {
            append(&mut client, phone, &format!("{phone}-{m}"), 0).await;
        }
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let mut client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            for _ in 0..10 {
                if let Some(buffer) = take(&mut client, &format!("worker-{w}"), 30_000).await {
                    taken.push(buffer);
                }
            }
            taken
        }));
    }
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    let mut all = Vec::new();
    for worker in workers {
        for buffer in worker.await.expect("joined") {
            *holders.entry(buffer.phone.clone()).or_default() += 1;
            all.push(buffer);
        }
    }
    assert!(
        holders.values().all(|&n| n == 1),
        "a buffer was taken twice: {holders:?}"
    );
    // Whatever was not taken under contention is still there for a later take.
    while let Some(buffer) = take(&mut client, "sweeper", 30_000).await {
        assert!(
            !holders.contains_key(&buffer.phone),
            "{} taken twice",
            buffer.phone
        );
        holders.insert(buffer.phone.clone(), 1);
        all.push(buffer);
    }
    assert_eq!(holders.len(), contacts.len());
    for buffer in &all {
        let expected: Vec<String> = (0..3).map(|m| format!("{}-{m}", buffer.phone)).collect();
        assert_eq!(bodies(buffer), expected);
        ack(&mut client, buffer).await.expect("acked");
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM buffered_messages")
        .fetch_one(&service.pool)
        .await
        .expect("counted");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_worker_killed_after_taking_loses_no_message() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    for body in ["uno", "dos", "tres"] {
        append(&mut client, "573001234567", body, 0).await;
    }
    // The first worker takes the buffer and dies without acknowledging it.
    let lost = take(&mut client, "doomed", 1500).await.expect("taken");
    assert_eq!(bodies(&lost), vec!["uno", "dos", "tres"]);
    append(&mut client, "573001234567", "cuatro", 0).await;
    assert!(
        take(&mut client, "rescuer", 5000).await.is_none(),
        "the lease still holds it"
    );

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let rescued = take(&mut client, "rescuer", 5000)
        .await
        .expect("the lease expired");
    assert_eq!(bodies(&rescued), vec!["uno", "dos", "tres", "cuatro"]);
    assert_eq!(rescued.redeliveries, 1);
    assert_ne!(rescued.lease_id, lost.lease_id);

    // The dead worker's acknowledgement, arriving late, removes nothing.
    let status = ack(&mut client, &lost).await.expect_err("not held");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_NOT_HELD");
    assert_eq!(
        field_reasons(&status),
        vec![("lease_id".to_owned(), "LEASE_NOT_HELD".to_owned())]
    );
    let done = ack(&mut client, &rescued).await.expect("acked");
    assert_eq!((done.removed, done.remaining), (4, 0));
}

#[tokio::test]
async fn an_ack_after_the_lease_expired_is_refused_and_the_messages_return() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    append(&mut client, "573001234567", "hola", 0).await;
    let taken = take(&mut client, "slow", 300).await.expect("taken");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = ack(&mut client, &taken).await.expect_err("expired");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_EXPIRED");
    let again = take(&mut client, "next", 5000).await.expect("returned");
    assert_eq!(bodies(&again), vec!["hola"]);

    // A lease nobody was given, and a malformed one.
    let status = client
        .ack_buffer(pb::AckBufferRequest {
            phone: "573001234567".into(),
            lease_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("not held");
    assert_refused(&status, Code::FailedPrecondition, "LEASE_NOT_HELD");
    let status = client
        .ack_buffer(pb::AckBufferRequest {
            phone: "nope".into(),
            lease_id: "nope".into(),
        })
        .await
        .expect_err("malformed");
    assert_refused(&status, Code::InvalidArgument, "INVALID_PHONE");
    assert_eq!(
        field_reasons(&status),
        vec![
            ("phone".to_owned(), "INVALID_PHONE".to_owned()),
            ("lease_id".to_owned(), "INVALID_ID".to_owned())
        ]
    );
}

#[tokio::test]
async fn messages_appended_during_a_lease_survive_its_ack() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    append(&mut client, "573001234567", "antes", 0).await;
    let taken = take(&mut client, "w1", 10_000).await.expect("taken");
    let during = append(&mut client, "573001234567", "durante", 0).await;
    assert_eq!(during.sequence, 2);

    let done = ack(&mut client, &taken).await.expect("acked");
    assert_eq!((done.removed, done.remaining), (1, 1));
    // The same acknowledgement again (a retry) answers the same and removes nothing more.
    let replay = ack(&mut client, &taken).await.expect("replayed");
    assert_eq!((replay.removed, replay.remaining), (1, 1));

    let next = take(&mut client, "w2", 10_000)
        .await
        .expect("the new message is ready");
    assert_eq!(bodies(&next), vec!["durante"]);
    assert_eq!(next.messages[0].sequence, 2);
}

#[tokio::test]
async fn concurrent_appends_and_workers_deliver_every_message_once_in_order() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let phones: Vec<String> = (0..4).map(|i| format!("5730011{i:05}")).collect();
    for phone in &phones {
        contact(&mut client, phone).await;
    }
    let per_phone = 30;
    let mut writers = Vec::new();
    for phone in phones.clone() {
        let mut client = client.clone();
        writers.push(tokio::spawn(async move {
            for m in 0..per_phone {
                append(&mut client, &phone, &format!("{m}"), 0).await;
            }
        }));
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut client = client.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let mut delivered: Vec<(String, Vec<i64>, Vec<String>)> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                match take(&mut client, &format!("w{w}"), 30_000).await {
                    Some(buffer) => {
                        ack(&mut client, &buffer).await.expect("acked");
                        delivered.push((
                            buffer.phone.clone(),
                            buffer.messages.iter().map(|m| m.sequence).collect(),
                            bodies(&buffer),
                        ));
                    }
                    None if finished => return delivered,
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("joined");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut by_phone: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for worker in workers {
        for (phone, sequences, bodies) in worker.await.expect("joined") {
            by_phone
                .entry(phone)
                .or_default()
                .extend(sequences.into_iter().zip(bodies));
        }
    }
    for phone in &phones {
        let mut got = by_phone.remove(phone).unwrap_or_default();
        got.sort();
        let expected: Vec<(i64, String)> = (0..per_phone)
            .map(|m| (i64::from(m) + 1, m.to_string()))
            .collect();
        assert_eq!(
            got, expected,
            "{phone}: every message once, its sequence in append order"
        );
    }
}

#[tokio::test]
async fn a_retried_append_with_the_same_message_id_adds_nothing() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    let send = || pb::AppendMessageRequest {
        phone: "573001234567".into(),
        body: "hola".into(),
        message_id: "wamid.ABC".into(),
        ..Default::default()
    };
    let first = client
        .append_message(send())
        .await
        .expect("appended")
        .into_inner();
    let retry = client
        .append_message(send())
        .await
        .expect("replayed")
        .into_inner();
    assert!(!first.replayed);
    assert!(retry.replayed);
    assert_eq!((retry.sequence, retry.buffered), (first.sequence, 1));
}

#[tokio::test]
async fn bad_appends_and_takes_are_refused_and_write_nothing() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    let status = client
        .append_message(pb::AppendMessageRequest {
            phone: "573001234567".into(),
            body: "x".repeat(16_385),
            debounce: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            max_wait: Some(prost_types::Duration {
                seconds: 99_999,
                nanos: 0,
            }),
            max_messages: -3,
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "MESSAGE_TOO_LONG");
    assert_eq!(
        field_reasons(&status),
        vec![
            ("body".to_owned(), "MESSAGE_TOO_LONG".to_owned()),
            ("debounce".to_owned(), "INVALID_DURATION".to_owned()),
            ("max_wait".to_owned(), "INVALID_DURATION".to_owned()),
            ("max_messages".to_owned(), "OUT_OF_RANGE".to_owned()),
        ]
    );
    let status = client
        .append_message(pb::AppendMessageRequest {
            phone: "573001234567".into(),
            body: "a\u{0}b".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "CONTROL_CHARACTER");
    let status = client
        .append_message(pb::AppendMessageRequest {
            phone: "573000000000".into(),
            body: "hola".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown contact");
    assert_refused(&status, Code::NotFound, "CONTACT_NOT_FOUND");
    let status = client
        .take_ready_buffer(pb::TakeReadyBufferRequest {
            worker: String::new(),
            lease: duration_ms(7_200_000),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
    assert_eq!(
        field_reasons(&status),
        vec![
            ("worker".to_owned(), "REQUIRED".to_owned()),
            ("lease".to_owned(), "INVALID_DURATION".to_owned())
        ]
    );
    for table in ["buffers", "buffered_messages"] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&service.pool)
            .await
            .expect("counted");
        assert_eq!(count, 0, "{table}");
    }
}

#[tokio::test]
async fn the_auditor_passes_after_concurrent_work_and_finds_a_corrupted_buffer() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    for phone in ["573001234567", "573007654321"] {
        contact(&mut client, phone).await;
        for body in ["uno", "dos"] {
            append(&mut client, phone, body, 0).await;
        }
    }
    let taken = take(&mut client, "w", 10_000).await.expect("taken");
    append(&mut client, &taken.phone, "tres", 0).await;
    ack(&mut client, &taken).await.expect("acked");
    let audit = phoenix_conversations::spec().audit.expect("an auditor");
    let report = audit(service.pool.clone()).await.expect("audited");
    assert_eq!(report.violations, 0, "{:?}", report.lines);

    sqlx::query(
        "UPDATE buffers SET message_count = message_count + 1 WHERE phone = '573007654321'",
    )
    .execute(&service.pool)
    .await
    .expect("corrupted");
    let report = audit(service.pool.clone()).await.expect("audited");
    assert_eq!(report.violations, 1, "{:?}", report.lines);
    assert!(
        report.lines.iter().any(|l| l.contains("573007654321")),
        "{:?}",
        report.lines
    );
}
