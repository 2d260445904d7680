//! Tasks through gRPC: their life cycle, the goal's progress derived from them, and the
//! `TaskCompleted` event appended in the transaction that completes one.

mod support;

use futures_util::StreamExt;
use phoenix_proto::goals::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons};
use prost::Message;
use support::{Harness, field, mask};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn completing_tasks_derives_progress_and_appends_task_completed() {
    let mut h = Harness::start().await;
    let goal = h.goal("ship it").await;
    let first = h.task(&goal, "write").await;
    let second = h.task(&goal, "test").await;
    let third = h.task(&goal, "review").await;
    assert_eq!(first.status, i32::from(pb::TaskStatus::Todo));
    assert_eq!(first.user_id, h.user, "a task is its goal's user's");

    h.move_task(&first, pb::TaskStatus::InProgress)
        .await
        .expect("started");
    let done = h
        .move_task(&first, pb::TaskStatus::Done)
        .await
        .expect("done");
    let task = done.task.expect("task");
    assert!(task.complete_time.is_some());
    assert!(task.start_time.is_some());
    assert_eq!(done.goal_progress_percentage, 33.33);
    let read = h
        .client
        .get_goal(pb::GetGoalRequest {
            id: goal.id.clone(),
        })
        .await
        .expect("goal")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!((read.task_count, read.done_task_count), (3, 1));
    assert_eq!(read.progress_percentage, 33.33);

    for t in [&second, &third] {
        h.move_task(t, pb::TaskStatus::InProgress)
            .await
            .expect("started");
        h.move_task(t, pb::TaskStatus::Review)
            .await
            .expect("review");
        h.move_task(t, pb::TaskStatus::Done).await.expect("done");
    }
    let read = h
        .client
        .get_goal(pb::GetGoalRequest {
            id: goal.id.clone(),
        })
        .await
        .expect("goal")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!(read.progress_percentage, 100.0);

    // The log: one TaskCompleted per task, each with the goal's progress after it.
    let mut stream = h
        .client
        .subscribe(pb::SubscribeRequest { after_position: 0 })
        .await
        .expect("subscribed")
        .into_inner();
    let mut completed = Vec::new();
    let mut seen = 0;
    // 1 GoalCreated + 3 × (TaskCreated + GoalUpdated) + 1 TaskUpdated (first started)
    // + 3 × (TaskCompleted + GoalUpdated) + 2 × 2 TaskUpdated = 18.
    while seen < 18 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("an event");
        seen += 1;
        assert_eq!(message.position, seen);
        let event = message.event.expect("envelope");
        if event.r#type == "phoenix.goals.v1.TaskCompleted" {
            let payload =
                pb::TaskCompleted::decode(event.payload.expect("payload").value.as_slice())
                    .expect("a TaskCompleted");
            assert_eq!(event.aggregate_type, "task");
            completed.push((
                payload.task.expect("task").id,
                payload.goal_progress_percentage,
            ));
        }
    }
    assert_eq!(
        completed,
        [
            (first.id.clone(), 33.33),
            (second.id.clone(), 66.66),
            (third.id.clone(), 100.0)
        ]
    );
}

#[tokio::test]
async fn only_the_life_cycle_moves_are_allowed_and_done_is_final() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    let status = h
        .move_task(&task, pb::TaskStatus::Done)
        .await
        .expect_err("TODO cannot jump to DONE");
    assert_refused(&status, Code::FailedPrecondition, "INVALID_TASK_TRANSITION");
    assert_eq!(field(&status), "task.status");

    h.move_task(&task, pb::TaskStatus::InProgress)
        .await
        .expect("started");
    h.move_task(&task, pb::TaskStatus::Done)
        .await
        .expect("done");
    let status = h
        .move_task(&task, pb::TaskStatus::InProgress)
        .await
        .expect_err("DONE is final");
    assert_refused(&status, Code::FailedPrecondition, "INVALID_TASK_TRANSITION");
    assert_eq!(field(&status), "task.status");
    let again = h
        .move_task(&task, pb::TaskStatus::Done)
        .await
        .expect("staying is no move");
    assert_eq!(again.task.expect("task").version, 3, "nothing written");
    let completions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'phoenix.goals.v1.TaskCompleted'",
    )
    .fetch_one(&h.goals.pool)
    .await
    .expect("count");
    assert_eq!(completions, 1);
}

#[tokio::test]
async fn the_tasks_of_a_closed_goal_keep_their_status() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    let mut close = goal.clone();
    close.status = pb::GoalStatus::Cancelled.into();
    h.client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(close),
            update_mask: mask(&["status"]),
        })
        .await
        .expect("cancelled");
    let status = h
        .client
        .create_task(pb::CreateTaskRequest {
            goal_id: goal.id.clone(),
            title: "late".into(),
            ..Default::default()
        })
        .await
        .expect_err("closed");
    assert_refused(&status, Code::FailedPrecondition, "GOAL_CLOSED");
    let status = h
        .move_task(&task, pb::TaskStatus::InProgress)
        .await
        .expect_err("closed");
    assert_refused(&status, Code::FailedPrecondition, "GOAL_CLOSED");
    assert_eq!(h.count("tasks").await, 1);

    // Other fields still change.
    let mut noted = task.clone();
    noted.ai_feedback = "well done".into();
    let updated = h
        .client
        .update_task(pb::UpdateTaskRequest {
            task: Some(noted),
            update_mask: mask(&["ai_feedback"]),
        })
        .await
        .expect("feedback")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(updated.ai_feedback, "well done");
}

#[tokio::test]
async fn bad_tasks_are_refused_whole() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let status = h
        .client
        .create_task(pb::CreateTaskRequest {
            goal_id: goal.id.clone(),
            title: String::new(),
            r#type: 9,
            priority: Some(10_001),
            estimated_hours: Some(f64::NAN),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ENUM");
    assert_eq!(
        field_reasons(&status),
        [
            ("type".to_owned(), "INVALID_ENUM".to_owned()),
            ("title".to_owned(), "REQUIRED".to_owned()),
            ("priority".to_owned(), "OUT_OF_RANGE".to_owned()),
            ("estimated_hours".to_owned(), "OUT_OF_RANGE".to_owned()),
        ]
    );
    let status = h
        .client
        .create_task(pb::CreateTaskRequest {
            goal_id: Uuid::new_v4().to_string(),
            title: "t".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown goal");
    assert_refused(&status, Code::NotFound, "GOAL_NOT_FOUND");

    let task = h.task(&goal, "t").await;
    let mut hours = task.clone();
    hours.actual_hours = Some(1.234);
    let status = h
        .client
        .update_task(pb::UpdateTaskRequest {
            task: Some(hours),
            update_mask: mask(&["actual_hours", "user_id"]),
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "update_mask.paths[1]".to_owned(),
                "READ_ONLY_FIELD".to_owned()
            ),
            (
                "task.actual_hours".to_owned(),
                "TOO_MANY_DECIMALS".to_owned()
            ),
        ]
    );
    let status = h
        .move_task(
            &pb::Task {
                id: Uuid::new_v4().to_string(),
                ..task.clone()
            },
            pb::TaskStatus::InProgress,
        )
        .await
        .expect_err("unknown task");
    assert_refused(&status, Code::NotFound, "TASK_NOT_FOUND");
    assert_eq!(h.count("tasks").await, 1);
}

#[tokio::test]
async fn concurrent_completions_each_count_once() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let task = h.task(&goal, &format!("t{i}")).await;
        h.move_task(&task, pb::TaskStatus::InProgress)
            .await
            .expect("started");
        tasks.push(task);
    }
    let moves = tasks.iter().map(|task| {
        let mut client = h.client.clone();
        let mut done = task.clone();
        done.status = pb::TaskStatus::Done.into();
        async move {
            client
                .update_task(pb::UpdateTaskRequest {
                    task: Some(done),
                    update_mask: mask(&["status"]),
                })
                .await
        }
    });
    for answer in futures_util::future::join_all(moves).await {
        answer.expect("completed");
    }
    let read = h
        .client
        .get_goal(pb::GetGoalRequest {
            id: goal.id.clone(),
        })
        .await
        .expect("goal")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!((read.task_count, read.done_task_count), (8, 8));
    assert_eq!(read.progress_percentage, 100.0);
}

#[tokio::test]
async fn completions_racing_the_goal_closing_count_only_those_before_it() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let mut started = goal.clone();
    started.status = pb::GoalStatus::InProgress.into();
    h.client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(started),
            update_mask: mask(&["status"]),
        })
        .await
        .expect("goal started");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let task = h.task(&goal, &format!("t{i}")).await;
        h.move_task(&task, pb::TaskStatus::InProgress)
            .await
            .expect("started");
        tasks.push(task);
    }
    let completions = tasks.iter().map(|task| {
        let mut client = h.client.clone();
        let mut done = task.clone();
        done.status = pb::TaskStatus::Done.into();
        tokio::spawn(async move {
            client
                .update_task(pb::UpdateTaskRequest {
                    task: Some(done),
                    update_mask: mask(&["status"]),
                })
                .await
        })
    });
    let completions: Vec<_> = completions.collect();
    let mut closed = goal.clone();
    closed.status = pb::GoalStatus::Cancelled.into();
    h.client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(closed),
            update_mask: mask(&["status"]),
        })
        .await
        .expect("goal cancelled");
    let mut done = 0;
    for answer in futures_util::future::join_all(completions).await {
        match answer.expect("joined") {
            Ok(_) => done += 1,
            Err(status) => {
                assert_refused(&status, Code::FailedPrecondition, "GOAL_CLOSED");
            }
        }
    }
    let read = h
        .client
        .get_goal(pb::GetGoalRequest {
            id: goal.id.clone(),
        })
        .await
        .expect("goal")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!(read.status, i32::from(pb::GoalStatus::Cancelled));
    assert_eq!((read.task_count, read.done_task_count), (8, done));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'done'")
        .fetch_one(&h.goals.pool)
        .await
        .expect("done tasks");
    assert_eq!(stored, i64::from(done), "every DONE task counted, no other");
    let completed_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'phoenix.goals.v1.TaskCompleted'",
    )
    .fetch_one(&h.goals.pool)
    .await
    .expect("events");
    assert_eq!(completed_events, i64::from(done));
}

#[tokio::test]
async fn tasks_are_listed_by_priority_in_pages() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    for (title, priority) in [("c", 300), ("a", 100), ("b", 200), ("a2", 100)] {
        h.client
            .create_task(pb::CreateTaskRequest {
                goal_id: goal.id.clone(),
                title: title.into(),
                priority: Some(priority),
                ..Default::default()
            })
            .await
            .expect("created");
    }
    let mut titles = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .client
            .list_tasks(pb::ListTasksRequest {
                goal_id: goal.id.clone(),
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        titles.extend(page.tasks.into_iter().map(|t| t.title));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(titles, ["a", "a2", "b", "c"]);
}

#[tokio::test]
async fn the_auditor_finds_a_goal_whose_counts_were_corrupted() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let task = h.task(&goal, "t").await;
    h.move_task(&task, pb::TaskStatus::InProgress)
        .await
        .expect("started");
    h.move_task(&task, pb::TaskStatus::Done)
        .await
        .expect("done");
    let clean = phoenix_goals::ops::audit::run(&h.goals.pool)
        .await
        .expect("audit");
    assert_eq!(clean.violations, 0, "{:?}", clean.lines);
    sqlx::query("UPDATE goals SET done_task_count = 0")
        .execute(&h.goals.pool)
        .await
        .expect("corrupt");
    let report = phoenix_goals::ops::audit::run(&h.goals.pool)
        .await
        .expect("audit");
    assert_eq!(report.violations, 1);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l == &format!("  violation progress: {}", goal.id)),
        "{:?}",
        report.lines
    );
}
