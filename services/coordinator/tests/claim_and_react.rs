//! ClaimMissionReward and ReactToContent through gRPC across the real services.

mod world;

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::missions::v1 as missions;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_testkit::{assert_refused, fields};
use tonic::Code;
use world::{SEASON, World, id};

fn reward() -> missions::Reward {
    missions::Reward {
        xp: 120,
        currency: 50,
        items: vec![missions::RewardItem {
            code: "potion".into(),
            quantity: 2,
        }],
        ..Default::default()
    }
}

async fn claim(
    w: &mut World,
    user: &str,
    run: &str,
    key: &str,
) -> Result<pb::ClaimMissionRewardResponse, tonic::Status> {
    w.coordinator
        .claim_mission_reward(pb::ClaimMissionRewardRequest {
            user_id: user.into(),
            season_id: SEASON.into(),
            run_id: run.into(),
            idempotency_key: key.into(),
            tenant_id: w.tenant.clone(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn rewards_landed_once(w: &mut World, user: &str) {
    assert_eq!(w.balance(user, "XP").await, 120);
    assert_eq!(w.balance(user, "BESITOS").await, 50);
    assert_eq!(w.entries(user, "XP").await, 1);
    assert_eq!(w.entries(user, "BESITOS").await, 1);
    assert_eq!(w.holdings(user).await, [("potion".to_owned(), 2)]);
}

#[tokio::test]
async fn a_claim_lands_its_xp_currency_and_items_exactly_once() {
    let mut w = World::start().await;
    let user = w.user().await;
    let run = w.succeeded_run(&user, reward()).await;

    let answer = claim(&mut w, &user, &run, "k1").await.expect("claimed");
    assert!(answer.success, "{answer:?}");
    assert!(!answer.claim_id.is_empty());
    assert_eq!((answer.xp, answer.currency), (120, 50));
    assert_eq!(answer.items.len(), 1);
    assert_eq!(
        (answer.items[0].item_id.as_str(), answer.items[0].quantity),
        ("potion", 2)
    );
    rewards_landed_once(&mut w, &user).await;
    assert_eq!(w.events("gamification.mission_completed").await.len(), 1);

    let replay = claim(&mut w, &user, &run, "k1").await.expect("replayed");
    assert_eq!(replay, answer);
    // Another key claims the same run again: missions answers the first claim, and the
    // ledger's keys (derived from the claim) pay nothing twice.
    let again = claim(&mut w, &user, &run, "k2")
        .await
        .expect("claimed again");
    assert!(again.success);
    assert_eq!(again.claim_id, answer.claim_id);
    rewards_landed_once(&mut w, &user).await;

    let reused = claim(&mut w, &user, &id(), "k1")
        .await
        .expect_err("another run under the key");
    assert_refused(&reused, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn a_claim_missions_refuses_grants_nothing() {
    let mut w = World::start().await;
    let user = w.user().await;
    w.succeeded_run(&user, reward()).await;

    let unknown = claim(&mut w, &user, &id(), "k1")
        .await
        .expect_err("no such run");
    assert_refused(&unknown, Code::NotFound, "RUN_NOT_FOUND");
    let status = claim(&mut w, &id(), &id(), "k2")
        .await
        .expect_err("no such user");
    assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");
    let status = w
        .coordinator
        .claim_mission_reward(pb::ClaimMissionRewardRequest {
            user_id: user.clone(),
            ..Default::default()
        })
        .await
        .expect_err("bad input");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        ["season_id", "run_id", "idempotency_key", "tenant_id"]
    );
    assert_eq!(w.balance(&user, "XP").await, 0);
    assert!(w.holdings(&user).await.is_empty());
}

async fn react(
    w: &mut World,
    user: &str,
    fragment: &str,
    reaction: &str,
    key: &str,
) -> Result<pb::ReactToContentResponse, tonic::Status> {
    w.coordinator
        .react_to_content(pb::ReactToContentRequest {
            user_id: user.into(),
            content: Some(narrative::ContentRef {
                kind: narrative::ContentKind::Fragment.into(),
                content_id: fragment.into(),
            }),
            reaction: reaction.into(),
            idempotency_key: key.into(),
            tenant_id: w.tenant.clone(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_reaction_is_recorded_and_its_reward_paid_once() {
    let mut w = World::start().await;
    let user = w.user().await;
    let f = id();
    w.fragment(narrative::Fragment {
        id: f.clone(),
        title: "Loved".into(),
        content: "text".into(),
        ..Default::default()
    })
    .await;
    w.narrative
        .upsert_reaction_reward(narrative::UpsertReactionRewardRequest {
            reward: Some(narrative::ReactionReward {
                content: Some(narrative::ContentRef {
                    kind: narrative::ContentKind::Fragment.into(),
                    content_id: f.clone(),
                }),
                reaction: "❤️".into(),
                besitos: 7,
                active: true,
            }),
        })
        .await
        .expect("reward");

    let answer = react(&mut w, &user, &f, "❤️", "k1").await.expect("reacted");
    assert!(answer.success, "{answer:?}");
    assert!(answer.created);
    assert_eq!(answer.besitos, 7);
    assert_eq!(w.balance(&user, "BESITOS").await, 7);
    assert_eq!(w.progress(&user).await.reactions.len(), 1);
    assert_eq!(w.events("coordinator.content_reacted").await.len(), 1);

    assert_eq!(
        react(&mut w, &user, &f, "❤️", "k1").await.expect("replay"),
        answer
    );
    let again = react(&mut w, &user, &f, "❤️", "k2").await.expect("again");
    assert!(again.success);
    assert!(!again.created, "registered before");
    assert_eq!(again.besitos, 0, "paid once");
    assert_eq!(w.balance(&user, "BESITOS").await, 7);
    assert_eq!(w.entries(&user, "BESITOS").await, 1);

    let reused = react(&mut w, &user, &f, "👍", "k1")
        .await
        .expect_err("another reaction under the key");
    assert_refused(&reused, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    let status = react(&mut w, &id(), &f, "❤️", "k3")
        .await
        .expect_err("no such user");
    assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");
    let status = react(&mut w, &user, &id(), "❤️", "k4")
        .await
        .expect_err("no such fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    let status = react(&mut w, &user, &f, "", "")
        .await
        .expect_err("bad input");
    assert_eq!(fields(&status), ["reaction", "idempotency_key"]);
}
