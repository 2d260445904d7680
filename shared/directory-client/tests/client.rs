//! The reference client against a real directory: batching, single flight, negative caching,
//! and the outage policies, tested by stopping the directory.

use std::time::Duration;

use phoenix_directory_client::{ClientSettings, DirectoryClient, Outage};
use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_runtime::client::ClientBuilder;
use phoenix_testkit::{TestService, directory_user, spawn};
use uuid::Uuid;

fn client(service: &TestService, settings: ClientSettings) -> DirectoryClient {
    let channel = ClientBuilder::new(service.url())
        .deadline(Duration::from_secs(2))
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy()
        .expect("channel");
    DirectoryClient::new(channel, settings)
}

async fn user(service: &TestService, email: &str) -> Uuid {
    directory_user(&service.channel, email, "Europe/Madrid")
        .await
        .parse()
        .expect("uuid")
}

async fn rename(service: &TestService, user: &pb::User, name: &str) {
    let mut renamed = user.clone();
    renamed.display_name = name.into();
    DirectoryServiceClient::new(service.channel.clone())
        .update_user(pb::UpdateUserRequest {
            user: Some(renamed),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("renamed");
}

#[tokio::test]
async fn concurrent_lookups_share_one_batch_and_unknown_ids_are_cached() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(user(&service, &format!("u{i}@example.com")).await);
    }
    let unknown = Uuid::new_v4();
    ids.push(unknown);
    let settings = ClientSettings {
        batch_window: Duration::from_millis(20),
        ..ClientSettings::default()
    };
    let resolver = client(&service, settings);
    let lookups = (0..50).map(|i| {
        let resolver = resolver.clone();
        let id = ids[i % ids.len()];
        tokio::spawn(async move { (id, resolver.user(id, Outage::Strict).await) })
    });
    for joined in futures_util::future::join_all(lookups).await {
        let (id, answer) = joined.expect("joined");
        let answer = answer.expect("resolved");
        if id == unknown {
            assert!(answer.is_none());
        } else {
            assert_eq!(answer.expect("known").id, id.to_string());
        }
    }
    let stats = resolver.user_stats();
    assert_eq!(stats.batches, 1, "{stats:?}");
    assert_eq!(stats.misses, 50, "{stats:?}");

    assert!(
        resolver
            .user(unknown, Outage::Strict)
            .await
            .expect("cached")
            .is_none()
    );
    assert!(
        resolver
            .user(ids[0], Outage::Strict)
            .await
            .expect("cached")
            .is_some()
    );
    let stats = resolver.user_stats();
    assert_eq!(
        (stats.negative_hits, stats.hits, stats.batches),
        (1, 1, 1),
        "{stats:?}"
    );

    let status = resolver
        .existing_user(unknown, Outage::Strict)
        .await
        .expect_err("unknown");
    assert_eq!(status.reason(), "USER_NOT_FOUND");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn stale_answers_come_only_under_the_stale_policy_within_its_bound_while_down() {
    let service = spawn(phoenix_directory::spec()).await;
    let id = user(&service, "stale@example.com").await;
    let settings = ClientSettings {
        ttl: Duration::from_millis(200),
        negative_ttl: Duration::from_millis(200),
        batch_window: Duration::from_millis(1),
        ..ClientSettings::default()
    };
    let resolver = client(&service, settings);
    let first = resolver
        .user(id, Outage::Strict)
        .await
        .expect("resolved")
        .expect("known");
    assert_eq!(first.display_name, "Test User");

    // While the directory answers, an expired entry is fetched again, never served stale.
    rename(&service, &first, "Renamed").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let fresh = resolver
        .user(id, Outage::StaleUpTo(Duration::from_secs(60)))
        .await
        .expect("resolved")
        .expect("known");
    assert_eq!(fresh.display_name, "Renamed");
    assert_eq!(resolver.user_stats().stale, 0);

    service.shutdown().await;
    tokio::time::sleep(Duration::from_millis(250)).await;

    let strict = resolver.user(id, Outage::Strict).await.expect_err("down");
    assert_eq!(strict.code(), tonic::Code::Unavailable);
    assert_eq!(strict.reason(), "DIRECTORY_UNAVAILABLE");

    let stale = resolver
        .user(id, Outage::StaleUpTo(Duration::from_secs(60)))
        .await
        .expect("stale within the bound")
        .expect("known");
    assert_eq!(stale.display_name, "Renamed");

    let beyond = resolver
        .user(id, Outage::StaleUpTo(Duration::from_millis(100)))
        .await
        .expect_err("older than the bound");
    assert_eq!(beyond.code(), tonic::Code::Unavailable);

    let never_seen = resolver
        .user(Uuid::new_v4(), Outage::StaleUpTo(Duration::from_secs(60)))
        .await
        .expect_err("nothing cached");
    assert_eq!(never_seen.code(), tonic::Code::Unavailable);

    let stats = resolver.user_stats();
    assert_eq!((stats.stale, stats.outages), (1, 3), "{stats:?}");
}

#[tokio::test]
async fn a_refused_batch_call_is_an_outage_with_its_cause_not_an_internal_error() {
    // Authentication on and no token: the directory answers UNAUTHENTICATED to the batch.
    let service = phoenix_testkit::spawn_with(phoenix_directory::spec(), |config| {
        config.auth.hs256_secret = Some(phoenix_testkit::TEST_SECRET.to_owned());
    })
    .await;
    let resolver = client(&service, ClientSettings::default());
    for outage in [Outage::Strict, Outage::StaleUpTo(Duration::from_secs(60))] {
        let status = resolver
            .user(Uuid::new_v4(), outage)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(status.reason(), "DIRECTORY_UNAVAILABLE");
        assert!(
            status.to_string().contains("Unauthenticated"),
            "the cause is named: {status}"
        );
    }
    let stats = resolver.user_stats();
    assert_eq!((stats.outages, stats.stale), (2, 0), "{stats:?}");
}

#[tokio::test]
async fn a_stale_bound_shorter_than_the_ttl_is_kept_on_cache_hits() {
    let service = spawn(phoenix_directory::spec()).await;
    let id = user(&service, "bound@example.com").await;
    let settings = ClientSettings {
        ttl: Duration::from_secs(60),
        batch_window: Duration::from_millis(1),
        ..ClientSettings::default()
    };
    let resolver = client(&service, settings);
    let first = resolver
        .user(id, Outage::Strict)
        .await
        .expect("resolved")
        .expect("known");
    rename(&service, &first, "Renamed").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let cached = resolver
        .user(id, Outage::Strict)
        .await
        .expect("cached")
        .expect("known");
    assert_eq!(cached.display_name, "Test User", "within the TTL");
    let bounded = resolver
        .user(id, Outage::StaleUpTo(Duration::from_millis(100)))
        .await
        .expect("fetched again")
        .expect("known");
    assert_eq!(
        bounded.display_name, "Renamed",
        "never older than the bound"
    );
    assert_eq!(resolver.user_stats().batches, 2);
}

#[tokio::test]
async fn a_batch_answer_larger_than_four_mebibytes_is_decoded() {
    let service = phoenix_testkit::spawn_with(phoenix_directory::spec(), |config| {
        config.max_message_bytes = 64 << 20;
    })
    .await;
    let mut directory = DirectoryServiceClient::new(service.channel.clone())
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let mut metadata = prost_types::Struct::default();
    metadata.fields.insert(
        "notes".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("x".repeat(15_000))),
        },
    );
    let mut ids = Vec::new();
    for i in 0..320 {
        let created = directory
            .create_user(pb::CreateUserRequest {
                email: format!("big{i}@example.com"),
                display_name: "Big".into(),
                metadata: Some(metadata.clone()),
                ..Default::default()
            })
            .await
            .expect("created")
            .into_inner()
            .user
            .expect("user");
        ids.push(created.id.parse::<Uuid>().expect("uuid"));
    }
    let settings = ClientSettings {
        batch_window: Duration::from_millis(50),
        ..ClientSettings::default()
    };
    let resolver = client(&service, settings);
    let lookups = ids.iter().map(|&id| {
        let resolver = resolver.clone();
        tokio::spawn(async move { resolver.user(id, Outage::Strict).await })
    });
    for joined in futures_util::future::join_all(lookups).await {
        assert!(joined.expect("joined").expect("resolved").is_some());
    }
    assert_eq!(resolver.user_stats().batches, 1, "one batch of ~4.8 MB");
}

/// A lookup whose batch task is dropped (its runtime shut down while the batch window ran)
/// leaves nothing stranded: the next lookup of the id starts a fetch of its own and answers,
/// instead of waiting forever on the dropped one.
#[test]
fn a_dropped_batch_task_strands_no_lookup() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let service = main.block_on(spawn(phoenix_directory::spec()));
    let id = main.block_on(user(&service, "dropped@example.com"));
    let settings = ClientSettings {
        batch_window: Duration::from_millis(300),
        ..ClientSettings::default()
    };
    let doomed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let resolver = doomed.block_on(async {
        let resolver = client(&service, settings);
        let first = resolver.clone();
        tokio::spawn(async move { first.user(id, Outage::Strict).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        resolver
    });
    drop(doomed);
    let answered = main.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), resolver.user(id, Outage::Strict)).await
    });
    // The channel died with its runtime, so the answer is the outage path; what matters is
    // that there is one.
    let answer = answered.expect("the lookup is not stranded");
    if let Err(status) = answer {
        assert_eq!(status.reason(), "DIRECTORY_UNAVAILABLE");
    }
    main.block_on(service.shutdown());
}
