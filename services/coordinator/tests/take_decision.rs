//! TakeDecision through gRPC across the real directory, narrative, ledger and missions.

mod world;

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::events::v1 as events;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_testkit::{assert_refused, field_reasons, fields};
use tonic::Code;
use world::{World, id};

fn fragment(id: &str, title: &str) -> narrative::Fragment {
    narrative::Fragment {
        id: id.into(),
        title: title.into(),
        content: format!("The text of {title}."),
        preview: format!("A glimpse of {title}."),
        ..Default::default()
    }
}

fn item(code: &str, quantity: i64) -> narrative::ItemAmount {
    narrative::ItemAmount {
        item_id: code.into(),
        quantity,
    }
}

#[tokio::test]
async fn unmet_requirements_are_listed_with_suggestions_and_start_no_saga() {
    let mut w = World::start().await;
    let user = w.user().await;
    let (gate, other) = (id(), id());
    w.fragment(fragment(&other, "Other")).await;
    let mut locked = fragment(&gate, "Gate");
    locked.requirements = Some(narrative::Requirements {
        vip_required: true,
        min_level: 3,
        required_items: vec![item("key", 2)],
        required_achievement_ids: vec![id()],
        required_fragment_ids: vec![other.clone()],
        ..Default::default()
    });
    w.fragment(locked).await;
    let decision = w
        .decision(
            &gate,
            narrative::Rewards {
                besitos: 5,
                ..Default::default()
            },
        )
        .await;
    w.give_item(&user, "key", 1).await;
    w.fund(&user, "XP", 150).await;

    let answer = w
        .take(&user, &gate, &decision, "k1")
        .await
        .expect("answered");
    assert!(!answer.success);
    assert!(answer.saga_id.is_empty(), "no saga ran");
    let kinds: Vec<_> = answer
        .missing_requirements
        .iter()
        .map(|m| (m.kind(), m.required, m.current))
        .collect();
    assert_eq!(
        kinds,
        [
            (pb::RequirementKind::Vip, 1, 0),
            (pb::RequirementKind::Level, 3, 2),
            (pb::RequirementKind::Item, 2, 1),
            (pb::RequirementKind::Achievement, 1, 0),
            (pb::RequirementKind::Fragment, 1, 0),
        ]
    );
    assert!(
        answer.missing_requirements[1]
            .suggestion
            .contains("150 more XP"),
        "{}",
        answer.missing_requirements[1].suggestion
    );
    assert_eq!(answer.missing_requirements[4].id, other);
    assert!(
        answer
            .missing_requirements
            .iter()
            .all(|m| !m.suggestion.is_empty())
    );
    assert!(w.sagas("take_decision").await.is_empty());
    assert!(w.progress(&user).await.decisions.is_empty());
    let failed = w.events("coordinator.requirements_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].priority, 2, "the catalogue's NORMAL");
    let failed: events::CoordinatorRequirementsFailed = failed[0].decode();
    assert_eq!(
        (failed.user_id.as_str(), failed.fragment_id.as_str()),
        (user.as_str(), gate.as_str())
    );
    assert_eq!(failed.decision_id, decision);
    assert_eq!(failed.missing.len(), answer.missing_requirements.len());
    assert_eq!(failed.missing[1].kind, "level");
    assert_eq!(
        failed.missing[1].suggestion,
        answer.missing_requirements[1].suggestion
    );
    assert_eq!(failed.missing[4].requirement, other);

    // A replay answers the same and records nothing again.
    let replay = w
        .take(&user, &gate, &decision, "k1")
        .await
        .expect("replayed");
    assert_eq!(replay, answer);
    assert_eq!(w.events("coordinator.requirements_failed").await.len(), 1);

    let reused = w
        .take(&user, &gate, &id(), "k1")
        .await
        .expect_err("the key names another request");
    assert_refused(&reused, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

/// A fragment, the only component of an experience (20 besitos and a crown when completed),
/// whose decision grants besitos and items and unlocks a fragment; the user meets its VIP,
/// level and item requirements.
struct Story {
    user: String,
    fragment: String,
    next: String,
    experience: String,
    decision: String,
}

async fn story(
    w: &mut World,
    decision_items: Vec<narrative::ItemAmount>,
    experience_item: &str,
) -> Story {
    let user = w.user().await;
    let (start, next, experience) = (id(), id(), id());
    w.fragment(fragment(&next, "Next")).await;
    w.fragment(fragment(&start, "Start")).await;
    w.narrative
        .upsert_experience(narrative::UpsertExperienceRequest {
            experience: Some(narrative::Experience {
                id: experience.clone(),
                title: "Journey".into(),
                rewards: Some(narrative::Rewards {
                    besitos: 20,
                    items: vec![item(experience_item, 1)],
                    ..Default::default()
                }),
                components: vec![narrative::ExperienceComponent {
                    sequence: 1,
                    target: Some(narrative::experience_component::Target::FragmentId(
                        start.clone(),
                    )),
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("experience");
    let mut gated = fragment(&start, "Start");
    gated.experience_id = experience.clone();
    gated.experience_sequence = 1;
    gated.requirements = Some(narrative::Requirements {
        vip_required: true,
        min_level: 2,
        required_items: vec![item("key", 1)],
        ..Default::default()
    });
    gated.rewards = Some(narrative::Rewards {
        besitos: 10,
        unlock_fragment_ids: vec![next.clone()],
        ..Default::default()
    });
    w.fragment(gated).await;
    let decision = w
        .decision(
            &start,
            narrative::Rewards {
                besitos: 5,
                items: decision_items,
                ..Default::default()
            },
        )
        .await;
    w.make_vip(&user).await;
    w.give_item(&user, "key", 1).await;
    w.fund(&user, "XP", 100).await;
    Story {
        user,
        fragment: start,
        next,
        experience,
        decision,
    }
}

/// The decision's effects, each exactly once: its own rewards and those of the experience it
/// completed (20 besitos and a crown).
async fn effects_once(w: &mut World, s: &Story) {
    assert_eq!(w.balance(&s.user, "BESITOS").await, 15 + 20);
    assert_eq!(
        w.entries(&s.user, "BESITOS").await,
        2,
        "the decision's and the experience's"
    );
    let mut held = w.holdings(&s.user).await;
    held.sort();
    assert_eq!(
        held,
        [
            ("crown".to_owned(), 1),
            ("gem".to_owned(), 2),
            ("key".to_owned(), 1)
        ]
    );
    let progress = w.progress(&s.user).await;
    assert_eq!(progress.decisions.len(), 1);
    assert_eq!(progress.decisions[0].decision_id, s.decision);
    assert!(progress.unlocked_fragment_ids.contains(&s.next));
    assert_eq!(progress.experiences.len(), 1);
    assert_eq!(progress.experiences[0].completed_sequences, [1]);
}

#[tokio::test]
async fn met_requirements_run_the_saga_and_every_effect_lands_exactly_once() {
    let mut w = World::start().await;
    let s = story(&mut w, vec![item("gem", 2)], "crown").await;

    let answer = w
        .take(&s.user, &s.fragment, &s.decision, "k1")
        .await
        .expect("taken");
    assert!(answer.success, "{answer:?}");
    assert!(answer.missing_requirements.is_empty());
    assert!(!answer.saga_id.is_empty());
    let rewards = answer.rewards_granted.clone().expect("rewards");
    assert_eq!(rewards.besitos, 15);
    assert_eq!(rewards.unlock_fragment_ids, std::slice::from_ref(&s.next));
    assert_eq!(
        answer.experiences_updated,
        std::slice::from_ref(&s.experience)
    );

    effects_once(&mut w, &s).await;
    let taken = w.events("coordinator.decision_taken").await;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].priority, 3, "the catalogue's HIGH");
    let taken: events::CoordinatorDecisionTaken = taken[0].decode();
    assert_eq!(
        (
            taken.user_id.as_str(),
            taken.fragment_id.as_str(),
            taken.decision_id.as_str(),
            taken.saga_id.as_str()
        ),
        (
            s.user.as_str(),
            s.fragment.as_str(),
            s.decision.as_str(),
            answer.saga_id.as_str()
        )
    );
    assert!(taken.besitos_granted >= rewards.besitos);
    assert_eq!(taken.unlocked_fragment_ids, rewards.unlock_fragment_ids);
    assert_eq!(taken.experience_ids, answer.experiences_updated);

    let replay = w
        .take(&s.user, &s.fragment, &s.decision, "k1")
        .await
        .expect("replayed");
    assert_eq!(replay, answer, "the same saga's outcome");
    effects_once(&mut w, &s).await;
    assert_eq!(w.sagas("take_decision").await.len(), 1);
    assert_eq!(w.events("coordinator.decision_taken").await.len(), 1);

    let reused = w
        .take(&s.user, &s.next, &s.decision, "k1")
        .await
        .expect_err("another request under the key");
    assert_refused(&reused, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn a_failing_later_step_compensates_the_earlier_ones() {
    let mut w = World::start().await;
    // The ledger refuses this item code (a '/' is not allowed): add_items fails after the
    // decision was applied and the besitos granted.
    let s = story(&mut w, vec![item("bad/item", 1)], "crown").await;

    let answer = w
        .take(&s.user, &s.fragment, &s.decision, "k1")
        .await
        .expect("answered, not an error");
    assert!(!answer.success);
    let failure = answer.failure.expect("why");
    assert_eq!(failure.step, "add_items");
    assert_eq!(failure.state, "compensated");
    assert!(!failure.reason.is_empty());

    assert_eq!(
        w.balance(&s.user, "BESITOS").await,
        0,
        "the grant was reversed"
    );
    assert_eq!(
        w.entries(&s.user, "BESITOS").await,
        2,
        "grant and its reversal"
    );
    assert_eq!(w.holdings(&s.user).await, [("key".to_owned(), 1)]);
    let progress = w.progress(&s.user).await;
    assert!(progress.decisions.is_empty(), "the decision was reverted");
    assert!(!progress.unlocked_fragment_ids.contains(&s.next));
    assert!(w.events("coordinator.decision_taken").await.is_empty());
    let sagas = w.sagas("take_decision").await;
    assert_eq!(sagas.len(), 1);
    assert_eq!(sagas[0].1, "COMPENSATED");
}

#[tokio::test]
async fn unknown_users_fragments_and_decisions_are_refused_with_their_reason() {
    let mut w = World::start().await;
    let user = w.user().await;
    let f = id();
    w.fragment(fragment(&f, "F")).await;
    let d = w.decision(&f, narrative::Rewards::default()).await;

    let status = w.take(&id(), &f, &d, "k").await.expect_err("unknown user");
    assert_refused(&status, Code::NotFound, "USER_NOT_FOUND");
    let status = w
        .take(&user, &id(), &d, "k")
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    let status = w
        .take(&user, &f, &id(), "k")
        .await
        .expect_err("unknown decision");
    assert_refused(&status, Code::NotFound, "DECISION_NOT_FOUND");
    assert_eq!(fields(&status), ["decision_id"]);

    // The ledger tenant is the request's: an unknown one is the ledger's NOT_FOUND, a
    // malformed one a violation of its own.
    let request = |tenant: String| pb::TakeDecisionRequest {
        user_id: user.clone(),
        fragment_id: f.clone(),
        decision_id: d.clone(),
        idempotency_key: "k".into(),
        tenant_id: tenant,
    };
    let status = w
        .coordinator
        .take_decision(request(id()))
        .await
        .expect_err("unknown tenant");
    assert_refused(&status, Code::NotFound, "TENANT_NOT_FOUND");
    let status = w
        .coordinator
        .take_decision(request("acme".into()))
        .await
        .expect_err("malformed tenant");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        field_reasons(&status),
        [("tenant_id".to_owned(), "INVALID_ID".to_owned())]
    );

    let status = w.take("nope", &f, "", "").await.expect_err("bad input");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        ["user_id", "decision_id", "idempotency_key"]
    );
    assert!(w.sagas("take_decision").await.is_empty());
    assert!(w.events("coordinator.requirements_failed").await.is_empty());
}

#[tokio::test]
async fn a_failing_last_step_undoes_every_step_before_it() {
    let mut w = World::start().await;
    // The experience's item is refused by the ledger: the last step fails after the decision,
    // its besitos and items, the unlock, the experience's progress and its besitos.
    let s = story(&mut w, vec![item("gem", 2)], "bad/crown").await;

    let answer = w
        .take(&s.user, &s.fragment, &s.decision, "k1")
        .await
        .expect("answered, not an error");
    assert!(!answer.success);
    let failure = answer.failure.expect("why");
    assert_eq!(
        (failure.step.as_str(), failure.state.as_str()),
        ("add_experience_items", "compensated")
    );
    assert_eq!(w.balance(&s.user, "BESITOS").await, 0);
    assert_eq!(
        w.entries(&s.user, "BESITOS").await,
        4,
        "two grants, two reversals"
    );
    assert_eq!(
        w.holdings(&s.user).await,
        [("key".to_owned(), 1)],
        "gems removed"
    );
    let progress = w.progress(&s.user).await;
    assert!(progress.decisions.is_empty());
    assert!(!progress.unlocked_fragment_ids.contains(&s.next));
    assert!(
        progress
            .experiences
            .iter()
            .all(|e| e.completed_sequences.is_empty()),
        "the component was reverted: {:?}",
        progress.experiences
    );
}
