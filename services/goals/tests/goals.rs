//! Goals through gRPC: create, get, list, update, their life cycle, and the users and courses
//! they name resolved in the directory.

mod support;

use phoenix_proto::goals::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons};
use support::{Harness, field, mask};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn a_goal_is_created_read_listed_and_updated() {
    let mut h = Harness::start().await;
    let created = h
        .client
        .create_goal(pb::CreateGoalRequest {
            user_id: h.user.clone(),
            course_id: h.course.clone(),
            title: "  Learn ownership  ".into(),
            description: "Borrowing too".into(),
            priority: pb::GoalPriority::High.into(),
            ai_generated: true,
            due_time: Some(prost_types::Timestamp {
                seconds: 1_900_000_000,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!(created.title, "Learn ownership");
    assert_eq!(created.status, i32::from(pb::GoalStatus::Pending));
    assert_eq!(created.course_id, h.course);
    assert_eq!(created.progress_percentage, 0.0);
    assert!(created.ai_generated);
    assert_eq!(created.version, 1);

    let read = h
        .client
        .get_goal(pb::GetGoalRequest {
            id: created.id.clone(),
        })
        .await
        .expect("read")
        .into_inner()
        .goal;
    assert_eq!(read.as_ref(), Some(&created));

    let mut changed = created.clone();
    changed.title = "Master ownership".into();
    changed.status = pb::GoalStatus::InProgress.into();
    let updated = h
        .client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(changed),
            update_mask: mask(&["title", "status"]),
        })
        .await
        .expect("updated")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!(updated.title, "Master ownership");
    assert_eq!(
        updated.priority,
        i32::from(pb::GoalPriority::High),
        "not in the mask"
    );
    assert!(updated.start_time.is_some(), "IN_PROGRESS stamps the start");
    assert_eq!(updated.version, 2);

    let mut done = updated.clone();
    done.status = pb::GoalStatus::Completed.into();
    let completed = h
        .client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(done),
            update_mask: mask(&["status"]),
        })
        .await
        .expect("completed")
        .into_inner()
        .goal
        .expect("goal");
    assert!(completed.complete_time.is_some());
    assert_eq!(completed.start_time, updated.start_time, "kept");
}

#[tokio::test]
async fn goals_are_listed_by_course_status_and_priority_in_pages() {
    let mut h = Harness::start().await;
    let mut ids = Vec::new();
    for (title, priority, course) in [
        ("low", pb::GoalPriority::Low, false),
        ("critical", pb::GoalPriority::Critical, true),
        ("medium", pb::GoalPriority::Medium, true),
        ("high", pb::GoalPriority::High, false),
    ] {
        let goal = h
            .client
            .create_goal(pb::CreateGoalRequest {
                user_id: h.user.clone(),
                course_id: if course {
                    h.course.clone()
                } else {
                    String::new()
                },
                title: title.into(),
                priority: priority.into(),
                ..Default::default()
            })
            .await
            .expect("created")
            .into_inner()
            .goal
            .expect("goal");
        ids.push(goal.title);
    }
    let list = |order: pb::GoalOrder, course: &str, token: &str| pb::ListGoalsRequest {
        user_id: String::new(),
        course_id: course.into(),
        order_by: order.into(),
        page_size: 3,
        page_token: token.into(),
        ..Default::default()
    };
    let mut titles = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = list(pb::GoalOrder::Priority, "", &token);
        request.user_id = h.user.clone();
        let page = h
            .client
            .list_goals(request)
            .await
            .expect("page")
            .into_inner();
        titles.extend(page.goals.into_iter().map(|g| g.title));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(titles, ["critical", "high", "medium", "low"]);

    let mut request = list(pb::GoalOrder::CreateTime, &h.course, "");
    request.user_id = h.user.clone();
    let in_course: Vec<String> = h
        .client
        .list_goals(request)
        .await
        .expect("page")
        .into_inner()
        .goals
        .into_iter()
        .map(|g| g.title)
        .collect();
    assert_eq!(in_course, ["critical", "medium"]);

    let mut request = list(pb::GoalOrder::CreateTime, "", "");
    request.user_id = h.user.clone();
    request.status = pb::GoalStatus::Cancelled.into();
    let cancelled = h
        .client
        .list_goals(request)
        .await
        .expect("page")
        .into_inner();
    assert!(cancelled.goals.is_empty());

    // A token of one order is not one of the other.
    let mut first = list(pb::GoalOrder::Priority, "", "");
    first.user_id = h.user.clone();
    let token = h
        .client
        .list_goals(first)
        .await
        .expect("page")
        .into_inner()
        .next_page_token;
    let mut other = list(pb::GoalOrder::CreateTime, "", &token);
    other.user_id = h.user.clone();
    let status = h.client.list_goals(other).await.expect_err("wrong token");
    assert_refused(&status, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    assert_eq!(field(&status), "page_token");
}

#[tokio::test]
async fn unknown_users_and_courses_are_refused_and_nothing_is_written() {
    let mut h = Harness::start().await;
    let status = h
        .client
        .create_goal(pb::CreateGoalRequest {
            user_id: Uuid::new_v4().to_string(),
            title: "t".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown user");
    assert_refused(&status, Code::FailedPrecondition, "USER_NOT_FOUND");
    assert_eq!(field(&status), "user_id");

    let status = h
        .client
        .create_goal(pb::CreateGoalRequest {
            user_id: h.user.clone(),
            course_id: Uuid::new_v4().to_string(),
            title: "t".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown course");
    assert_refused(&status, Code::FailedPrecondition, "COURSE_NOT_FOUND");
    assert_eq!(field(&status), "course_id");
    assert_eq!(h.count("goals").await, 0);
    assert_eq!(h.count("events").await, 0);
}

#[tokio::test]
async fn a_bad_goal_is_refused_whole() {
    let mut h = Harness::start().await;
    let status = h
        .client
        .create_goal(pb::CreateGoalRequest {
            user_id: "nope".into(),
            title: " ".into(),
            status: pb::GoalStatus::Completed.into(),
            priority: 42,
            idempotency_key: "has space".into(),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_refused(&status, Code::InvalidArgument, "INVALID_ID");
    assert_eq!(
        field_reasons(&status),
        [
            ("user_id".to_owned(), "INVALID_ID".to_owned()),
            ("priority".to_owned(), "INVALID_ENUM".to_owned()),
            ("status".to_owned(), "INVALID_INITIAL_STATUS".to_owned()),
            ("title".to_owned(), "REQUIRED".to_owned()),
            (
                "idempotency_key".to_owned(),
                "INVALID_IDEMPOTENCY_KEY".to_owned()
            ),
        ]
    );

    let goal = h.goal("g").await;
    let status = h
        .client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(goal.clone()),
            update_mask: mask(&["progress_percentage", "title"]),
        })
        .await
        .expect_err("read-only");
    assert_refused(&status, Code::InvalidArgument, "READ_ONLY_FIELD");
    assert_eq!(field(&status), "update_mask.paths[0]");

    let status = h
        .client
        .get_goal(pb::GetGoalRequest {
            id: Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&status, Code::NotFound, "GOAL_NOT_FOUND");
}

#[tokio::test]
async fn only_the_life_cycle_moves_are_allowed() {
    let mut h = Harness::start().await;
    let goal = h.goal("g").await;
    let mut cancel = goal.clone();
    cancel.status = pb::GoalStatus::Cancelled.into();
    h.client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(cancel),
            update_mask: mask(&["status"]),
        })
        .await
        .expect("cancelled");
    let mut reopen = goal.clone();
    reopen.status = pb::GoalStatus::InProgress.into();
    let status = h
        .client
        .update_goal(pb::UpdateGoalRequest {
            goal: Some(reopen),
            update_mask: mask(&["status"]),
        })
        .await
        .expect_err("cancelled is final");
    assert_refused(&status, Code::FailedPrecondition, "INVALID_GOAL_TRANSITION");
    assert_eq!(field(&status), "goal.status");
    let read = h
        .client
        .get_goal(pb::GetGoalRequest { id: goal.id })
        .await
        .expect("read")
        .into_inner()
        .goal
        .expect("goal");
    assert_eq!(read.status, i32::from(pb::GoalStatus::Cancelled));
    assert_eq!(read.version, 2);
}

#[tokio::test]
async fn a_create_retried_with_its_key_answers_the_first_goal() {
    let mut h = Harness::start().await;
    let request = pb::CreateGoalRequest {
        user_id: h.user.clone(),
        title: "once".into(),
        idempotency_key: "goal-1".into(),
        ..Default::default()
    };
    let first = h
        .client
        .create_goal(request.clone())
        .await
        .expect("first")
        .into_inner();
    let again = h
        .client
        .create_goal(request.clone())
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(h.count("goals").await, 1);
    let mut other = request;
    other.title = "another".into();
    let status = h.client.create_goal(other).await.expect_err("key reused");
    assert_refused(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(field(&status), "idempotency_key");
}
