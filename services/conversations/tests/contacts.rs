//! Contacts, threads, caches with TTL and user states through the gRPC API, against a real
//! server and database.

use std::time::Duration;

use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_client::ConversationsServiceClient;
use phoenix_testkit::{assert_refused, field_reasons, spawn};
use tonic::Code;
use tonic::transport::Channel;

type Client = ConversationsServiceClient<Channel>;

fn duration(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos })
}

async fn contact(client: &mut Client, phone: &str) -> pb::Contact {
    client
        .save_contact(pb::SaveContactRequest {
            phone: phone.into(),
            name: "Juan Pérez".into(),
            labels: vec!["Potencial".into()],
            ..Default::default()
        })
        .await
        .expect("saved")
        .into_inner()
        .contact
        .expect("contact")
}

#[tokio::test]
async fn a_contact_saved_with_formatting_is_found_by_its_digits() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let saved = contact(&mut client, "+57 300 123-4567").await;
    assert_eq!(saved.phone, "573001234567");
    assert_eq!(saved.chat_id, "573001234567@s.whatsapp.net");
    assert_eq!(saved.version, 1);

    let found = client
        .get_contact(pb::GetContactRequest {
            phone: "573001234567@s.whatsapp.net".into(),
        })
        .await
        .expect("found")
        .into_inner();
    assert_eq!(found.contact, Some(saved.clone()));
    assert_eq!(found.active_thread, None);

    // The same profile again changes nothing.
    let again = client
        .save_contact(pb::SaveContactRequest {
            phone: "573001234567".into(),
            name: "Juan Pérez".into(),
            labels: vec!["Potencial".into()],
            ..Default::default()
        })
        .await
        .expect("saved")
        .into_inner();
    assert!(!again.changed);
    assert_eq!(again.contact.expect("contact").version, 1);
}

#[tokio::test]
async fn save_thread_keeps_one_active_thread_per_contact() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let save = |thread: &str| pb::SaveThreadRequest {
        phone: "573001234567".into(),
        thread_id: thread.into(),
        chat_id: "573001234567@s.whatsapp.net".into(),
        user_name: "Juan".into(),
    };
    let first = client
        .save_thread(save("thread_a"))
        .await
        .expect("saved")
        .into_inner();
    assert_eq!(first.contact.expect("contact").name, "Juan");
    client.save_thread(save("thread_b")).await.expect("saved");

    let thread = client
        .get_thread(pb::GetThreadRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect("found")
        .into_inner()
        .thread
        .expect("thread");
    assert_eq!(thread.thread_id, "thread_b");
    assert!(thread.active);
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM threads WHERE phone = '573001234567' AND active")
            .fetch_one(&service.pool)
            .await
            .expect("counted");
    assert_eq!(active, 1);

    // The database refuses a second active thread whatever the code does.
    let broken = sqlx::query("UPDATE threads SET active = true WHERE thread_id = 'thread_a'")
        .execute(&service.pool)
        .await
        .expect_err("refused");
    assert_eq!(
        broken.as_database_error().and_then(|e| e.constraint()),
        Some("threads_one_active")
    );

    // A thread of another contact is refused, and nothing of the call is written.
    let status = client
        .save_thread(pb::SaveThreadRequest {
            phone: "573009999999".into(),
            ..save("thread_b")
        })
        .await
        .expect_err("refused");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "THREAD_OF_ANOTHER_CONTACT",
    );
    let status = client
        .get_contact(pb::GetContactRequest {
            phone: "573009999999".into(),
        })
        .await
        .expect_err("not created");
    assert_refused(&status, Code::NotFound, "CONTACT_NOT_FOUND");
}

#[tokio::test]
async fn get_thread_says_which_is_missing() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let status = client
        .get_thread(pb::GetThreadRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect_err("none");
    assert_refused(&status, Code::NotFound, "CONTACT_NOT_FOUND");
    contact(&mut client, "573001234567").await;
    let status = client
        .get_thread(pb::GetThreadRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect_err("none");
    assert_refused(&status, Code::NotFound, "THREAD_NOT_FOUND");
}

#[tokio::test]
async fn bad_contacts_are_refused_with_every_field() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let status = client
        .save_contact(pb::SaveContactRequest {
            phone: "57-300-abc".into(),
            name: "n".repeat(300),
            chat_id: "has space".into(),
            labels: vec![String::new()],
            directory_user_id: "not-a-uuid".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_PHONE");
    assert_eq!(
        field_reasons(&status),
        vec![
            ("phone".to_owned(), "INVALID_PHONE".to_owned()),
            ("name".to_owned(), "TOO_LONG".to_owned()),
            ("chat_id".to_owned(), "INVALID_CHAT_ID".to_owned()),
            ("labels[0]".to_owned(), "REQUIRED".to_owned()),
            ("directory_user_id".to_owned(), "INVALID_ID".to_owned()),
        ]
    );
    assert!(status.message().len() < 600, "{}", status.message());
    let status = client
        .save_contact(pb::SaveContactRequest {
            phone: "573001234567".into(),
            chat_id: "has space".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_CHAT_ID");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&service.pool)
        .await
        .expect("counted");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_cache_entry_is_never_answered_once_expired() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    let entry = client
        .set_context(pb::SetContextRequest {
            phone: "573001234567".into(),
            context: "habla de Cartagena".into(),
            ttl: duration(1, 500_000_000),
        })
        .await
        .expect("set")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.value, "habla de Cartagena");
    let get = |refresh| pb::GetContextRequest {
        phone: "573001234567".into(),
        refresh,
    };
    let live = client
        .get_context(get(false))
        .await
        .expect("read")
        .into_inner();
    assert!(live.found);
    assert_eq!(live.entry.expect("entry").value, "habla de Cartagena");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let gone = client
        .get_context(get(false))
        .await
        .expect("read")
        .into_inner();
    assert!(!gone.found);
    assert_eq!(gone.entry, None);
    // Refreshing cannot bring an expired entry back.
    assert!(
        !client
            .get_context(get(true))
            .await
            .expect("read")
            .into_inner()
            .found
    );
}

#[tokio::test]
async fn a_refreshing_read_extends_the_entry_by_its_ttl() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    let set = client
        .set_chat_info(pb::SetChatInfoRequest {
            phone: "573001234567".into(),
            info: r#"{"labels":["VIP"]}"#.into(),
            ttl: duration(2, 0),
        })
        .await
        .expect("set")
        .into_inner()
        .entry
        .expect("entry");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let read = client
        .get_chat_info(pb::GetChatInfoRequest {
            phone: "573001234567".into(),
            refresh: true,
        })
        .await
        .expect("read")
        .into_inner()
        .entry
        .expect("entry");
    let expiry = |e: &pb::CacheEntry| e.expire_time.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(expiry(&read) > expiry(&set), "{read:?} vs {set:?}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Past the first expiry, alive thanks to the refresh.
    let still = client
        .get_chat_info(pb::GetChatInfoRequest {
            phone: "573001234567".into(),
            refresh: false,
        })
        .await
        .expect("read")
        .into_inner();
    assert!(still.found);
}

#[tokio::test]
async fn default_ttls_are_the_seeds_and_bad_ttls_or_sizes_are_refused() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    let entry = client
        .set_context(pb::SetContextRequest {
            phone: "573001234567".into(),
            context: "x".into(),
            ttl: None,
        })
        .await
        .expect("set")
        .into_inner()
        .entry
        .expect("entry");
    let span = |e: &pb::CacheEntry| {
        e.expire_time.as_ref().map_or(0, |t| t.seconds)
            - e.write_time.as_ref().map_or(0, |t| t.seconds)
    };
    assert_eq!(span(&entry), 3600);
    let info = client
        .set_chat_info(pb::SetChatInfoRequest {
            phone: "573001234567".into(),
            info: "{}".into(),
            ttl: None,
        })
        .await
        .expect("set")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(span(&info), 300);

    for ttl in [
        duration(-5, 0),
        duration(0, 0),
        duration(8 * 24 * 3600, 0),
        duration(i64::MAX, 0),
    ] {
        let status = client
            .set_context(pb::SetContextRequest {
                phone: "573001234567".into(),
                context: "x".into(),
                ttl,
            })
            .await
            .expect_err("refused");
        assert_refused(&status, Code::InvalidArgument, "INVALID_DURATION");
        assert_eq!(
            field_reasons(&status),
            vec![("ttl".to_owned(), "INVALID_DURATION".to_owned())]
        );
    }
    let status = client
        .set_context(pb::SetContextRequest {
            phone: "573001234567".into(),
            context: "é".repeat(100_001),
            ttl: None,
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "TOO_LONG");
    assert!(status.message().len() < 300);
    // The refused writes left the first entry as it was.
    let kept = client
        .get_context(pb::GetContextRequest {
            phone: "573001234567".into(),
            refresh: false,
        })
        .await
        .expect("read")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(kept.value, "x");

    let status = client
        .set_context(pb::SetContextRequest {
            phone: "573000000000".into(),
            context: "x".into(),
            ttl: None,
        })
        .await
        .expect_err("unknown");
    assert_refused(&status, Code::NotFound, "CONTACT_NOT_FOUND");
}

#[tokio::test]
async fn concurrent_partial_updates_of_a_user_state_are_all_kept() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = Client::new(service.channel.clone());
    contact(&mut client, "573001234567").await;
    let empty = client
        .get_user_state(pb::GetUserStateRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect("read")
        .into_inner()
        .state
        .expect("state");
    assert_eq!(empty.update_time, None);

    let mut calls = Vec::new();
    for i in 0..20 {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            let mut set = prost_types::Struct::default();
            set.fields.insert(
                format!("key{i}"),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::NumberValue(f64::from(i))),
                },
            );
            client
                .update_user_state(pb::UpdateUserStateRequest {
                    phone: "573001234567".into(),
                    set_preferences: Some(set),
                    last_voice_input_time: (i == 7).then_some(prost_types::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                })
                .await
                .expect("updated");
        }));
    }
    for call in calls {
        call.await.expect("joined");
    }
    let state = client
        .get_user_state(pb::GetUserStateRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect("read")
        .into_inner()
        .state
        .expect("state");
    assert_eq!(state.preferences.expect("preferences").fields.len(), 20);
    assert_eq!(
        state.last_voice_input_time.map(|t| t.seconds),
        Some(1_700_000_000)
    );

    let removed = client
        .update_user_state(pb::UpdateUserStateRequest {
            phone: "573001234567".into(),
            remove_preferences: vec!["key3".into()],
            ..Default::default()
        })
        .await
        .expect("updated")
        .into_inner()
        .state
        .expect("state");
    let preferences = removed.preferences.expect("preferences");
    assert_eq!(preferences.fields.len(), 19);
    assert!(!preferences.fields.contains_key("key3"));
    assert_eq!(
        removed.last_voice_input_time.map(|t| t.seconds),
        Some(1_700_000_000)
    );

    let status = client
        .update_user_state(pb::UpdateUserStateRequest {
            phone: "573001234567".into(),
            last_voice_input_time: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            clear_last_voice_input: true,
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "CONFLICTING_FIELDS");
}

#[tokio::test]
async fn a_sub_microsecond_ttl_and_a_nested_nul_are_refused_with_their_field_not_internal() {
    let service = spawn(phoenix_conversations::spec()).await;
    let mut client = ConversationsServiceClient::new(service.channel.clone());
    contact(&mut client, "573001234567").await;

    // 1 ns is positive but the database's microsecond would store a zero TTL.
    let status = client
        .set_context(pb::SetContextRequest {
            phone: "573001234567".into(),
            context: "x".into(),
            ttl: duration(0, 1),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_DURATION");
    assert_eq!(
        field_reasons(&status),
        vec![("ttl".to_owned(), "INVALID_DURATION".to_owned())]
    );
    let status = client
        .acquire_processing_lease(pb::AcquireProcessingLeaseRequest {
            phone: "573001234567".into(),
            owner: "bot-1".into(),
            ttl: duration(0, 999),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_DURATION");
    let found = client
        .get_context(pb::GetContextRequest {
            phone: "573001234567".into(),
            refresh: false,
        })
        .await
        .expect("read")
        .into_inner();
    assert!(!found.found, "nothing was written");

    let nested = prost_types::Struct {
        fields: [(
            "k".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StructValue(prost_types::Struct {
                    fields: [(
                        "x".to_owned(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue("a\0b".into())),
                        },
                    )]
                    .into_iter()
                    .collect(),
                })),
            },
        )]
        .into_iter()
        .collect(),
    };
    let status = client
        .update_user_state(pb::UpdateUserStateRequest {
            phone: "573001234567".into(),
            set_preferences: Some(nested),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "NUL_CHARACTER");
    assert_eq!(
        field_reasons(&status),
        vec![("set_preferences.k.x".to_owned(), "NUL_CHARACTER".to_owned())]
    );
    let state = client
        .get_user_state(pb::GetUserStateRequest {
            phone: "573001234567".into(),
        })
        .await
        .expect("read")
        .into_inner()
        .state
        .expect("state");
    assert!(state.update_time.is_none(), "nothing was written");
}
