//! What the narrative's tests share: a client, and a small story written through the API.

#![allow(dead_code)]

use phoenix_proto::narrative::v1 as pb;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Client = NarrativeServiceClient<Channel>;

pub fn id() -> String {
    Uuid::now_v7().to_string()
}

pub fn fragment(id: &str, title: &str) -> pb::Fragment {
    pb::Fragment {
        id: id.into(),
        title: title.into(),
        content: format!("The text of {title}."),
        preview: format!("A glimpse of {title}."),
        ..Default::default()
    }
}

pub async fn upsert_fragment(client: &mut Client, fragment: pb::Fragment) -> pb::Fragment {
    client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(fragment),
        })
        .await
        .expect("the fragment is upserted")
        .into_inner()
        .fragment
        .expect("a fragment")
}

pub fn decision(id: &str, fragment_id: &str, next: &str, besitos: i64) -> pb::Decision {
    pb::Decision {
        id: id.into(),
        fragment_id: fragment_id.into(),
        label: "Go on".into(),
        next_fragment_id: next.into(),
        rewards: Some(pb::Rewards {
            besitos,
            ..Default::default()
        }),
        position: 0,
    }
}

pub async fn upsert_decision(client: &mut Client, decision: pb::Decision) {
    client
        .upsert_decision(pb::UpsertDecisionRequest {
            decision: Some(decision),
        })
        .await
        .expect("the decision is upserted");
}

/// A fragment `a` (rewards: 10 besitos and unlocking `b`) with decision `d` (5 besitos, next
/// `b`), and a fragment `b`.
pub struct Story {
    pub a: String,
    pub b: String,
    pub d: String,
}

pub async fn story(client: &mut Client) -> Story {
    let (a, b, d) = (id(), id(), id());
    upsert_fragment(client, fragment(&b, "B")).await;
    let mut first = fragment(&a, "A");
    first.rewards = Some(pb::Rewards {
        besitos: 10,
        unlock_fragment_ids: vec![b.clone()],
        ..Default::default()
    });
    first.completes_level = 1;
    upsert_fragment(client, first).await;
    upsert_decision(client, decision(&d, &a, &b, 5)).await;
    Story { a, b, d }
}

pub fn apply(user: &str, fragment: &str, decision: &str, key: &str) -> pb::ApplyDecisionRequest {
    pb::ApplyDecisionRequest {
        user_id: user.into(),
        fragment_id: fragment.into(),
        decision_id: decision.into(),
        idempotency_key: key.into(),
    }
}

pub async fn progress(client: &mut Client, user: &str) -> pb::GetUserProgressResponse {
    client
        .get_user_progress(pb::GetUserProgressRequest {
            user_id: user.into(),
        })
        .await
        .expect("progress")
        .into_inner()
}

/// Rows of a table, to prove a refusal wrote nothing.
pub async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}
