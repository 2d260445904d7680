//! Visits and metrics, unlocks and locks, requirement checks, personalised fragments and the
//! whole progress, through gRPC.

mod common;

use common::{Client, count, id, progress, story};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons, spawn};
use tonic::Code;

fn seconds(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: n,
        nanos: 0,
    })
}

fn visit(user: &str, fragment: &str, secs: i64, key: &str) -> pb::RecordVisitRequest {
    pb::RecordVisitRequest {
        user_id: user.into(),
        fragment_id: fragment.into(),
        time_spent: seconds(secs),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn visits_keep_the_fragments_metrics_and_a_retried_visit_counts_once() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let (ada, bob) = (id(), id());
    client
        .record_visit(visit(&ada, &s.a, 10, "v1"))
        .await
        .expect("visit");
    client
        .record_visit(visit(&ada, &s.a, 10, "v1"))
        .await
        .expect("the retry");
    client
        .record_visit(visit(&ada, &s.a, 20, "v2"))
        .await
        .expect("visit");
    let last = client
        .record_visit(visit(&bob, &s.a, 30, "v3"))
        .await
        .expect("visit")
        .into_inner();
    let metrics = last.metrics.expect("metrics");
    assert_eq!(
        (metrics.view_count, metrics.visitor_count),
        (3, 2),
        "the retry counted once"
    );
    assert_eq!(
        metrics.average_time_spent,
        seconds(20),
        "(10 + 20 + 30) / 3"
    );
    assert_eq!(last.progress.expect("progress").visit_count, 1);
    client
        .apply_decision(common::apply(&ada, &s.a, &s.d, "d1"))
        .await
        .expect("decided");
    let view = client
        .get_fragment(pb::GetFragmentRequest {
            fragment_id: s.a.clone(),
            user_id: ada.clone(),
            include_content: false,
        })
        .await
        .expect("fragment")
        .into_inner();
    let metrics = view.fragment.expect("fragment").metrics.expect("metrics");
    assert_eq!(metrics.completion_count, 1);
    assert!(
        (metrics.completion_rate - 50.0).abs() < 1e-9,
        "{}",
        metrics.completion_rate
    );
    let p = view.progress.expect("progress");
    assert_eq!((p.visit_count, p.time_spent), (2, seconds(30)));
    assert_eq!(p.decision_id, s.d);

    let status = client
        .record_visit(visit(&ada, &id(), 1, "v4"))
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    let status = client
        .record_visit(visit(&ada, &s.a, 90_000, "v5"))
        .await
        .expect_err("a day and more");
    assert_eq!(
        field_reasons(&status),
        [("time_spent".to_owned(), "INVALID_DURATION".to_owned())]
    );
}

#[tokio::test]
async fn unlocks_answer_what_they_unlocked_and_locks_undo_exactly_that() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    let unlock = |ids: Vec<String>, key: &str| pb::UnlockFragmentsRequest {
        user_id: user.clone(),
        fragment_ids: ids,
        idempotency_key: key.into(),
    };
    let first = client
        .unlock_fragments(unlock(vec![s.a.clone()], "u1"))
        .await
        .expect("unlocked")
        .into_inner();
    assert_eq!(first.unlocked_fragment_ids, std::slice::from_ref(&s.a));
    let second = client
        .unlock_fragments(unlock(vec![s.a.clone(), s.b.clone()], "u2"))
        .await
        .expect("unlocked")
        .into_inner();
    assert_eq!(second.unlocked_fragment_ids, std::slice::from_ref(&s.b));
    assert_eq!(
        second.already_unlocked_fragment_ids,
        std::slice::from_ref(&s.a)
    );
    let replay = client
        .unlock_fragments(unlock(vec![s.a.clone(), s.b.clone()], "u2"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(replay, second);

    // The compensation of u2 locks what u2 unlocked.
    let locked = client
        .lock_fragments(pb::LockFragmentsRequest {
            user_id: user.clone(),
            fragment_ids: second.unlocked_fragment_ids.clone(),
            idempotency_key: "l1".into(),
        })
        .await
        .expect("locked")
        .into_inner();
    assert_eq!(locked.locked_fragment_ids, std::slice::from_ref(&s.b));
    let p = progress(&mut client, &user).await;
    assert_eq!(p.unlocked_fragment_ids, std::slice::from_ref(&s.a));
    let again = client
        .lock_fragments(pb::LockFragmentsRequest {
            user_id: user.clone(),
            fragment_ids: vec![s.b.clone()],
            idempotency_key: "l2".into(),
        })
        .await
        .expect("a no-op")
        .into_inner();
    assert_eq!(again.not_unlocked_fragment_ids, std::slice::from_ref(&s.b));

    let missing = id();
    let status = client
        .unlock_fragments(unlock(vec![s.a.clone(), missing.clone()], "u3"))
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
    assert_eq!(
        field_reasons(&status),
        [(
            "fragment_ids[1]".to_owned(),
            "FRAGMENT_NOT_FOUND".to_owned()
        )]
    );
    let status = client
        .unlock_fragments(unlock(vec![s.a.clone(), s.a.clone(), "x".into()], "u4"))
        .await
        .expect_err("malformed");
    assert_eq!(
        field_reasons(&status),
        [
            ("fragment_ids[2]".to_owned(), "INVALID_ID".to_owned()),
            ("fragment_ids[1]".to_owned(), "DUPLICATE_ENTRY".to_owned()),
        ]
    );
    let status = client
        .unlock_fragments(unlock(vec![], "u5"))
        .await
        .expect_err("empty");
    assert_refused(&status, Code::InvalidArgument, "REQUIRED");
}

#[tokio::test]
async fn a_requirement_check_answers_what_is_known_and_the_external_facts() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let experience = id();
    client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: experience.clone(),
                title: "Journey".into(),
                components: vec![pb::ExperienceComponent {
                    sequence: 0,
                    target: Some(pb::experience_component::Target::MissionId("m-1".into())),
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("experience");
    let gated = id();
    let mut fragment = common::fragment(&gated, "VIP room");
    fragment.vip_exclusive = true;
    fragment.requirements = Some(pb::Requirements {
        min_level: 5,
        required_items: vec![pb::ItemAmount {
            item_id: "key".into(),
            quantity: 1,
        }],
        required_achievement_ids: vec!["brave".into()],
        required_fragment_ids: vec![s.b.clone()],
        required_experience_ids: vec![experience.clone()],
        ..Default::default()
    });
    common::upsert_fragment(&mut client, fragment).await;
    let user = id();
    let check = |user: &str| pb::CheckFragmentRequirementsRequest {
        user_id: user.into(),
        fragment_id: gated.clone(),
    };
    let c = client
        .check_fragment_requirements(check(&user))
        .await
        .expect("checked")
        .into_inner()
        .check
        .expect("check");
    assert_eq!(c.status(), pb::RequirementStatus::NotMet);
    assert_eq!(c.missing_fragment_ids, std::slice::from_ref(&s.b));
    assert_eq!(c.missing_experience_ids, std::slice::from_ref(&experience));
    use pb::external_fact::Fact;
    let facts: Vec<Fact> = c
        .external_facts
        .into_iter()
        .filter_map(|f| f.fact)
        .collect();
    assert_eq!(
        facts,
        [
            Fact::Vip(true),
            Fact::MinLevel(5),
            Fact::Item(pb::ItemAmount {
                item_id: "key".into(),
                quantity: 1
            }),
            Fact::AchievementId("brave".into()),
        ]
    );
    client
        .unlock_fragments(pb::UnlockFragmentsRequest {
            user_id: user.clone(),
            fragment_ids: vec![s.b.clone()],
            idempotency_key: "u".into(),
        })
        .await
        .expect("unlocked");
    client
        .progress_experience_component(pb::ProgressExperienceComponentRequest {
            user_id: user.clone(),
            experience_id: experience.clone(),
            component: Some(pb::ComponentRef {
                target: Some(pb::component_ref::Target::MissionId("m-1".into())),
            }),
            idempotency_key: "p".into(),
        })
        .await
        .expect("completed");
    let c = client
        .check_fragment_requirements(check(&user))
        .await
        .expect("checked")
        .into_inner()
        .check
        .expect("check");
    assert_eq!(c.status(), pb::RequirementStatus::NeedsExternalFacts);
    assert!(c.missing_fragment_ids.is_empty() && c.missing_experience_ids.is_empty());

    // The personalised fragment shows the preview until the external facts are resolved.
    let view = client
        .get_fragment(pb::GetFragmentRequest {
            fragment_id: gated.clone(),
            user_id: user.clone(),
            include_content: false,
        })
        .await
        .expect("fragment")
        .into_inner();
    assert!(!view.content_shown);
    assert_eq!(
        view.check.clone().expect("check").status(),
        pb::RequirementStatus::NeedsExternalFacts,
        "the personalised read knows the unlock and the completed experience"
    );
    let shown = view.fragment.expect("fragment");
    assert!(shown.content.is_empty());
    assert_eq!(shown.preview, "A glimpse of VIP room.");
    let view = client
        .get_fragment(pb::GetFragmentRequest {
            fragment_id: gated.clone(),
            user_id: user.clone(),
            include_content: true,
        })
        .await
        .expect("fragment")
        .into_inner();
    assert!(view.content_shown);
    assert_eq!(
        view.fragment.expect("fragment").content,
        "The text of VIP room."
    );
    let open = client
        .get_fragment(pb::GetFragmentRequest {
            fragment_id: s.b.clone(),
            user_id: String::new(),
            include_content: false,
        })
        .await
        .expect("fragment")
        .into_inner();
    assert!(
        open.content_shown,
        "a fragment without requirements is open"
    );
    assert!(open.check.is_none() && open.progress.is_none());

    let status = client
        .check_fragment_requirements(check("bad"))
        .await
        .expect_err("malformed");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    let status = client
        .get_fragment(pb::GetFragmentRequest {
            fragment_id: id(),
            ..Default::default()
        })
        .await
        .expect_err("unknown");
    assert_refused(&status, Code::NotFound, "FRAGMENT_NOT_FOUND");
}

#[tokio::test]
async fn a_user_who_did_nothing_has_empty_progress() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let user = id();
    let p = progress(&mut client, &user).await;
    assert_eq!(p.user_id, user);
    assert!(p.fragments.is_empty() && p.decisions.is_empty() && p.last_activity_time.is_none());
    assert_eq!(
        count(&service.pool, "user_states").await,
        0,
        "a read writes nothing"
    );
}
