//! Domain ⇄ `phoenix.goals.v1` conversions, for the API's answers and the events' payloads.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::convert::{optional_timestamp, struct_from_json, timestamp};

use crate::domain::embedding::{Model, Similar};
use crate::domain::{
    CodeSnapshot, Goal, GoalPriority, GoalStatus, Task, TaskStatus, TaskType, decimal,
};

pub fn goal_status(status: GoalStatus) -> pb::GoalStatus {
    match status {
        GoalStatus::Pending => pb::GoalStatus::Pending,
        GoalStatus::InProgress => pb::GoalStatus::InProgress,
        GoalStatus::Completed => pb::GoalStatus::Completed,
        GoalStatus::Cancelled => pb::GoalStatus::Cancelled,
    }
}

pub fn goal_status_from(status: pb::GoalStatus) -> Option<GoalStatus> {
    match status {
        pb::GoalStatus::Unspecified => None,
        pb::GoalStatus::Pending => Some(GoalStatus::Pending),
        pb::GoalStatus::InProgress => Some(GoalStatus::InProgress),
        pb::GoalStatus::Completed => Some(GoalStatus::Completed),
        pb::GoalStatus::Cancelled => Some(GoalStatus::Cancelled),
    }
}

pub fn goal_priority(priority: GoalPriority) -> pb::GoalPriority {
    match priority {
        GoalPriority::Low => pb::GoalPriority::Low,
        GoalPriority::Medium => pb::GoalPriority::Medium,
        GoalPriority::High => pb::GoalPriority::High,
        GoalPriority::Critical => pb::GoalPriority::Critical,
    }
}

pub fn goal_priority_from(priority: pb::GoalPriority) -> Option<GoalPriority> {
    match priority {
        pb::GoalPriority::Unspecified => None,
        pb::GoalPriority::Low => Some(GoalPriority::Low),
        pb::GoalPriority::Medium => Some(GoalPriority::Medium),
        pb::GoalPriority::High => Some(GoalPriority::High),
        pb::GoalPriority::Critical => Some(GoalPriority::Critical),
    }
}

pub fn task_type(task_type: TaskType) -> pb::TaskType {
    match task_type {
        TaskType::Code => pb::TaskType::Code,
        TaskType::Reading => pb::TaskType::Reading,
        TaskType::Exercise => pb::TaskType::Exercise,
        TaskType::Quiz => pb::TaskType::Quiz,
        TaskType::Project => pb::TaskType::Project,
    }
}

pub fn task_type_from(task_type: pb::TaskType) -> Option<TaskType> {
    match task_type {
        pb::TaskType::Unspecified => None,
        pb::TaskType::Code => Some(TaskType::Code),
        pb::TaskType::Reading => Some(TaskType::Reading),
        pb::TaskType::Exercise => Some(TaskType::Exercise),
        pb::TaskType::Quiz => Some(TaskType::Quiz),
        pb::TaskType::Project => Some(TaskType::Project),
    }
}

pub fn task_status(status: TaskStatus) -> pb::TaskStatus {
    match status {
        TaskStatus::Todo => pb::TaskStatus::Todo,
        TaskStatus::InProgress => pb::TaskStatus::InProgress,
        TaskStatus::Review => pb::TaskStatus::Review,
        TaskStatus::Done => pb::TaskStatus::Done,
        TaskStatus::Blocked => pb::TaskStatus::Blocked,
    }
}

pub fn task_status_from(status: pb::TaskStatus) -> Option<TaskStatus> {
    match status {
        pb::TaskStatus::Unspecified => None,
        pb::TaskStatus::Todo => Some(TaskStatus::Todo),
        pb::TaskStatus::InProgress => Some(TaskStatus::InProgress),
        pb::TaskStatus::Review => Some(TaskStatus::Review),
        pb::TaskStatus::Done => Some(TaskStatus::Done),
        pb::TaskStatus::Blocked => Some(TaskStatus::Blocked),
    }
}

pub fn goal(goal: &Goal) -> pb::Goal {
    let f = &goal.fields;
    pb::Goal {
        id: goal.id.to_string(),
        user_id: goal.user_id.to_string(),
        course_id: goal.course_id.map(|c| c.to_string()).unwrap_or_default(),
        title: f.title.clone(),
        description: f.description.clone(),
        status: goal_status(f.status).into(),
        priority: goal_priority(f.priority).into(),
        progress_percentage: decimal(goal.progress()),
        ai_generated: f.ai_generated,
        validation_criteria: Some(struct_from_json(&f.validation_criteria)),
        metadata: Some(struct_from_json(&f.metadata)),
        create_time: Some(timestamp(goal.created_at)),
        update_time: Some(timestamp(goal.updated_at)),
        start_time: optional_timestamp(goal.started_at),
        complete_time: optional_timestamp(goal.completed_at),
        due_time: optional_timestamp(f.due_at),
        task_count: goal.task_count,
        done_task_count: goal.done_task_count,
        version: goal.version,
    }
}

pub fn task(task: &Task) -> pb::Task {
    let f = &task.fields;
    pb::Task {
        id: task.id.to_string(),
        goal_id: task.goal_id.to_string(),
        user_id: task.user_id.to_string(),
        title: f.title.clone(),
        description: f.description.clone(),
        r#type: task_type(f.task_type).into(),
        status: task_status(f.status).into(),
        priority: f.priority,
        estimated_hours: f.estimated_hours.map(decimal),
        actual_hours: f.actual_hours.map(decimal),
        validation_result: Some(struct_from_json(&f.validation_result)),
        ai_feedback: f.ai_feedback.clone(),
        metadata: Some(struct_from_json(&f.metadata)),
        create_time: Some(timestamp(task.created_at)),
        update_time: Some(timestamp(task.updated_at)),
        start_time: optional_timestamp(task.started_at),
        complete_time: optional_timestamp(task.completed_at),
        version: task.version,
    }
}

/// A snapshot; `with_content: false` leaves the content out (events carry its size and hash).
pub fn snapshot(snapshot: &CodeSnapshot, with_content: bool) -> pb::CodeSnapshot {
    let s = &snapshot.snapshot;
    pb::CodeSnapshot {
        id: snapshot.id.to_string(),
        task_id: snapshot.task_id.to_string(),
        user_id: snapshot.user_id.to_string(),
        file_path: s.file_path.clone(),
        language: s.language.clone(),
        content: if with_content {
            s.content.clone()
        } else {
            String::new()
        },
        validation_passed: s.validation_passed,
        validation_score: s.validation_score.map(decimal),
        validation_feedback: s.validation_feedback.clone(),
        issues_found: s
            .issues_found
            .iter()
            .map(|issue| match issue {
                serde_json::Value::Object(object) => struct_from_json(object),
                _ => prost_types::Struct::default(),
            })
            .collect(),
        metadata: Some(struct_from_json(&s.metadata)),
        content_bytes: i32::try_from(s.content.len()).unwrap_or(i32::MAX),
        content_sha256: s.content_sha256.clone(),
        create_time: Some(timestamp(snapshot.created_at)),
    }
}

pub fn model(model: &Model) -> pb::EmbeddingModel {
    pb::EmbeddingModel {
        name: model.name.clone(),
        dimensions: model.dimensions,
        create_time: Some(timestamp(model.created_at)),
    }
}

pub fn similar(found: &Similar) -> pb::SimilarEmbedding {
    pb::SimilarEmbedding {
        id: found.id.to_string(),
        entity_type: found.entity_type.clone(),
        entity_id: found.entity_id.clone(),
        chunk: found.chunk,
        user_id: found.user_id.to_string(),
        content: found.content.clone(),
        distance: found.distance,
        metadata: Some(struct_from_json(&found.metadata)),
    }
}

/// The user a stored event's payload names (every `phoenix.goals.v1` event does), for the
/// export; `None` for a payload that does not decode as its type.
pub fn event_user(event_type: &str, payload: &[u8]) -> Option<String> {
    use prost::Message;
    let user = match event_type {
        "phoenix.goals.v1.GoalCreated" => pb::GoalCreated::decode(payload).ok()?.goal?.user_id,
        "phoenix.goals.v1.GoalUpdated" => pb::GoalUpdated::decode(payload).ok()?.goal?.user_id,
        "phoenix.goals.v1.TaskCreated" => pb::TaskCreated::decode(payload).ok()?.task?.user_id,
        "phoenix.goals.v1.TaskUpdated" => pb::TaskUpdated::decode(payload).ok()?.task?.user_id,
        "phoenix.goals.v1.TaskCompleted" => pb::TaskCompleted::decode(payload).ok()?.task?.user_id,
        "phoenix.goals.v1.CodeSnapshotCreated" => {
            pb::CodeSnapshotCreated::decode(payload)
                .ok()?
                .snapshot?
                .user_id
        }
        _ => return None,
    };
    Some(user).filter(|u| !u.is_empty())
}
