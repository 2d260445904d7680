//! CreateGoal, GetGoal, ListGoals, UpdateGoal.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::Response;

use super::{
    Access, Answer, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, known, micros, optional_key, optional_time,
    required, time_of, token,
};
use crate::app::Goals;
use crate::domain::goal::{GoalFields, GoalInput, READ_ONLY, WRITABLE};
use crate::domain::{GoalPriority, GoalStatus};
use crate::proto;
use crate::store::goals::{GoalCursor, GoalFilter};

fn status(v: &mut Violations, field: &str, value: i32) -> Option<GoalStatus> {
    known(v, field, value, "goal status", proto::goal_status_from)
}

fn priority(v: &mut Violations, field: &str, value: i32) -> Option<GoalPriority> {
    known(v, field, value, "goal priority", proto::goal_priority_from)
}

fn input(v: &mut Violations, goal: &pb::Goal, prefix: &str) -> GoalInput {
    GoalInput {
        title: goal.title.clone(),
        description: goal.description.clone(),
        status: status(v, &format!("{prefix}status"), goal.status),
        priority: priority(v, &format!("{prefix}priority"), goal.priority),
        ai_generated: goal.ai_generated,
        validation_criteria: json_from_struct(goal.validation_criteria.as_ref()),
        metadata: json_from_struct(goal.metadata.as_ref()),
        due_at: optional_time(v, &format!("{prefix}due_time"), goal.due_time.as_ref()),
    }
}

pub async fn create(
    g: &Goals,
    body: &pb::CreateGoalRequest,
    access: &Access,
) -> Answer<pb::CreateGoalResponse> {
    let mut v = Violations::new();
    let user_id = v.uuid("user_id", &body.user_id);
    let course_id = v.optional_uuid("course_id", &body.course_id);
    let goal = pb::Goal {
        title: body.title.clone(),
        description: body.description.clone(),
        status: body.status,
        priority: body.priority,
        ai_generated: body.ai_generated,
        validation_criteria: body.validation_criteria.clone(),
        metadata: body.metadata.clone(),
        due_time: body.due_time,
        ..pb::Goal::default()
    };
    let input = input(&mut v, &goal, "");
    let fields = v.take(GoalFields::new(&input));
    let key = optional_key(&mut v, &body.idempotency_key, "CreateGoal", body);
    let fields = v.finish_with(fields)?;
    access.owner(user_id)?;
    let goal = g
        .create_goal(user_id, course_id, fields, key.as_ref())
        .await?;
    Ok(Response::new(pb::CreateGoalResponse {
        goal: Some(proto::goal(&goal)),
    }))
}

pub async fn get(
    g: &Goals,
    body: &pb::GetGoalRequest,
    access: &Access,
) -> Answer<pb::GetGoalResponse> {
    let mut v = Violations::new();
    let id = v.uuid("id", &body.id);
    v.finish()?;
    let goal = g.goal(id).await?;
    access.owner(goal.user_id)?;
    Ok(Response::new(pb::GetGoalResponse {
        goal: Some(proto::goal(&goal)),
    }))
}

/// `c/<micros>/<id>` by creation time, `p/<rank>/<micros>/<id>` by priority.
fn cursor(token: &str, by_priority: bool) -> Option<GoalCursor> {
    let parts: Vec<&str> = token.split('/').collect();
    match (by_priority, parts.as_slice()) {
        (false, ["c", time, id]) => Some(GoalCursor::Created(time_of(time)?, id.parse().ok()?)),
        (true, ["p", rank, time, id]) => Some(GoalCursor::Priority(
            rank.parse().ok()?,
            time_of(time)?,
            id.parse().ok()?,
        )),
        _ => None,
    }
}

fn next_token(next: Option<GoalCursor>) -> String {
    match next {
        None => String::new(),
        Some(GoalCursor::Created(time, id)) => token(&["c".into(), micros(time), id.to_string()]),
        Some(GoalCursor::Priority(rank, time, id)) => {
            token(&["p".into(), rank.to_string(), micros(time), id.to_string()])
        }
    }
}

pub async fn list(
    g: &Goals,
    body: &pb::ListGoalsRequest,
    access: &Access,
) -> Answer<pb::ListGoalsResponse> {
    let mut v = Violations::new();
    let filter = GoalFilter {
        user_id: v.uuid("user_id", &body.user_id),
        course_id: v.optional_uuid("course_id", &body.course_id),
        status: status(&mut v, "status", body.status),
    };
    let by_priority = match pb::GoalOrder::try_from(body.order_by) {
        Ok(order) => order == pb::GoalOrder::Priority,
        Err(_) => {
            v.add(
                "order_by",
                "INVALID_ENUM",
                format!("{} is not a known order", body.order_by),
            );
            false
        }
    };
    let limit = v.page_size(body.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = v.page_token(&body.page_token, |t| cursor(t, by_priority));
    v.finish()?;
    access.owner(filter.user_id)?;
    let page = g.goals(&filter, by_priority, after, limit).await?;
    Ok(Response::new(pb::ListGoalsResponse {
        goals: page.goals.iter().map(proto::goal).collect(),
        next_page_token: next_token(page.next),
    }))
}

pub async fn update(
    g: &Goals,
    body: &pb::UpdateGoalRequest,
    access: &Access,
) -> Answer<pb::UpdateGoalResponse> {
    let mut v = Violations::new();
    let goal = required(
        &mut v,
        "goal",
        body.goal.as_ref(),
        "the goal's id and new values",
    );
    let id = v.uuid("goal.id", &goal.id);
    let paths = v.field_mask(
        "update_mask",
        body.update_mask.as_ref(),
        WRITABLE,
        READ_ONLY,
    );
    let input = input(&mut v, &goal, "goal.");
    v.take(GoalFields::check_paths(&input, &paths, "goal."));
    v.finish()?;
    if access.is_on() {
        access.owner(g.goal(id).await?.user_id)?;
    }
    let goal = g.update_goal(id, input, paths).await?;
    Ok(Response::new(pb::UpdateGoalResponse {
        goal: Some(proto::goal(&goal)),
    }))
}
