//! What a review found: the sagas' grants and compensations are the coordinator's alone,
//! limits that answer the right reason first, and races on one user that the database and
//! the user's lock must settle (one decision, one completion, one payout, no loop of next
//! fragments however the upserts interleave).

mod common;

use common::{Client, count, decision, fragment, id, story, upsert_fragment};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::{
    TEST_SECRET, assert_refused, bearer, field_reasons, signed, spawn, spawn_with,
};
use tonic::Code;

#[tokio::test]
async fn a_user_cannot_make_the_sagas_grants_and_compensations_for_themselves() {
    let service = spawn_with(phoenix_narrative::spec(), |c| {
        c.auth.hs256_secret = Some(TEST_SECRET.into())
    })
    .await;
    let mut client = Client::new(service.channel.clone());
    let admin = bearer(
        TEST_SECRET,
        serde_json::json!({"sub": "ops", "roles": ["narrative-admin"]}),
    );
    let user = id();
    let me = bearer(TEST_SECRET, serde_json::json!({"sub": user}));
    let (a, b, d) = (id(), id(), id());
    for (f, title) in [(&b, "B"), (&a, "A")] {
        client
            .upsert_fragment(signed(
                pb::UpsertFragmentRequest {
                    fragment: Some(fragment(f, title)),
                },
                &admin,
            ))
            .await
            .expect("fragment");
    }
    client
        .upsert_decision(signed(
            pb::UpsertDecisionRequest {
                decision: Some(decision(&d, &a, &b, 5)),
            },
            &admin,
        ))
        .await
        .expect("decision");
    // Theirs to make: a decision on their own progress.
    client
        .apply_decision(signed(common::apply(&user, &a, &d, "mine"), &me))
        .await
        .expect("a user takes their own decision");
    // Not theirs: undoing it (the rewards were granted) or unlocking content.
    let status = client
        .revert_decision(signed(
            pb::RevertDecisionRequest {
                user_id: user.clone(),
                fragment_id: a.clone(),
                decision_id: d.clone(),
                idempotency_key: "undo".into(),
            },
            &me,
        ))
        .await
        .expect_err("a revert is a saga's compensation");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = client
        .unlock_fragments(signed(
            pb::UnlockFragmentsRequest {
                user_id: user.clone(),
                fragment_ids: vec![b.clone()],
                idempotency_key: "unlock".into(),
            },
            &me,
        ))
        .await
        .expect_err("an unlock is a saga's grant");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    let status = client
        .revert_reaction(signed(
            pb::RevertReactionRequest {
                user_id: user.clone(),
                content: Some(pb::ContentRef {
                    kind: pb::ContentKind::Fragment.into(),
                    content_id: a.clone(),
                }),
                reaction: "like".into(),
                idempotency_key: "unreact".into(),
            },
            &me,
        ))
        .await
        .expect_err("a reaction's revert is a saga's compensation");
    assert_refused(&status, Code::PermissionDenied, "ROLE_REQUIRED");
    assert_eq!(count(&service.pool, "user_decisions").await, 1);
    let unlocked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM fragment_progress WHERE unlocked_at IS NOT NULL")
            .fetch_one(&service.pool)
            .await
            .expect("count");
    assert_eq!(unlocked, 0, "nothing unlocked");
    // The coordinator may.
    let reverted = client
        .revert_decision(signed(
            pb::RevertDecisionRequest {
                user_id: user.clone(),
                fragment_id: a.clone(),
                decision_id: d.clone(),
                idempotency_key: "undo".into(),
            },
            &admin,
        ))
        .await
        .expect("the admin compensates")
        .into_inner();
    assert_eq!(reverted.outcome(), pb::RevertOutcome::Reverted);
}

#[tokio::test]
async fn two_upserts_that_each_close_half_a_loop_cannot_both_pass_and_the_database_refuses_a_loop()
{
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    for _ in 0..8 {
        let (a, b) = (id(), id());
        upsert_fragment(&mut client, fragment(&a, "A")).await;
        upsert_fragment(&mut client, fragment(&b, "B")).await;
        let calls = [(a.clone(), b.clone()), (b.clone(), a.clone())].map(|(from, to)| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .upsert_decision(pb::UpsertDecisionRequest {
                        decision: Some(decision(&id(), &from, &to, 0)),
                    })
                    .await
            })
        });
        let answers = futures_util::future::join_all(calls).await;
        let refused: Vec<_> = answers
            .iter()
            .filter_map(|a| a.as_ref().expect("joined").as_ref().err())
            .collect();
        assert_eq!(refused.len(), 1, "one of a -> b and b -> a passes");
        assert_refused(refused[0], Code::FailedPrecondition, "NEXT_FRAGMENT_CYCLE");
    }
    assert_eq!(count(&service.pool, "decisions").await, 8);

    // The database's own rule: a link written around the service that closes a loop.
    let (a, b, c) = (id(), id(), id());
    for f in [&a, &b, &c] {
        upsert_fragment(&mut client, fragment(f, "F")).await;
    }
    common::upsert_decision(&mut client, decision(&id(), &a, &b, 0)).await;
    common::upsert_decision(&mut client, decision(&id(), &b, &c, 0)).await;
    let refused = sqlx::query(
        "INSERT INTO decisions (id, fragment_id, label, next_fragment_id)
         VALUES ($1::uuid, $2::uuid, 'back', $3::uuid)",
    )
    .bind(id())
    .bind(&c)
    .bind(&a)
    .execute(&service.pool)
    .await
    .expect_err("c -> a closes a -> b -> c -> a");
    let database = refused.as_database_error().expect("a database error");
    assert_eq!(database.constraint(), Some("decisions_acyclic"));
    assert_eq!(database.code().as_deref(), Some("23514"));
    // Nor may an existing link be turned around.
    let refused = sqlx::query(
        "UPDATE decisions SET next_fragment_id = $1::uuid WHERE fragment_id = $2::uuid",
    )
    .bind(&a)
    .bind(&b)
    .execute(&service.pool)
    .await
    .expect_err("b -> a closes a -> b -> a");
    assert_eq!(
        refused.as_database_error().and_then(|e| e.constraint()),
        Some("decisions_acyclic")
    );
    // A branch that meets another again is no loop.
    common::upsert_decision(&mut client, decision(&id(), &a, &c, 0)).await;
}

async fn join<T: Send + 'static>(
    calls: impl IntoIterator<Item = tokio::task::JoinHandle<Result<tonic::Response<T>, tonic::Status>>>,
) -> Vec<Result<T, tonic::Status>> {
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("joined").map(tonic::Response::into_inner))
        .collect()
}

#[tokio::test]
async fn concurrent_decisions_and_reverts_leave_a_state_their_answers_account_for() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let user = id();
    let calls = (0..16).map(|n| {
        let mut client = client.clone();
        let (user, a, d) = (user.clone(), s.a.clone(), s.d.clone());
        tokio::spawn(async move {
            let key = format!("k-{n}");
            if n % 2 == 0 {
                client
                    .apply_decision(common::apply(&user, &a, &d, &key))
                    .await
                    .map(|r| r.map(|_| true))
            } else {
                client
                    .revert_decision(pb::RevertDecisionRequest {
                        user_id: user,
                        fragment_id: a,
                        decision_id: d,
                        idempotency_key: key,
                    })
                    .await
                    .map(|r| r.map(|r| r.outcome() == pb::RevertOutcome::Reverted))
            }
        })
    });
    let answers = join(calls).await;
    let (mut applied, mut reverted) = (0, 0);
    for (n, answer) in answers.iter().enumerate() {
        match answer {
            Ok(true) if n % 2 == 0 => applied += 1,
            Ok(true) => reverted += 1,
            Ok(false) => {}
            Err(status) => assert_refused(status, Code::AlreadyExists, "DECISION_ALREADY_TAKEN"),
        }
    }
    let decisions = count(&service.pool, "user_decisions").await;
    assert_eq!(
        decisions,
        applied - reverted,
        "every decision applied is there unless a revert answered it undone"
    );
    let completions: i64 =
        sqlx::query_scalar("SELECT completion_count FROM fragments WHERE id = $1::uuid")
            .bind(&s.a)
            .fetch_one(&service.pool)
            .await
            .expect("metrics");
    assert_eq!(completions, decisions);
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, aggregate_version FROM events ORDER BY aggregate_version",
    )
    .fetch_all(&service.pool)
    .await
    .expect("events");
    let taken = events
        .iter()
        .filter(|(t, _)| t == "phoenix.narrative.v1.DecisionTaken")
        .count() as i64;
    let undone = events
        .iter()
        .filter(|(t, _)| t == "phoenix.narrative.v1.DecisionReverted")
        .count() as i64;
    assert_eq!((taken, undone), (applied, reverted), "one event per change");
    let versions: Vec<i64> = events.iter().map(|(_, v)| *v).collect();
    assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_last_component_completes_the_experience_once_however_many_race_for_it() {
    use pb::component_ref::Target as Ref;
    use pb::experience_component::Target as T;
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let experience = id();
    client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: experience.clone(),
                title: "Two steps".into(),
                components: ["m-1", "m-2"]
                    .map(|m| pb::ExperienceComponent {
                        sequence: 0,
                        target: Some(T::MissionId(m.into())),
                    })
                    .into(),
                rewards: Some(pb::Rewards {
                    besitos: 50,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("experience");
    let user = id();
    let step = |mission: &str, key: String| pb::ProgressExperienceComponentRequest {
        user_id: user.clone(),
        experience_id: experience.clone(),
        component: Some(pb::ComponentRef {
            target: Some(Ref::MissionId(mission.into())),
        }),
        idempotency_key: key,
    };
    client
        .progress_experience_component(step("m-1", "first".into()))
        .await
        .expect("first");
    let calls = (0..12).map(|n| {
        let mut client = client.clone();
        let request = step(
            "m-2",
            if n < 6 {
                format!("k-{n}")
            } else {
                "same".into()
            },
        );
        tokio::spawn(async move { client.progress_experience_component(request).await })
    });
    let answers = join(calls).await;
    let paid: i64 = answers
        .iter()
        .map(|a| a.as_ref().expect("progressed"))
        .filter(|a| a.completed_now)
        .map(|a| a.rewards.as_ref().map_or(0, |r| r.besitos))
        .sum();
    let completions = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|a| a.completed_now))
        .count();
    let replays_of_same = answers[6..]
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|a| a.completed_now))
        .count();
    assert!(
        replays_of_same == 0 || replays_of_same == 6,
        "one key answers one outcome"
    );
    assert!(completions >= 1);
    // Every answer of the completing key says completed_now; any other key says it was not.
    assert_eq!(
        paid,
        50 * completions as i64,
        "the rewards are answered with completed_now only"
    );
    let keys_that_completed = if replays_of_same == 6 {
        1 + answers[..6]
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|a| a.completed_now))
            .count()
    } else {
        answers[..6]
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|a| a.completed_now))
            .count()
    };
    assert_eq!(keys_that_completed, 1, "one call completed it");
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'phoenix.narrative.v1.ExperienceChanged'
         AND payload IS NOT NULL",
    )
    .fetch_one(&service.pool)
    .await
    .expect("events");
    // started, component 1, component 2, completed.
    assert_eq!(completed, 4);
}

#[tokio::test]
async fn concurrent_reactions_pay_the_reward_once_and_unlocks_race_locks_cleanly() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let content = Some(pb::ContentRef {
        kind: pb::ContentKind::Fragment.into(),
        content_id: s.a.clone(),
    });
    client
        .upsert_reaction_reward(pb::UpsertReactionRewardRequest {
            reward: Some(pb::ReactionReward {
                content: content.clone(),
                reaction: "❤️".into(),
                besitos: 7,
                active: true,
            }),
        })
        .await
        .expect("reward");
    let user = id();
    let calls = (0..12).map(|n| {
        let mut client = client.clone();
        let request = pb::RegisterReactionRequest {
            user_id: user.clone(),
            content: content.clone(),
            reaction: "❤️".into(),
            idempotency_key: format!("r-{n}"),
        };
        tokio::spawn(async move { client.register_reaction(request).await })
    });
    let answers = join(calls).await;
    let paid: i64 = answers
        .iter()
        .map(|a| a.as_ref().expect("registered").besitos_to_grant)
        .sum();
    assert_eq!(paid, 7, "paid once");
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|a| a.created))
            .count(),
        1
    );
    assert_eq!(count(&service.pool, "reactions").await, 1);

    let calls = (0..12).map(|n| {
        let mut client = client.clone();
        let (user, b) = (user.clone(), s.b.clone());
        tokio::spawn(async move {
            let key = format!("u-{n}");
            if n % 2 == 0 {
                client
                    .unlock_fragments(pb::UnlockFragmentsRequest {
                        user_id: user,
                        fragment_ids: vec![b],
                        idempotency_key: key,
                    })
                    .await
                    .map(|r| r.map(|r| (r.unlocked_fragment_ids.len() as i64, 0)))
            } else {
                client
                    .lock_fragments(pb::LockFragmentsRequest {
                        user_id: user,
                        fragment_ids: vec![b],
                        idempotency_key: key,
                    })
                    .await
                    .map(|r| r.map(|r| (0, r.locked_fragment_ids.len() as i64)))
            }
        })
    });
    let (unlocked, locked) = join(calls)
        .await
        .into_iter()
        .map(|a| a.expect("no refusal"))
        .fold((0, 0), |(u, l), (du, dl)| (u + du, l + dl));
    let now_unlocked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM fragment_progress WHERE unlocked_at IS NOT NULL")
            .fetch_one(&service.pool)
            .await
            .expect("count");
    assert_eq!(
        now_unlocked,
        unlocked - locked,
        "the answers account for the state"
    );
    assert!(unlocked - locked == 0 || unlocked - locked == 1);
}

#[tokio::test]
async fn a_revert_that_undoes_a_completion_answers_the_rewards_to_take_back() {
    use pb::component_ref::Target as Ref;
    use pb::experience_component::Target as T;
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let experience = id();
    client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: experience.clone(),
                title: "Two steps".into(),
                components: ["m-1", "m-2"]
                    .map(|m| pb::ExperienceComponent {
                        sequence: 0,
                        target: Some(T::MissionId(m.into())),
                    })
                    .into(),
                rewards: Some(pb::Rewards {
                    besitos: 50,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("experience");
    let user = id();
    let component = |mission: &str| {
        Some(pb::ComponentRef {
            target: Some(Ref::MissionId(mission.into())),
        })
    };
    let step = |mission: &str, key: &str| pb::ProgressExperienceComponentRequest {
        user_id: user.clone(),
        experience_id: experience.clone(),
        component: component(mission),
        idempotency_key: key.into(),
    };
    let revert = |mission: &str, key: &str| pb::RevertExperienceComponentRequest {
        user_id: user.clone(),
        experience_id: experience.clone(),
        component: component(mission),
        idempotency_key: key.into(),
    };
    let mut paid = 0;
    for (mission, key) in [("m-1", "p1"), ("m-2", "p2")] {
        let answer = client
            .progress_experience_component(step(mission, key))
            .await
            .expect("progressed")
            .into_inner();
        paid += answer.rewards.map_or(0, |r| r.besitos);
    }
    assert_eq!(paid, 50);
    // A compensation of the first component (another saga's) undoes the completion.
    let undone = client
        .revert_experience_component(revert("m-1", "r1"))
        .await
        .expect("reverted")
        .into_inner();
    assert_eq!(undone.outcome(), pb::RevertOutcome::Reverted);
    assert_eq!(
        undone.progress.as_ref().expect("progress").status(),
        pb::ExperienceStatus::Started
    );
    assert_eq!(
        undone.rewards.as_ref().map(|r| r.besitos),
        Some(50),
        "the completion's rewards, to take back"
    );
    let retried = client
        .revert_experience_component(revert("m-1", "r1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(retried, undone, "a retry answers the same");
    let second = client
        .revert_experience_component(revert("m-2", "r2"))
        .await
        .expect("reverted")
        .into_inner();
    assert_eq!(
        second.rewards.as_ref().map_or(0, |r| r.besitos),
        0,
        "no completion to undo any more"
    );
    // Completing it again answers the rewards again: paid, taken back, paid.
    for (mission, key) in [("m-1", "p3"), ("m-2", "p4")] {
        let answer = client
            .progress_experience_component(step(mission, key))
            .await
            .expect("progressed")
            .into_inner();
        paid += answer.rewards.map_or(0, |r| r.besitos);
    }
    assert_eq!(paid - 50, 50, "net once");
}

#[tokio::test]
async fn the_database_refuses_a_decision_of_another_fragment_and_impossible_experience_progress() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let refused = sqlx::query(
        "INSERT INTO user_decisions (user_id, fragment_id, decision_id, rewards, taken_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, '{}', now())",
    )
    .bind(id())
    .bind(&s.b)
    .bind(&s.d)
    .execute(&service.pool)
    .await
    .expect_err("d is a's decision, not b's");
    assert_eq!(
        refused.as_database_error().and_then(|e| e.constraint()),
        Some("user_decisions_of_fragment")
    );
    let experience = id();
    client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: experience.clone(),
                title: "One step".into(),
                components: vec![pb::ExperienceComponent {
                    sequence: 0,
                    target: Some(pb::experience_component::Target::MissionId("m".into())),
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("experience");
    for (status, sequences, started, constraint) in [
        (
            "started",
            "{}",
            "now()",
            "experience_progress_has_components",
        ),
        ("started", "{1}", "NULL", "experience_progress_started"),
        (
            "not_started",
            "{0}",
            "NULL",
            "experience_progress_sequences",
        ),
    ] {
        let refused = sqlx::query(&format!(
            "INSERT INTO experience_progress (user_id, experience_id, status,
                 completed_sequences, started_at, last_activity_at)
             VALUES ($1::uuid, $2::uuid, $3, $4::integer[], {started}, now())"
        ))
        .bind(id())
        .bind(&experience)
        .bind(status)
        .bind(sequences)
        .execute(&service.pool)
        .await
        .expect_err(constraint);
        assert_eq!(
            refused.as_database_error().and_then(|e| e.constraint()),
            Some(constraint)
        );
    }
    assert_eq!(count(&service.pool, "experience_progress").await, 0);
}

#[tokio::test]
async fn a_huge_list_is_refused_for_its_length_first_and_a_malformed_duration_is_refused() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let mut huge = fragment(&id(), "Huge");
    huge.requirements = Some(pb::Requirements {
        required_fragment_ids: vec!["not-a-uuid".into(); 100_000],
        ..Default::default()
    });
    huge.rewards = Some(pb::Rewards {
        unlock_experience_ids: vec![id(); 51],
        ..Default::default()
    });
    let status = client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(huge),
        })
        .await
        .expect_err("too many entries");
    assert_refused(&status, Code::InvalidArgument, "TOO_MANY_ENTRIES");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "fragment.requirements.required_fragment_ids".to_owned(),
                "TOO_MANY_ENTRIES".to_owned()
            ),
            (
                "fragment.rewards.unlock_experience_ids".to_owned(),
                "TOO_MANY_ENTRIES".to_owned()
            ),
        ],
        "one violation per list, not one per entry"
    );
    assert_eq!(count(&service.pool, "fragments").await, 0);

    let s = story(&mut client).await;
    for (seconds, nanos) in [
        (0, 2_000_000_000),
        (1, -1),
        (-1, 999_999_999),
        (0, i32::MIN),
    ] {
        let status = client
            .record_visit(pb::RecordVisitRequest {
                user_id: id(),
                fragment_id: s.a.clone(),
                time_spent: Some(prost_types::Duration { seconds, nanos }),
                idempotency_key: id(),
            })
            .await
            .expect_err("a malformed duration");
        assert_refused(&status, Code::InvalidArgument, "INVALID_DURATION");
        assert_eq!(
            field_reasons(&status),
            [("time_spent".to_owned(), "INVALID_DURATION".to_owned())]
        );
    }
    assert_eq!(count(&service.pool, "fragment_progress").await, 0);
}

#[tokio::test]
async fn a_second_decision_names_the_decision_that_holds_the_fragment() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let s = story(&mut client).await;
    let other = id();
    common::upsert_decision(&mut client, decision(&other, &s.a, "", 1)).await;
    let user = id();
    client
        .apply_decision(common::apply(&user, &s.a, &s.d, "first"))
        .await
        .expect("applied");
    for (decision, key) in [(&other, "another"), (&s.d, "same-decision-new-key")] {
        let status = client
            .apply_decision(common::apply(&user, &s.a, decision, key))
            .await
            .expect_err("the fragment is decided");
        assert_refused(&status, Code::AlreadyExists, "DECISION_ALREADY_TAKEN");
        assert_eq!(
            phoenix_testkit::metadata(&status, "taken_decision_id"),
            Some(s.d.clone())
        );
        assert_eq!(
            phoenix_testkit::metadata(&status, "fragment_id"),
            Some(s.a.clone())
        );
    }
    assert_eq!(count(&service.pool, "user_decisions").await, 1);
}

#[tokio::test]
async fn nul_bytes_and_keys_reused_across_methods_are_refused_and_write_nothing() {
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let mut bad = fragment(&id(), "ti\0tle");
    bad.content = "con\0tent".into();
    bad.rewards = Some(pb::Rewards {
        achievement_ids: vec!["a\0b".into()],
        ..Default::default()
    });
    let status = client
        .upsert_fragment(pb::UpsertFragmentRequest {
            fragment: Some(bad),
        })
        .await
        .expect_err("NUL bytes");
    assert_refused(&status, Code::InvalidArgument, "CONTROL_CHARACTER");
    assert_eq!(
        field_reasons(&status),
        [
            ("fragment.title".to_owned(), "CONTROL_CHARACTER".to_owned()),
            (
                "fragment.content".to_owned(),
                "CONTROL_CHARACTER".to_owned()
            ),
            (
                "fragment.preview".to_owned(),
                "CONTROL_CHARACTER".to_owned()
            ),
            (
                "fragment.rewards.achievement_ids[0]".to_owned(),
                "INVALID_EXTERNAL_ID".to_owned()
            ),
        ]
    );
    let s = story(&mut client).await;
    let user = id();
    let status = client
        .register_reaction(pb::RegisterReactionRequest {
            user_id: user.clone(),
            content: Some(pb::ContentRef {
                kind: pb::ContentKind::ChannelPost.into(),
                content_id: "post\0".into(),
            }),
            reaction: "li\0ke".into(),
            idempotency_key: "nul".into(),
        })
        .await
        .expect_err("NUL bytes");
    assert_refused(&status, Code::InvalidArgument, "CONTROL_CHARACTER");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "content.content_id".to_owned(),
                "CONTROL_CHARACTER".to_owned()
            ),
            ("reaction".to_owned(), "CONTROL_CHARACTER".to_owned()),
        ]
    );
    // A key of one method reused for another: refused, and the second change is not made.
    client
        .record_visit(pb::RecordVisitRequest {
            user_id: user.clone(),
            fragment_id: s.a.clone(),
            time_spent: None,
            idempotency_key: "shared".into(),
        })
        .await
        .expect("visit");
    let status = client
        .apply_decision(common::apply(&user, &s.a, &s.d, "shared"))
        .await
        .expect_err("the key is the visit's");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        field_reasons(&status),
        [(
            "idempotency_key".to_owned(),
            "IDEMPOTENCY_KEY_REUSED".to_owned()
        )]
    );
    let status = client
        .unlock_experience(pb::UnlockExperienceRequest {
            user_id: user.clone(),
            experience_id: id(),
            idempotency_key: "shared".into(),
        })
        .await
        .expect_err("the key is the visit's");
    // The experience does not exist either: the key's refusal says more.
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(count(&service.pool, "user_decisions").await, 0);
    assert_eq!(count(&service.pool, "reactions").await, 0);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&service.pool)
        .await
        .expect("events");
    assert_eq!(events, 1, "the visit's only");
}

#[tokio::test]
async fn the_integrity_migration_goes_down_and_up_again() {
    use phoenix_runtime::migrate::Migrator;
    let spec = phoenix_narrative::spec();
    let database = phoenix_testkit::TestDatabase::create().await;
    let pool = database.pool(spec.name).await;
    let set = spec.migration_set().expect("migrations");
    let migrator = Migrator::new(&set, &pool);
    let trigger = "SELECT count(*) FROM pg_trigger WHERE tgname = 'decisions_acyclic'";
    migrator.up(None, false).await.expect("up");
    let installed: i64 = sqlx::query_scalar(trigger)
        .fetch_one(&pool)
        .await
        .expect("q");
    assert_eq!(installed, 1);
    migrator.down(1, false).await.expect("down one");
    let removed: i64 = sqlx::query_scalar(trigger)
        .fetch_one(&pool)
        .await
        .expect("q");
    assert_eq!(removed, 0, "0002's down removes its trigger");
    migrator.down(1, false).await.expect("down to nothing");
    assert_eq!(migrator.status().await.expect("status").current, None);
    migrator.up(None, false).await.expect("up again");
    pool.close().await;
}

#[tokio::test]
async fn the_components_of_an_experience_under_way_cannot_change_under_its_users() {
    use pb::component_ref::Target as Ref;
    use pb::experience_component::Target as T;
    let service = spawn(phoenix_narrative::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let experience = id();
    let with = |missions: &[&str], title: &str| pb::UpsertExperienceRequest {
        experience: Some(pb::Experience {
            id: experience.clone(),
            title: title.into(),
            components: missions
                .iter()
                .map(|m| pb::ExperienceComponent {
                    sequence: 0,
                    target: Some(T::MissionId((*m).into())),
                })
                .collect(),
            ..Default::default()
        }),
    };
    client
        .upsert_experience(with(&["m-1", "m-2", "m-3"], "Three"))
        .await
        .expect("created");
    // No one under way yet: anything may change.
    client
        .upsert_experience(with(&["m-1", "m-2"], "Two"))
        .await
        .expect("replaced");
    client
        .progress_experience_component(pb::ProgressExperienceComponentRequest {
            user_id: id(),
            experience_id: experience.clone(),
            component: Some(pb::ComponentRef {
                target: Some(Ref::MissionId("m-2".into())),
            }),
            idempotency_key: "out-of-order".into(),
        })
        .await
        .expect_err("m-1 first");
    client
        .progress_experience_component(pb::ProgressExperienceComponentRequest {
            user_id: id(),
            experience_id: experience.clone(),
            component: Some(pb::ComponentRef {
                target: Some(Ref::MissionId("m-1".into())),
            }),
            idempotency_key: "p1".into(),
        })
        .await
        .expect("under way");
    let status = client
        .upsert_experience(with(&["m-2", "m-1"], "Two"))
        .await
        .expect_err("the user's sequence 1 would become m-2");
    assert_refused(&status, Code::FailedPrecondition, "EXPERIENCE_IN_PROGRESS");
    assert_eq!(
        field_reasons(&status),
        [(
            "experience.components".to_owned(),
            "EXPERIENCE_IN_PROGRESS".to_owned()
        )]
    );
    let kept: Vec<String> = sqlx::query_scalar(
        "SELECT mission_id FROM experience_components WHERE experience_id = $1::uuid
         ORDER BY sequence",
    )
    .bind(&experience)
    .fetch_all(&service.pool)
    .await
    .expect("components");
    assert_eq!(kept, ["m-1", "m-2"], "nothing written");
    // The same components under another title are fine.
    let renamed = client
        .upsert_experience(with(&["m-1", "m-2"], "Two, renamed"))
        .await
        .expect("renamed")
        .into_inner();
    assert_eq!(
        renamed.experience.expect("experience").title,
        "Two, renamed"
    );
}
