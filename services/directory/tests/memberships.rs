//! VIP memberships, channel memberships, the auditor and the event stream, through gRPC.

use std::time::Duration;

use futures_util::StreamExt;
use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_testkit::{TestService, assert_refused, directory_user, field_reasons, spawn};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

type Client = DirectoryServiceClient<Channel>;

fn seconds(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: n,
        nanos: 0,
    })
}

fn grant(user_id: &str, key: &str, duration: i64) -> pb::GrantVipRequest {
    pb::GrantVipRequest {
        user_id: user_id.into(),
        duration: seconds(duration),
        idempotency_key: key.into(),
        reason: "purchase".into(),
    }
}

fn time(t: &Option<prost_types::Timestamp>) -> chrono::DateTime<chrono::Utc> {
    let t = t.as_ref().expect("a time");
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).expect("nanos"))
        .expect("valid")
}

async fn check(client: &mut Client, user_id: &str) -> pb::VipMembership {
    client
        .check_vip(pb::CheckVipRequest {
            user_id: user_id.into(),
        })
        .await
        .expect("check")
        .into_inner()
        .membership
        .expect("membership")
}

#[tokio::test]
async fn concurrent_grants_with_one_key_give_one_period() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "vip@example.com", "").await;
    let calls = (0..8).map(|_| {
        let mut client = client.clone();
        let request = grant(&id, "purchase-1", 3600);
        tokio::spawn(async move { client.grant_vip(request).await })
    });
    let answers: Vec<pb::VipMembership> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| {
            joined
                .expect("joined")
                .expect("granted")
                .into_inner()
                .membership
                .expect("membership")
        })
        .collect();
    for answer in &answers {
        assert_eq!(answer, &answers[0], "every retry answers the first outcome");
    }
    assert_eq!(answers[0].status(), pb::VipStatus::Active);
    let span = time(&answers[0].period_end_time) - time(&answers[0].period_start_time);
    assert_eq!(
        span,
        chrono::Duration::seconds(3600),
        "one period, not eight"
    );
    let history = client
        .list_vip_history(pb::ListVipHistoryRequest {
            user_id: id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].change(), pb::VipChange::Grant);

    let status = client
        .grant_vip(grant(&id, "purchase-1", 60))
        .await
        .expect_err("same key, other request");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn the_keys_the_purge_job_removes_are_the_vip_changes_past_their_ttl() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "keys@example.com", "").await;
    client
        .grant_vip(grant(&id, "k", 60))
        .await
        .expect("granted");
    let now = chrono::Utc::now();
    let early = phoenix_runtime::idempotency::remove_expired(&service.pool, now, 100)
        .await
        .expect("purged");
    assert_eq!(early, 0, "a key within its TTL is kept");
    let ttl = chrono::Duration::from_std(phoenix_directory::app::IDEMPOTENCY_TTL).expect("ttl");
    let late = phoenix_runtime::idempotency::remove_expired(&service.pool, now + ttl, 100)
        .await
        .expect("purged");
    assert_eq!(late, 1, "the grant's key, past its TTL");
}

#[tokio::test]
async fn expiry_is_seen_at_the_end_instant_without_a_job() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "short@example.com", "").await;
    let granted = client
        .grant_vip(grant(&id, "k1", 1))
        .await
        .expect("granted")
        .into_inner()
        .membership
        .expect("membership");
    assert!(granted.vip);
    let end = time(&granted.period_end_time);
    let mut read = check(&mut client, &id).await;
    while time(&read.check_time) < end {
        assert_eq!(read.status(), pb::VipStatus::Active, "before the end");
        tokio::time::sleep(Duration::from_millis(50)).await;
        read = check(&mut client, &id).await;
    }
    assert_eq!(
        read.status(),
        pb::VipStatus::Expired,
        "read at or after {end}"
    );
    assert!(!read.vip);
    let listed = client
        .list_users(pb::ListUsersRequest {
            vip_status: pb::VipStatus::Expired.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .users;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].vip_status(), pb::VipStatus::Expired);
    let status = client
        .extend_vip(pb::ExtendVipRequest {
            user_id: id.clone(),
            duration: seconds(60),
            idempotency_key: "k2".into(),
            reason: String::new(),
        })
        .await
        .expect_err("expired");
    assert_refused(&status, Code::FailedPrecondition, "VIP_NOT_ACTIVE");
}

#[tokio::test]
async fn a_trial_is_once_and_changes_are_kept_in_order() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "trial@example.com", "").await;
    let trial = |key: &str| pb::StartVipTrialRequest {
        user_id: id.clone(),
        duration: None,
        idempotency_key: key.into(),
    };
    let started = client
        .start_vip_trial(trial("t1"))
        .await
        .expect("trial")
        .into_inner()
        .membership
        .expect("membership");
    assert_eq!(started.status(), pb::VipStatus::Trial);
    let span = time(&started.period_end_time) - time(&started.period_start_time);
    assert_eq!(span, chrono::Duration::days(7));
    let replay = client.start_vip_trial(trial("t1")).await.expect("replay");
    assert_eq!(replay.into_inner().membership, Some(started.clone()));

    client
        .cancel_vip(pb::CancelVipRequest {
            user_id: id.clone(),
            idempotency_key: "c1".into(),
            reason: "changed my mind".into(),
        })
        .await
        .expect("cancelled");
    let status = client
        .start_vip_trial(trial("t2"))
        .await
        .expect_err("second trial");
    assert_refused(&status, Code::FailedPrecondition, "VIP_TRIAL_USED");
    let got = client
        .get_user(pb::GetUserRequest { id: id.clone() })
        .await
        .expect("user")
        .into_inner()
        .user
        .expect("user");
    assert!(got.vip_trial_used);
    assert_eq!(got.vip_trial_end_time, started.period_end_time);
    assert_eq!(got.vip_status(), pb::VipStatus::Cancelled);

    client
        .grant_vip(grant(&id, "g1", 100))
        .await
        .expect("granted");
    client
        .extend_vip(pb::ExtendVipRequest {
            user_id: id.clone(),
            duration: seconds(50),
            idempotency_key: "e1".into(),
            reason: String::new(),
        })
        .await
        .expect("extended");
    let status = client
        .revoke_vip(pb::RevokeVipRequest {
            user_id: id.clone(),
            idempotency_key: "r1".into(),
            reason: String::new(),
        })
        .await
        .expect_err("a revocation needs a reason");
    assert_eq!(
        field_reasons(&status),
        [("reason".to_owned(), "REQUIRED".to_owned())]
    );
    let revoked = client
        .revoke_vip(pb::RevokeVipRequest {
            user_id: id.clone(),
            idempotency_key: "r1".into(),
            reason: "chargeback".into(),
        })
        .await
        .expect("revoked")
        .into_inner()
        .membership
        .expect("membership");
    assert_eq!(revoked.status(), pb::VipStatus::Cancelled);
    assert!(!revoked.vip);
    let changes: Vec<_> = client
        .list_vip_history(pb::ListVipHistoryRequest {
            user_id: id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .entries
        .iter()
        .map(|e| (e.version, e.change()))
        .collect();
    use pb::VipChange as C;
    assert_eq!(
        changes,
        [
            (1, C::Trial),
            (2, C::Cancel),
            (3, C::Grant),
            (4, C::Extend),
            (5, C::Revoke)
        ]
    );
    let tampered = sqlx::query("UPDATE vip_history SET reason = 'x'")
        .execute(&service.pool)
        .await;
    assert!(tampered.is_err(), "the history is append-only");
}

#[tokio::test]
async fn bad_vip_requests_name_every_field() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let status = client
        .grant_vip(pb::GrantVipRequest {
            user_id: "nope".into(),
            duration: seconds(-5),
            idempotency_key: String::new(),
            reason: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        field_reasons(&status),
        [
            ("user_id".to_owned(), "INVALID_ID".to_owned()),
            (
                "idempotency_key".to_owned(),
                "IDEMPOTENCY_KEY_REQUIRED".to_owned()
            ),
            ("duration".to_owned(), "INVALID_DURATION".to_owned()),
        ]
    );
    let status = client
        .grant_vip(grant(&uuid::Uuid::new_v4().to_string(), "k", 10))
        .await
        .expect_err("unknown user");
    assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");

    // Half a microsecond is positive but is nothing at the database's precision.
    let id = directory_user(&service.channel, "tiny@example.com", "").await;
    let mut tiny = grant(&id, "tiny", 0);
    tiny.duration = Some(prost_types::Duration {
        seconds: 0,
        nanos: 500,
    });
    let status = client
        .grant_vip(tiny)
        .await
        .expect_err("under a microsecond");
    assert_eq!(
        field_reasons(&status),
        [("duration".to_owned(), "INVALID_DURATION".to_owned())]
    );
    assert_eq!(check(&mut client, &id).await.status(), pb::VipStatus::None);
}

#[tokio::test]
async fn the_vip_channel_is_joined_only_with_vip_access() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "novip@example.com", "").await;
    let join = pb::JoinChannelRequest {
        user_id: id.clone(),
        channel: pb::Channel::Vip.into(),
    };
    let status = client
        .join_channel(join.clone())
        .await
        .expect_err("no VIP access");
    assert_refused(&status, Code::FailedPrecondition, "VIP_REQUIRED");
    let listed = client
        .list_channel_memberships(pb::ListChannelMembershipsRequest {
            user_id: id.clone(),
        })
        .await
        .expect("listed")
        .into_inner();
    assert!(listed.memberships.is_empty(), "nothing written");

    client
        .grant_vip(grant(&id, "g", 3600))
        .await
        .expect("granted");
    assert!(
        client
            .join_channel(join.clone())
            .await
            .expect("a VIP")
            .into_inner()
            .changed
    );
    client
        .revoke_vip(pb::RevokeVipRequest {
            user_id: id.clone(),
            idempotency_key: "r".into(),
            reason: "chargeback".into(),
        })
        .await
        .expect("revoked");
    client
        .leave_channel(pb::LeaveChannelRequest {
            user_id: id.clone(),
            channel: pb::Channel::Vip.into(),
        })
        .await
        .expect("left");
    let status = client.join_channel(join).await.expect_err("revoked");
    assert_refused(&status, Code::FailedPrecondition, "VIP_REQUIRED");
}

async fn audit(service: &TestService) -> phoenix_runtime::AuditReport {
    let audit = phoenix_directory::spec().audit.expect("an auditor");
    audit(service.pool.clone()).await.expect("audit ran")
}

#[tokio::test]
async fn an_active_vip_outside_the_vip_channel_is_reported_and_repaired() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "chan@example.com", "").await;
    let join = client
        .join_channel(pb::JoinChannelRequest {
            user_id: id.clone(),
            channel: pb::Channel::Free.into(),
        })
        .await
        .expect("joined")
        .into_inner();
    assert!(join.changed);
    let again = client
        .join_channel(pb::JoinChannelRequest {
            user_id: id.clone(),
            channel: pb::Channel::Free.into(),
        })
        .await
        .expect("joined twice")
        .into_inner();
    assert!(!again.changed);
    assert_eq!(audit(&service).await.violations, 0);

    client
        .grant_vip(grant(&id, "g", 3600))
        .await
        .expect("granted");
    let report = audit(&service).await;
    assert_eq!(report.violations, 1, "{:?}", report.lines);
    assert!(
        report.lines.iter().any(|l| l.contains(&id)),
        "{:?}",
        report.lines
    );

    let ensured = client
        .ensure_channel_membership(pb::EnsureChannelMembershipRequest {
            user_id: id.clone(),
        })
        .await
        .expect("ensured")
        .into_inner();
    assert!(ensured.joined && !ensured.left);
    let channels: Vec<_> = ensured.memberships.iter().map(|m| m.channel()).collect();
    assert_eq!(channels, [pb::Channel::Free, pb::Channel::Vip]);
    let twice = client
        .ensure_channel_membership(pb::EnsureChannelMembershipRequest {
            user_id: id.clone(),
        })
        .await
        .expect("ensured twice")
        .into_inner();
    assert!(!twice.joined && !twice.left);
    assert_eq!(audit(&service).await.violations, 0);

    client
        .cancel_vip(pb::CancelVipRequest {
            user_id: id.clone(),
            idempotency_key: "c".into(),
            reason: String::new(),
        })
        .await
        .expect("cancelled");
    let left = client
        .ensure_channel_membership(pb::EnsureChannelMembershipRequest {
            user_id: id.clone(),
        })
        .await
        .expect("ensured")
        .into_inner();
    assert!(left.left);
    let leave = client
        .leave_channel(pb::LeaveChannelRequest {
            user_id: id.clone(),
            channel: pb::Channel::Free.into(),
        })
        .await
        .expect("left")
        .into_inner();
    assert!(leave.changed);
    let listed = client
        .list_channel_memberships(pb::ListChannelMembershipsRequest {
            user_id: id.clone(),
        })
        .await
        .expect("listed")
        .into_inner();
    assert!(listed.memberships.is_empty());
    let status = client
        .join_channel(pb::JoinChannelRequest {
            user_id: id.clone(),
            channel: 0,
        })
        .await
        .expect_err("no channel");
    assert_eq!(
        field_reasons(&status),
        [("channel".to_owned(), "REQUIRED".to_owned())]
    );
}

#[tokio::test]
async fn every_change_is_streamed_in_the_envelope_from_a_position() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let id = directory_user(&service.channel, "events@example.com", "").await;
    client
        .grant_vip(grant(&id, "g", 3600))
        .await
        .expect("granted");
    client
        .join_channel(pb::JoinChannelRequest {
            user_id: id.clone(),
            channel: pb::Channel::Vip.into(),
        })
        .await
        .expect("joined");

    let mut stream = client
        .subscribe(pb::SubscribeRequest { after_position: 0 })
        .await
        .expect("subscribed")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("an event")
    };
    let created = next().await;
    let granted = next().await;
    let joined = next().await;
    let types: Vec<_> = [&created, &granted, &joined]
        .iter()
        .map(|e| e.event.as_ref().expect("envelope").r#type.clone())
        .collect();
    assert_eq!(
        types,
        [
            "phoenix.directory.v1.UserCreated",
            "phoenix.directory.v1.VipStatusChanged",
            "phoenix.directory.v1.UserJoinedChannel"
        ]
    );
    let positions: Vec<_> = [&created, &granted, &joined]
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, [1, 2, 3]);
    let envelope = granted.event.expect("envelope");
    assert_eq!(
        (
            envelope.aggregate_type.as_str(),
            envelope.aggregate_id.as_str()
        ),
        ("user", id.as_str())
    );
    assert_eq!(envelope.aggregate_version, 2);
    let payload = pb::VipStatusChanged::decode(envelope.payload.expect("payload").value.as_slice())
        .expect("payload decodes");
    assert_eq!(payload.change(), pb::VipChange::Grant);

    // Follows: a change made now arrives on the open stream.
    client
        .leave_channel(pb::LeaveChannelRequest {
            user_id: id.clone(),
            channel: pb::Channel::Vip.into(),
        })
        .await
        .expect("left");
    let left = next().await;
    assert_eq!(left.position, 4);
    assert_eq!(
        left.event.expect("envelope").r#type,
        "phoenix.directory.v1.UserLeftChannel"
    );

    // Resumes after a position, and refuses one that is not there.
    let mut resumed = client
        .subscribe(pb::SubscribeRequest { after_position: 3 })
        .await
        .expect("resumed")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("event");
    assert_eq!(first.position, 4);
    let status = client
        .subscribe(pb::SubscribeRequest { after_position: 99 })
        .await
        .expect_err("no such position");
    assert_refused(&status, Code::NotFound, "POSITION_NOT_FOUND");
}
