//! Experiences through gRPC: ordered components, start and completion with rewards, the
//! compensations, abandonment, and their events.

mod common;

use common::{Client, count, fragment, id, upsert_fragment};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons, spawn};
use tonic::Code;

use pb::component_ref::Target as Ref;
use pb::experience_component::Target as T;

struct Journey {
    id: String,
    fragment: String,
}

async fn journey(client: &mut Client) -> Journey {
    let (experience, f) = (id(), id());
    upsert_fragment(client, fragment(&f, "Part two")).await;
    let components = [
        T::MissionId("m-1".into()),
        T::FragmentId(f.clone()),
        T::MissionId("m-3".into()),
    ]
    .into_iter()
    .map(|target| pb::ExperienceComponent {
        sequence: 0,
        target: Some(target),
    })
    .collect();
    let stored = client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: experience.clone(),
                title: "Three steps".into(),
                components,
                rewards: Some(pb::Rewards {
                    besitos: 100,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("experience")
        .into_inner();
    assert!(stored.created);
    let sequences: Vec<i32> = stored
        .experience
        .expect("experience")
        .components
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    Journey {
        id: experience,
        fragment: f,
    }
}

fn step(
    user: &str,
    experience: &str,
    target: Ref,
    key: &str,
) -> pb::ProgressExperienceComponentRequest {
    pb::ProgressExperienceComponentRequest {
        user_id: user.into(),
        experience_id: experience.into(),
        component: Some(pb::ComponentRef {
            target: Some(target),
        }),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn components_complete_in_order_and_the_last_completes_the_experience_once() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let j = journey(&mut client).await;
    let user = id();
    let unlocked = client
        .unlock_experience(pb::UnlockExperienceRequest {
            user_id: user.clone(),
            experience_id: j.id.clone(),
            idempotency_key: "u".into(),
        })
        .await
        .expect("unlocked")
        .into_inner();
    assert!(unlocked.newly_unlocked);
    assert_eq!(
        unlocked.progress.expect("progress").status(),
        pb::ExperienceStatus::NotStarted
    );

    let status = client
        .progress_experience_component(step(
            &user,
            &j.id,
            Ref::FragmentId(j.fragment.clone()),
            "p0",
        ))
        .await
        .expect_err("out of order");
    assert_refused(&status, Code::FailedPrecondition, "COMPONENT_OUT_OF_ORDER");
    let first = client
        .progress_experience_component(step(&user, &j.id, Ref::MissionId("m-1".into()), "p1"))
        .await
        .expect("first")
        .into_inner();
    assert_eq!(
        first.progress.expect("progress").status(),
        pb::ExperienceStatus::Started
    );
    client
        .progress_experience_component(step(
            &user,
            &j.id,
            Ref::FragmentId(j.fragment.clone()),
            "p2",
        ))
        .await
        .expect("second");
    let last = client
        .progress_experience_component(step(&user, &j.id, Ref::MissionId("m-3".into()), "p3"))
        .await
        .expect("last")
        .into_inner();
    assert!(last.completed_now);
    assert_eq!(last.rewards.clone().expect("rewards").besitos, 100);
    let done = last.progress.clone().expect("progress");
    assert_eq!(done.status(), pb::ExperienceStatus::Completed);
    assert_eq!(done.completed_sequences, [1, 2, 3]);
    let retry = client
        .progress_experience_component(step(&user, &j.id, Ref::MissionId("m-3".into()), "p3"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, last, "a retry answers the same rewards");
    let again = client
        .progress_experience_component(step(&user, &j.id, Ref::MissionId("m-3".into()), "p4"))
        .await
        .expect("already completed")
        .into_inner();
    assert!(!again.completed_now, "the rewards are answered once");
    let changes: Vec<String> = sqlx::query_scalar("SELECT event_type FROM events ORDER BY seq")
        .fetch_all(&service.pool)
        .await
        .expect("events");
    assert_eq!(
        changes.len(),
        6,
        "unlocked, started, 3 components, completed: {changes:?}"
    );

    // The compensation of the last component.
    let reverted = client
        .revert_experience_component(pb::RevertExperienceComponentRequest {
            user_id: user.clone(),
            experience_id: j.id.clone(),
            component: Some(pb::ComponentRef {
                target: Some(Ref::MissionId("m-3".into())),
            }),
            idempotency_key: "r1".into(),
        })
        .await
        .expect("reverted")
        .into_inner();
    assert_eq!(reverted.outcome(), pb::RevertOutcome::Reverted);
    assert_eq!(
        reverted.progress.expect("progress").status(),
        pb::ExperienceStatus::Started
    );
    let nothing = client
        .revert_experience_component(pb::RevertExperienceComponentRequest {
            user_id: user.clone(),
            experience_id: j.id.clone(),
            component: Some(pb::ComponentRef {
                target: Some(Ref::MissionId("m-3".into())),
            }),
            idempotency_key: "r2".into(),
        })
        .await
        .expect("a no-op")
        .into_inner();
    assert_eq!(nothing.outcome(), pb::RevertOutcome::NotApplied);

    let abandoned = client
        .abandon_experience(pb::AbandonExperienceRequest {
            user_id: user.clone(),
            experience_id: j.id.clone(),
            idempotency_key: "a".into(),
        })
        .await
        .expect("abandoned")
        .into_inner();
    assert_eq!(
        abandoned.progress.expect("progress").status(),
        pb::ExperienceStatus::Abandoned
    );
    let status = client
        .progress_experience_component(step(&user, &j.id, Ref::MissionId("m-3".into()), "p5"))
        .await
        .expect_err("abandoned");
    assert_refused(&status, Code::FailedPrecondition, "EXPERIENCE_ABANDONED");
    let p = common::progress(&mut client, &user).await;
    assert_eq!(p.experiences.len(), 1);
}

#[tokio::test]
async fn bad_experiences_and_components_are_refused_and_write_nothing() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let status = client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: id(),
                title: "Bad".into(),
                components: vec![
                    pb::ExperienceComponent {
                        sequence: 0,
                        target: Some(T::MissionId("m".into())),
                    },
                    pb::ExperienceComponent {
                        sequence: 0,
                        target: Some(T::MissionId("m".into())),
                    },
                    pb::ExperienceComponent {
                        sequence: 0,
                        target: None,
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .expect_err("refused");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "experience.components[1]".to_owned(),
                "DUPLICATE_ENTRY".to_owned()
            ),
            ("experience.components[2]".to_owned(), "REQUIRED".to_owned()),
        ]
    );
    let status = client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: id(),
                title: "Ghost".into(),
                components: vec![pb::ExperienceComponent {
                    sequence: 0,
                    target: Some(T::FragmentId(id())),
                }],
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown fragment");
    assert_refused(&status, Code::FailedPrecondition, "UNKNOWN_FRAGMENT");
    assert_eq!(
        field_reasons(&status)[0].0,
        "experience.components[0].fragment_id"
    );
    assert_eq!(count(&service.pool, "experiences").await, 0);

    let j = journey(&mut client).await;
    let user = id();
    let status = client
        .progress_experience_component(step(&user, &j.id, Ref::MissionId("m-9".into()), "k"))
        .await
        .expect_err("not a component");
    assert_refused(&status, Code::NotFound, "COMPONENT_NOT_FOUND");
    let status = client
        .progress_experience_component(step(&user, &id(), Ref::MissionId("m-1".into()), "k2"))
        .await
        .expect_err("unknown experience");
    assert_refused(&status, Code::NotFound, "EXPERIENCE_NOT_FOUND");
    let status = client
        .progress_experience_component(pb::ProgressExperienceComponentRequest {
            user_id: user.clone(),
            experience_id: j.id.clone(),
            component: None,
            idempotency_key: "k3".into(),
        })
        .await
        .expect_err("no component");
    assert_eq!(
        field_reasons(&status),
        [("component".to_owned(), "REQUIRED".to_owned())]
    );
    let status = client
        .abandon_experience(pb::AbandonExperienceRequest {
            user_id: user.clone(),
            experience_id: j.id.clone(),
            idempotency_key: "k4".into(),
        })
        .await
        .expect_err("not started");
    assert_refused(&status, Code::FailedPrecondition, "EXPERIENCE_NOT_STARTED");
    assert_eq!(count(&service.pool, "experience_progress").await, 0);
    assert_eq!(count(&service.pool, "events").await, 0);
}
