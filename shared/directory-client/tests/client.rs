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
    let mut renamed = (*first).clone();
    renamed.display_name = "Renamed".into();
    DirectoryServiceClient::new(service.channel.clone())
        .update_user(pb::UpdateUserRequest {
            user: Some(renamed),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("renamed");
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
