//! The analytics writer: events on the bus recorded once per event id, queried by user, type
//! and time with page tokens, rolled up per day; monthly partitions created ahead and detached
//! after the retention.

mod bus_support;

use std::time::Duration;

use bus_support::*;
use chrono::{NaiveDate, TimeZone, Utc};
use phoenix_coordinator::analytics::{self, Retention, Writer};
use phoenix_coordinator::bus::Leased;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::analytics_service_client::AnalyticsServiceClient;
use phoenix_proto::events::v1::Priority;
use phoenix_testkit::{assert_refused, field_reasons};
use prost::Message;
use tonic::Code;

async fn partitions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
         WHERE p.relname = 'analytics_events' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

on_both_backends!(published_events_are_recorded_once_and_queried_by_user_type_and_time);

async fn published_events_are_recorded_once_and_queried_by_user_type_and_time(backend: Backend) {
    let backend = BusBackend::start(backend).await;
    let coordinator = coordinator_on(&backend, None).await;
    let mut bus = bus(&coordinator.channel);
    let mut analytics = AnalyticsServiceClient::new(coordinator.channel.clone());
    let alice = uuid::Uuid::new_v4().to_string();
    let bob = uuid::Uuid::new_v4().to_string();
    let mut sent = Vec::new();
    for (n, user) in [&alice, &alice, &bob, &alice].into_iter().enumerate() {
        sent.push(event(
            "coordinator.decision_taken",
            &format!("q{n}"),
            1,
            Priority::Normal,
            user,
        ));
    }
    sent.push(event(
        "analytics.vip_content_accessed",
        "v",
        1,
        Priority::Unspecified,
        &alice,
    ));
    publish(&mut bus, sent.clone()).await;
    // The same events again: duplicates on the bus, and nothing recorded twice.
    assert_eq!(publish(&mut bus, sent.clone()).await.duplicates, 5);

    let from = Utc::now() - chrono::Duration::hours(1);
    let to = Utc::now() + chrono::Duration::hours(1);
    let query = |user: &str, types: Vec<String>, page_token: String| pb::QueryEventsRequest {
        user_id: user.to_owned(),
        event_types: types,
        from_time: Some(phoenix_runtime::convert::timestamp(from)),
        to_time: Some(phoenix_runtime::convert::timestamp(to)),
        page_size: 2,
        page_token,
    };
    let mut recorded = 0;
    for _ in 0..100 {
        recorded = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM analytics_events")
            .fetch_one(&coordinator.pool)
            .await
            .unwrap();
        if recorded >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, 5);

    // Alice's decisions, two per page, newest first.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = analytics
            .query_events(query(
                &alice,
                vec!["coordinator.decision_taken".into()],
                token,
            ))
            .await
            .expect("queried")
            .into_inner();
        ids.extend(page.events.iter().map(|e| e.event_id.clone()));
        assert!(
            page.events
                .iter()
                .all(|e| e.user_id == alice && e.source == "publish")
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected: Vec<String> = sent[..4]
        .iter()
        .zip([&alice, &alice, &bob, &alice])
        .filter(|(_, user)| **user == alice)
        .map(|(e, _)| e.id.clone())
        .collect();
    expected.reverse();
    assert_eq!(ids, expected, "newest first (ids are time-ordered)");

    let all = analytics
        .query_events(pb::QueryEventsRequest {
            page_size: 100,
            ..query("", Vec::new(), String::new())
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.events.len(), 5);
    let vip = all
        .events
        .iter()
        .find(|e| e.catalog_type == "analytics.vip_content_accessed")
        .unwrap();
    assert_eq!(
        vip.payload.as_ref().unwrap().type_url,
        "type.googleapis.com/phoenix.events.v1.CoordinatorDecisionTaken"
    );

    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let metrics = analytics
        .get_daily_metrics(pb::GetDailyMetricsRequest {
            from_day: today.clone(),
            to_day: today.clone(),
            event_type: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .metrics;
    let row = |t: &str| {
        metrics
            .iter()
            .find(|m| m.event_type == t)
            .map(|m| (m.events, m.users))
    };
    assert_eq!(row("coordinator.decision_taken"), Some((4, 2)));
    assert_eq!(row("analytics.vip_content_accessed"), Some((1, 1)));

    let status = analytics
        .query_events(pb::QueryEventsRequest {
            user_id: "x".into(),
            event_types: vec!["bad type".into()],
            from_time: Some(phoenix_runtime::convert::timestamp(to)),
            to_time: Some(phoenix_runtime::convert::timestamp(from)),
            page_size: 0,
            page_token: "garbage".into(),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    let fields: Vec<String> = field_reasons(&status).into_iter().map(|f| f.0).collect();
    assert_eq!(
        fields,
        ["user_id", "event_types[0]", "to_time", "page_token"]
    );
    let status = analytics
        .get_daily_metrics(pb::GetDailyMetricsRequest {
            from_day: "2026-13-01".into(),
            to_day: String::new(),
            event_type: String::new(),
        })
        .await
        .expect_err("refused");
    assert_refused(&status, Code::InvalidArgument, "INVALID_DAY");
}

fn leased(id: uuid::Uuid, at: chrono::DateTime<Utc>, user: &str) -> Leased {
    let mut envelope = event("coordinator.decision_taken", "w", 1, Priority::Normal, user);
    envelope.id = id.to_string();
    envelope.occurred_at = Some(phoenix_runtime::convert::timestamp(at));
    Leased {
        delivery_id: uuid::Uuid::new_v4(),
        attempt: 1,
        envelope: envelope.encode_to_vec(),
        catalog_type: Some("coordinator.decision_taken".into()),
        source: "publish".into(),
        source_position: 0,
        event_type: "coordinator.decision_taken".into(),
    }
}

#[tokio::test]
async fn the_writer_deduplicates_on_event_id_and_partitions_follow_the_retention() {
    let (_database, pool) = phoenix_testkit::migrated_database(&phoenix_coordinator::spec()).await;
    let retention = Retention {
        months: 2,
        ahead: 1,
    };
    let now = Utc.with_ymd_and_hms(2030, 5, 14, 12, 0, 0).unwrap();
    let done = analytics::maintain(&pool, retention, now).await.unwrap();
    let may = NaiveDate::from_ymd_opt(2030, 5, 1).unwrap();
    let june = NaiveDate::from_ymd_opt(2030, 6, 1).unwrap();
    assert_eq!((done.created, done.detached), (vec![may, june], vec![]));
    assert_eq!(
        partitions(&pool).await,
        ["analytics_events_2030_05", "analytics_events_2030_06"]
    );
    // Run again: nothing more to do.
    assert_eq!(
        analytics::maintain(&pool, retention, now).await.unwrap(),
        Default::default()
    );

    let writer = Writer::new(pool.clone(), retention);
    let user = uuid::Uuid::new_v4().to_string();
    let id = uuid::Uuid::now_v7();
    // An event of March (a partition the writer creates on demand) delivered twice.
    let march = Utc.with_ymd_and_hms(2030, 3, 20, 8, 0, 0).unwrap();
    for _ in 0..2 {
        let (acked, failed) = writer.handle(vec![leased(id, march, &user)], now).await;
        assert_eq!((acked.len(), failed.len()), (1, 0));
    }
    // Older than the retention (January, before March = May − 2): acknowledged, not recorded.
    let january = Utc.with_ymd_and_hms(2030, 1, 2, 8, 0, 0).unwrap();
    let (acked, _) = writer
        .handle(vec![leased(uuid::Uuid::now_v7(), january, &user)], now)
        .await;
    assert_eq!(acked.len(), 1);
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT event_id, tableoid::regclass::text FROM analytics_events")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![(id, "analytics_events_2030_03".to_owned())]);
    let metric: (i64, i64) = sqlx::query_as(
        "SELECT events, users FROM analytics_daily_metrics WHERE day = '2030-03-20'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(metric, (1, 1), "the redelivery is not counted");

    // Three months later March and May are past the retention: detached, kept as tables.
    let later = Utc.with_ymd_and_hms(2030, 8, 1, 0, 0, 0).unwrap();
    let done = analytics::maintain(&pool, retention, later).await.unwrap();
    assert_eq!(
        done.detached,
        vec![NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(), may]
    );
    assert_eq!(
        done.created.len(),
        2,
        "August and September: {:?}",
        done.created
    );
    assert_eq!(
        partitions(&pool).await,
        [
            "analytics_events_2030_06",
            "analytics_events_2030_08",
            "analytics_events_2030_09"
        ]
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics_events_2030_03")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "a detached partition keeps its rows for archiving");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 0);

    // Reverting the migration removes the detached partitions too.
    let spec = phoenix_coordinator::spec();
    let set = spec.migration_set().unwrap();
    phoenix_runtime::migrate::Migrator::new(&set, &pool)
        .to(3, false)
        .await
        .expect("down to 0003");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'coordinator' AND tablename LIKE 'analytics%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}
