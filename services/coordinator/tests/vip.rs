//! SubscribeVip, AccessVipNarrative and the VIP plans, through gRPC across the real services.

mod world;

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::directory::v1 as directory;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_testkit::{assert_refused, fields};
use tonic::Code;
use world::{World, id};

fn days(n: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: n * 86_400,
        nanos: 0,
    }
}

/// Plans `monthly` (100 besitos, any score) and `premium` (300, score 60 and up).
async fn plans(w: &mut World) -> String {
    let revenue = w.account("shop", "BESITOS", "revenue").await;
    for (plan_id, price, score) in [("monthly", 100, 0.0), ("premium", 300, 60.0)] {
        w.coordinator
            .upsert_vip_plan(pb::UpsertVipPlanRequest {
                plan: Some(pb::VipPlan {
                    plan_id: plan_id.into(),
                    name: format!("VIP {plan_id}"),
                    asset_code: "BESITOS".into(),
                    price,
                    period: Some(days(30)),
                    revenue_account_id: revenue.clone(),
                    active: true,
                    min_conversion_score: score,
                    tenant_id: w.tenant.clone(),
                }),
            })
            .await
            .expect("upsert the plan");
    }
    revenue
}

async fn subscribe(
    w: &mut World,
    user: &str,
    plan: &str,
    key: &str,
) -> Result<pb::SubscribeVipResponse, tonic::Status> {
    w.coordinator
        .subscribe_vip(pb::SubscribeVipRequest {
            user_id: user.into(),
            plan_id: plan.into(),
            idempotency_key: key.into(),
            tenant_id: w.tenant.clone(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn vip(w: &mut World, user: &str) -> directory::VipMembership {
    w.directory
        .check_vip(directory::CheckVipRequest {
            user_id: user.into(),
        })
        .await
        .expect("check")
        .into_inner()
        .membership
        .expect("membership")
}

async fn in_vip_channel(w: &mut World, user: &str) -> bool {
    w.directory
        .list_channel_memberships(directory::ListChannelMembershipsRequest {
            user_id: user.into(),
        })
        .await
        .expect("memberships")
        .into_inner()
        .memberships
        .iter()
        .any(|m| m.channel() == directory::Channel::Vip)
}

#[tokio::test]
async fn a_subscription_pays_grants_the_period_and_joins_the_channel_once() {
    let mut w = World::start().await;
    plans(&mut w).await;
    let user = w.user().await;
    w.fund(&user, "BESITOS", 150).await;

    let answer = subscribe(&mut w, &user, "monthly", "k1")
        .await
        .expect("subscribed");
    assert!(answer.success, "{answer:?}");
    assert!(!answer.payment_transfer_id.is_empty());
    assert_eq!(answer.plan.as_ref().unwrap().price, 100);
    assert_eq!(w.balance(&user, "BESITOS").await, 50);
    assert_eq!(
        w.balance("shop", "BESITOS").await,
        0,
        "a revenue account, not a wallet"
    );
    let membership = vip(&mut w, &user).await;
    assert!(membership.vip);
    assert_eq!(membership.version, 1, "one grant");
    assert!(in_vip_channel(&mut w, &user).await);
    assert_eq!(w.events("commerce.vip_subscribed").await.len(), 1);

    assert_eq!(
        subscribe(&mut w, &user, "monthly", "k1")
            .await
            .expect("replay"),
        answer
    );
    assert_eq!(w.balance(&user, "BESITOS").await, 50);
    assert_eq!(vip(&mut w, &user).await.version, 1);
    let reused = subscribe(&mut w, &user, "premium", "k1")
        .await
        .expect_err("another plan under the key");
    assert_refused(&reused, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn a_subscription_without_funds_is_compensated_with_the_reason() {
    let mut w = World::start().await;
    plans(&mut w).await;
    let user = w.user().await;
    w.fund(&user, "BESITOS", 20).await;

    let answer = subscribe(&mut w, &user, "monthly", "k1")
        .await
        .expect("answered");
    assert!(!answer.success);
    let failure = answer.failure.expect("why");
    assert_eq!(
        (
            failure.step.as_str(),
            failure.reason.as_str(),
            failure.state.as_str()
        ),
        ("pay", "INSUFFICIENT_FUNDS", "compensated")
    );
    assert_eq!(w.balance(&user, "BESITOS").await, 20);
    assert!(!vip(&mut w, &user).await.vip);
    assert!(!in_vip_channel(&mut w, &user).await);
}

#[tokio::test]
async fn unknown_plans_and_users_and_bad_plans_are_refused() {
    let mut w = World::start().await;
    let revenue = plans(&mut w).await;
    let user = w.user().await;
    let status = subscribe(&mut w, &user, "gold", "k1")
        .await
        .expect_err("no plan");
    assert_refused(&status, Code::NotFound, "PLAN_NOT_FOUND");
    assert_eq!(fields(&status), ["plan_id"]);
    let status = subscribe(&mut w, &id(), "monthly", "k2")
        .await
        .expect_err("no user");
    assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");
    let status = subscribe(&mut w, "x", "bad id!", "")
        .await
        .expect_err("bad input");
    assert_eq!(fields(&status), ["user_id", "plan_id", "idempotency_key"]);

    let status = w
        .coordinator
        .upsert_vip_plan(pb::UpsertVipPlanRequest {
            plan: Some(pb::VipPlan {
                plan_id: "cheap".into(),
                asset_code: "besitos".into(),
                price: 0,
                period: Some(prost_types::Duration {
                    seconds: 5,
                    nanos: 0,
                }),
                revenue_account_id: revenue.clone(),
                min_conversion_score: 101.0,
                ..Default::default()
            }),
        })
        .await
        .expect_err("a bad plan");
    assert_eq!(
        fields(&status),
        [
            "plan.name",
            "plan.asset_code",
            "plan.price",
            "plan.period",
            "plan.tenant_id",
            "plan.min_conversion_score"
        ]
    );
    let xp_account = w.account("shop", "XP", "revenue").await;
    let status = w
        .coordinator
        .upsert_vip_plan(pb::UpsertVipPlanRequest {
            plan: Some(pb::VipPlan {
                plan_id: "mismatch".into(),
                name: "Mismatch".into(),
                asset_code: "BESITOS".into(),
                price: 10,
                period: Some(days(1)),
                revenue_account_id: xp_account,
                active: true,
                tenant_id: w.tenant.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("an account of another asset");
    assert_refused(&status, Code::FailedPrecondition, "REVENUE_ASSET_MISMATCH");
    let listed = w
        .coordinator
        .list_vip_plans(pb::ListVipPlansRequest {})
        .await
        .expect("plans")
        .into_inner()
        .plans;
    let ids: Vec<_> = listed.iter().map(|p| p.plan_id.as_str()).collect();
    assert_eq!(ids, ["monthly", "premium"]);
}

async fn access(
    w: &mut World,
    user: &str,
    fragment: &str,
    key: &str,
) -> Result<pb::AccessVipNarrativeResponse, tonic::Status> {
    w.coordinator
        .access_vip_narrative(pb::AccessVipNarrativeRequest {
            user_id: user.into(),
            fragment_id: fragment.into(),
            idempotency_key: key.into(),
            tenant_id: w.tenant.clone(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn vip_fragment(w: &mut World, required_items: Vec<narrative::ItemAmount>) -> String {
    let f = id();
    w.fragment(narrative::Fragment {
        id: f.clone(),
        title: "Secret".into(),
        content: "The secret text.".into(),
        preview: "A glimpse.".into(),
        vip_exclusive: true,
        requirements: Some(narrative::Requirements {
            required_items,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    f
}

#[tokio::test]
async fn a_user_without_vip_gets_the_preview_and_a_personalised_offer() {
    let mut w = World::start().await;
    plans(&mut w).await;
    let f = vip_fragment(&mut w, vec![]).await;
    let fresh = w.user().await;

    let answer = access(&mut w, &fresh, &f, "k1").await.expect("answered");
    assert!(!answer.success);
    assert_eq!(answer.reason, "vip_required");
    assert_eq!(answer.preview, "A glimpse.");
    assert!(answer.content.is_empty());
    assert_eq!(answer.vip_status, "none");
    assert!(matches!(
        answer.offer.as_ref().and_then(|o| o.offer.as_ref()),
        Some(pb::vip_offer::Offer::Trial(_))
    ));
    assert_eq!(w.events("coordinator.access_denied").await.len(), 1);
    assert_eq!(w.events("analytics.conversion_opportunity").await.len(), 1);
    assert_eq!(
        access(&mut w, &fresh, &f, "k1").await.expect("replay"),
        answer
    );
    assert_eq!(
        w.events("coordinator.access_denied").await.len(),
        1,
        "recorded once"
    );

    // Trial used, conversion score 70: the premium plan is offered.
    let lapsed = w.user().await;
    w.directory
        .start_vip_trial(directory::StartVipTrialRequest {
            user_id: lapsed.clone(),
            idempotency_key: id(),
            ..Default::default()
        })
        .await
        .expect("trial");
    w.directory
        .cancel_vip(directory::CancelVipRequest {
            user_id: lapsed.clone(),
            idempotency_key: id(),
            ..Default::default()
        })
        .await
        .expect("cancel");
    w.directory
        .update_user(directory::UpdateUserRequest {
            user: Some(directory::User {
                id: lapsed.clone(),
                conversion_score: Some(70.0),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["conversion_score".into()],
            }),
        })
        .await
        .expect("score");
    let answer = access(&mut w, &lapsed, &f, "k1").await.expect("answered");
    match answer.offer.and_then(|o| o.offer) {
        Some(pb::vip_offer::Offer::Plan(plan)) => assert_eq!(plan.plan_id, "premium"),
        other => panic!("expected the premium plan, got {other:?}"),
    }
}

#[tokio::test]
async fn a_vip_gets_the_content_and_a_missing_channel_membership_is_repaired() {
    let mut w = World::start().await;
    let f = vip_fragment(&mut w, vec![]).await;
    let user = w.user().await;
    w.make_vip(&user).await;
    // A VIP missing from the VIP channel (the seed's "rare case").
    w.directory
        .leave_channel(directory::LeaveChannelRequest {
            user_id: user.clone(),
            channel: directory::Channel::Vip.into(),
        })
        .await
        .expect("leave");
    assert!(!in_vip_channel(&mut w, &user).await);

    let answer = access(&mut w, &user, &f, "k1").await.expect("granted");
    assert!(answer.success, "{answer:?}");
    assert_eq!(answer.content, "The secret text.");
    assert_eq!(answer.vip_status, "active");
    assert!(answer.channel_repaired);
    assert!(in_vip_channel(&mut w, &user).await);
    assert_eq!(w.events("analytics.vip_content_accessed").await.len(), 1);

    let gated = vip_fragment(
        &mut w,
        vec![narrative::ItemAmount {
            item_id: "key".into(),
            quantity: 1,
        }],
    )
    .await;
    let answer = access(&mut w, &user, &gated, "k2").await.expect("answered");
    assert!(!answer.success);
    assert_eq!(answer.reason, "additional_requirements");
    assert_eq!(answer.missing.len(), 1);
    assert_eq!(answer.missing[0].kind(), pb::RequirementKind::Item);
    assert!(!answer.missing[0].suggestion.is_empty());
    assert!(answer.content.is_empty());

    let status = access(&mut w, &user, &id(), "k3")
        .await
        .expect_err("no fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    let status = access(&mut w, &user, &f, "k1")
        .await
        .map(|_| ())
        .and(access(&mut w, &user, &gated, "k1").await.map(|_| ()))
        .expect_err("another fragment under the key");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}
