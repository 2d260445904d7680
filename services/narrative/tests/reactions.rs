//! Reactions through gRPC: one per user, content and reaction; reaction rewards paid once;
//! the compensation; bad input.

mod common;

use common::{Client, count, id, story};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons, spawn};
use tonic::Code;

fn content(kind: pb::ContentKind, id: &str) -> Option<pb::ContentRef> {
    Some(pb::ContentRef {
        kind: kind.into(),
        content_id: id.into(),
    })
}

fn react(user: &str, fragment: &str, reaction: &str, key: &str) -> pb::RegisterReactionRequest {
    pb::RegisterReactionRequest {
        user_id: user.into(),
        content: content(pb::ContentKind::Fragment, fragment),
        reaction: reaction.into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn a_reaction_is_registered_once_and_its_reward_paid_once() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    client
        .upsert_reaction_reward(pb::UpsertReactionRewardRequest {
            reward: Some(pb::ReactionReward {
                content: content(pb::ContentKind::Fragment, &s.a),
                reaction: "❤️".into(),
                besitos: 3,
                active: true,
            }),
        })
        .await
        .expect("reward");
    let user = id();
    let first = client
        .register_reaction(react(&user, &s.a, "❤️", "r1"))
        .await
        .expect("registered")
        .into_inner();
    assert!(first.created);
    assert_eq!(first.besitos_to_grant, 3);
    let retry = client
        .register_reaction(react(&user, &s.a, "❤️", "r1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(retry, first);
    let again = client
        .register_reaction(react(&user, &s.a, "❤️", "r2"))
        .await
        .expect("already there")
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.besitos_to_grant, 0, "paid at most once");
    let other = client
        .register_reaction(react(&user, &s.a, "🔥", "r3"))
        .await
        .expect("another reaction")
        .into_inner();
    assert_eq!(other.besitos_to_grant, 0, "no reward for this one");
    assert_eq!(count(&service.pool, "reactions").await, 2);

    let undone = client
        .revert_reaction(pb::RevertReactionRequest {
            user_id: user.clone(),
            content: content(pb::ContentKind::Fragment, &s.a),
            reaction: "❤️".into(),
            idempotency_key: "x1".into(),
        })
        .await
        .expect("reverted")
        .into_inner();
    assert_eq!(undone.outcome(), pb::RevertOutcome::Reverted);
    assert_eq!(undone.besitos, 3, "what to take back");
    let nothing = client
        .revert_reaction(pb::RevertReactionRequest {
            user_id: user.clone(),
            content: content(pb::ContentKind::ChannelPost, "post-1"),
            reaction: "❤️".into(),
            idempotency_key: "x2".into(),
        })
        .await
        .expect("a no-op")
        .into_inner();
    assert_eq!(nothing.outcome(), pb::RevertOutcome::NotApplied);
    let p = common::progress(&mut client, &user).await;
    assert_eq!(p.reactions.len(), 1);
}

#[tokio::test]
async fn bad_reactions_and_rewards_are_refused() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let status = client
        .register_reaction(pb::RegisterReactionRequest {
            user_id: id(),
            content: Some(pb::ContentRef {
                kind: 42,
                content_id: "x".into(),
            }),
            reaction: "x".repeat(33),
            idempotency_key: "k".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(
        field_reasons(&status),
        [
            ("content.kind".to_owned(), "INVALID_ENUM".to_owned()),
            ("reaction".to_owned(), "TOO_LONG".to_owned()),
        ]
    );
    let status = client
        .register_reaction(react(&id(), &id(), "❤️", "k2"))
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    assert_eq!(field_reasons(&status)[0].0, "content.content_id");
    let status = client
        .upsert_reaction_reward(pb::UpsertReactionRewardRequest {
            reward: Some(pb::ReactionReward {
                content: content(pb::ContentKind::ChannelPost, "post-1"),
                reaction: "❤️".into(),
                besitos: -1,
                active: true,
            }),
        })
        .await
        .expect_err("negative");
    assert_eq!(
        field_reasons(&status),
        [("reward.besitos".to_owned(), "NEGATIVE_AMOUNT".to_owned())]
    );
    assert_eq!(count(&service.pool, "reactions").await, 0);
    assert_eq!(count(&service.pool, "reaction_rewards").await, 0);
}
