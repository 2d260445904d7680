//! CreateTask, GetTask, ListTasks, UpdateTask.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::Response;

use super::{
    Access, Answer, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, known, micros, optional_key, required,
    time_of, token,
};
use crate::app::Goals;
use crate::domain::task::{READ_ONLY, TaskFields, TaskInput, WRITABLE};
use crate::domain::{Task, TaskStatus, decimal};
use crate::proto;
use crate::store::tasks::TaskCursor;

fn status(v: &mut Violations, field: &str, value: i32) -> Option<TaskStatus> {
    known(v, field, value, "task status", proto::task_status_from)
}

pub async fn create(
    g: &Goals,
    body: &pb::CreateTaskRequest,
    access: &Access,
) -> Answer<pb::CreateTaskResponse> {
    let mut v = Violations::new();
    let goal_id = v.uuid("goal_id", &body.goal_id);
    let input = TaskInput {
        title: body.title.clone(),
        description: body.description.clone(),
        task_type: known(
            &mut v,
            "type",
            body.r#type,
            "task type",
            proto::task_type_from,
        ),
        priority: body.priority,
        estimated_hours: body.estimated_hours,
        metadata: json_from_struct(body.metadata.as_ref()),
        ..TaskInput::default()
    };
    let fields = v.take(TaskFields::new(&input));
    let key = optional_key(&mut v, &body.idempotency_key, "CreateTask", body);
    let fields = v.finish_with(fields)?;
    if access.is_on() {
        access.owner(g.goal(goal_id).await?.user_id)?;
    }
    let (task, goal) = g.create_task(goal_id, fields, key.as_ref()).await?;
    Ok(Response::new(pb::CreateTaskResponse {
        task: Some(proto::task(&task)),
        goal_progress_percentage: decimal(goal.progress()),
    }))
}

pub async fn get(
    g: &Goals,
    body: &pb::GetTaskRequest,
    access: &Access,
) -> Answer<pb::GetTaskResponse> {
    let mut v = Violations::new();
    let id = v.uuid("id", &body.id);
    v.finish()?;
    let task = g.task(id).await?;
    access.owner(task.user_id)?;
    Ok(Response::new(pb::GetTaskResponse {
        task: Some(proto::task(&task)),
    }))
}

/// `<priority>/<micros>/<id>`.
fn cursor(text: &str) -> Option<TaskCursor> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [priority, time, id] => Some((priority.parse().ok()?, time_of(time)?, id.parse().ok()?)),
        _ => None,
    }
}

pub async fn list(
    g: &Goals,
    body: &pb::ListTasksRequest,
    access: &Access,
) -> Answer<pb::ListTasksResponse> {
    let mut v = Violations::new();
    let goal_id = v.uuid("goal_id", &body.goal_id);
    let status = status(&mut v, "status", body.status);
    let limit = v.page_size(body.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = v.page_token(&body.page_token, cursor);
    v.finish()?;
    if access.is_on() {
        access.owner(g.goal(goal_id).await?.user_id)?;
    }
    let (tasks, next) = g.tasks(goal_id, status, after, limit).await?;
    Ok(Response::new(pb::ListTasksResponse {
        tasks: tasks.iter().map(proto::task).collect(),
        next_page_token: next
            .map(|(p, t, id)| token(&[p.to_string(), micros(t), id.to_string()]))
            .unwrap_or_default(),
    }))
}

pub async fn update(
    g: &Goals,
    body: &pb::UpdateTaskRequest,
    access: &Access,
) -> Answer<pb::UpdateTaskResponse> {
    let mut v = Violations::new();
    let task: pb::Task = required(
        &mut v,
        "task",
        body.task.as_ref(),
        "the task's id and new values",
    );
    let id = v.uuid("task.id", &task.id);
    let paths = v.field_mask(
        "update_mask",
        body.update_mask.as_ref(),
        WRITABLE,
        READ_ONLY,
    );
    let input = TaskInput {
        title: task.title.clone(),
        description: task.description.clone(),
        task_type: known(
            &mut v,
            "task.type",
            task.r#type,
            "task type",
            proto::task_type_from,
        ),
        status: status(&mut v, "task.status", task.status),
        priority: Some(task.priority),
        estimated_hours: task.estimated_hours,
        actual_hours: task.actual_hours,
        validation_result: json_from_struct(task.validation_result.as_ref()),
        ai_feedback: task.ai_feedback.clone(),
        metadata: json_from_struct(task.metadata.as_ref()),
    };
    v.take(TaskFields::check_paths(&input, &paths, "task."));
    v.finish()?;
    if access.is_on() {
        let current: Task = g.task(id).await?;
        access.owner(current.user_id)?;
    }
    let (task, goal) = g.update_task(id, input, paths).await?;
    Ok(Response::new(pb::UpdateTaskResponse {
        task: Some(proto::task(&task)),
        goal_progress_percentage: decimal(goal.progress()),
    }))
}
