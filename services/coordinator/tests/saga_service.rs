//! `SagaService` through a real client: the coordinator served by the runtime on a real
//! database, with sagas run beside it by an engine on the same database (the test definitions
//! of `support`).

mod support;

use std::time::Duration;

use phoenix_coordinator::api::sagas::SagaApi;
use phoenix_coordinator::saga::SagaState;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::saga_service_client::SagaServiceClient;
use phoenix_testkit::assert_refused;
use serde_json::json;
use support::{Answer, Participant, engine, request};
use tonic::Code;
use tonic::transport::Channel;

#[tokio::test]
async fn sagas_are_listed_read_retried_and_cancelled_through_the_api() {
    phoenix_runtime::telemetry::init_for_tests();
    let service = phoenix_testkit::spawn(phoenix_coordinator::spec()).await;
    let participant = Participant::default();
    let engine = engine(&service.pool, &participant, 5_000);
    let completed = engine
        .run(request("k1", json!({"n": 1})))
        .await
        .expect("runs");
    participant.script("b", &[Answer::Unavailable]);
    participant.script("c", &[Answer::Refuse]);
    let compensated = engine
        .run(request("k2", json!({"n": 2})))
        .await
        .expect("runs");
    participant.script("c", &[Answer::Refuse]);
    participant.script("undo:a", &vec![Answer::Unavailable; 3]);
    let stuck = engine
        .run(request("k3", json!({"n": 3})))
        .await
        .expect("runs");
    assert_eq!(stuck.state, SagaState::Stuck);

    let mut client = SagaServiceClient::new(service.channel.clone());
    let all = client
        .list_sagas(pb::ListSagasRequest::default())
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(all.sagas.len(), 3);
    assert_eq!(
        all.sagas[0].saga_id,
        stuck.saga_id.to_string(),
        "newest first"
    );
    assert!(all.next_page_token.is_empty());

    let only_stuck = client
        .list_sagas(pb::ListSagasRequest {
            state: pb::SagaState::Stuck.into(),
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(only_stuck.sagas.len(), 1);
    let listed = &only_stuck.sagas[0];
    assert_eq!(listed.failed_step, "c");
    assert_eq!(
        listed.failure.as_ref().expect("why").reason,
        "INSUFFICIENT_FUNDS"
    );
    assert_eq!(listed.user_id, "user-1");
    assert_eq!(listed.input_json, r#"{"n":3}"#);

    // Pages of one, following the tokens, give every saga once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_sagas(pb::ListSagasRequest {
                page_size: 1,
                page_token: token.clone(),
                saga_type: "three".into(),
                user_id: "user-1".into(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.sagas.into_iter().map(|s| s.saga_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        all.sagas
            .iter()
            .map(|s| s.saga_id.clone())
            .collect::<Vec<_>>()
    );
    let none = client
        .list_sagas(pb::ListSagasRequest {
            saga_type: "purchase".into(),
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert!(none.sagas.is_empty());
    let future = client
        .list_sagas(pb::ListSagasRequest {
            start_time: Some(phoenix_runtime::convert::timestamp(
                chrono::Utc::now() + chrono::Duration::hours(1),
            )),
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert!(future.sagas.is_empty());

    // Bad input: every field's reason at once; unknown ids.
    let error = client
        .list_sagas(pb::ListSagasRequest {
            state: 42,
            page_size: -1,
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad");
    assert_eq!(error.code(), Code::InvalidArgument);
    let fields = phoenix_testkit::fields(&error);
    for field in ["state", "page_size", "page_token"] {
        assert!(fields.contains(&field.to_owned()), "{fields:?}");
    }
    let error = client
        .get_saga(pb::GetSagaRequest {
            saga_id: "nope".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(phoenix_testkit::fields(&error), vec!["saga_id"]);
    let error = client
        .get_saga(pb::GetSagaRequest {
            saga_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&error, Code::NotFound, "SAGA_NOT_FOUND");

    // One saga: every step with attempts, timings, last error and output; the log.
    let detail = client
        .get_saga(pb::GetSagaRequest {
            saga_id: compensated.saga_id.to_string(),
        })
        .await
        .expect("reads")
        .into_inner();
    let saga = detail.saga.expect("saga");
    assert_eq!(saga.state(), pb::SagaState::Compensated);
    assert!(saga.finish_time.is_some());
    let steps: Vec<(String, pb::StepState, i32)> = saga
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.state(), s.attempts))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("a".to_owned(), pb::StepState::Compensated, 1),
            ("b".to_owned(), pb::StepState::Compensated, 2),
            ("c".to_owned(), pb::StepState::Refused, 1),
        ]
    );
    let b = &saga.steps[1];
    assert_eq!(
        b.last_error.as_ref().expect("b failed once").code,
        "UNAVAILABLE"
    );
    assert!(b.start_time.is_some() && b.end_time.is_some());
    assert!(b.output_json.contains("saga:"), "{}", b.output_json);
    assert_eq!(detail.log.first().expect("log").kind, "started");
    assert_eq!(detail.log.last().expect("log").kind, "compensated");

    // Operators: retry only what is stuck, cancel only what runs.
    let error = client
        .retry_saga(pb::RetrySagaRequest {
            saga_id: completed.saga_id.to_string(),
        })
        .await
        .expect_err("not stuck");
    assert_refused(&error, Code::FailedPrecondition, "SAGA_NOT_STUCK");
    let error = client
        .cancel_saga(pb::CancelSagaRequest {
            saga_id: completed.saga_id.to_string(),
        })
        .await
        .expect_err("finished");
    assert_refused(&error, Code::FailedPrecondition, "SAGA_FINISHED");
    // This coordinator has no `three` definition: it says so rather than guess.
    let error = client
        .retry_saga(pb::RetrySagaRequest {
            saga_id: stuck.saga_id.to_string(),
        })
        .await
        .expect_err("no definition");
    assert_refused(&error, Code::Unavailable, "SAGA_DEFINITION_MISSING");

    // A coordinator that has it resumes the compensation through the same API.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::saga_service_server::SagaServiceServer::new(
                SagaApi::new(engine.clone()),
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_lazy();
    let mut own = SagaServiceClient::new(channel);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let retried = own
        .retry_saga(pb::RetrySagaRequest {
            saga_id: stuck.saga_id.to_string(),
        })
        .await
        .expect("retries")
        .into_inner()
        .saga
        .expect("saga");
    assert_eq!(retried.state(), pb::SagaState::Compensated);
    assert_eq!(retried.lease_generation, 2);
    assert_eq!(participant.books().undone, vec!["b", "a", "b", "a"]);
}
