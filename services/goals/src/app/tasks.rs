//! Tasks: create, read, list, update; completing one updates its goal's progress and appends
//! `TaskCompleted` in the same transaction.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::stream::NewEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::goals::goal_updated;
use super::{Goals, TASK_AGGREGATE, now, publish};
use crate::domain::task::{TaskFields, TaskInput};
use crate::domain::{Goal, Task, TaskStatus, decimal};
use crate::store::tasks::TaskCursor;
use crate::store::{goals, tasks as store};
use crate::{error, proto};

/// Paths of the goal a recount changes.
fn progress_paths() -> Vec<String> {
    ["task_count", "done_task_count", "progress_percentage"]
        .map(str::to_owned)
        .to_vec()
}

/// The goal, locked: every change of its tasks' statuses takes this lock first, so the counts
/// its progress is derived from are never written by two transactions at once.
async fn locked_goal(connection: &mut PgConnection, id: Uuid) -> Result<Goal, Error> {
    Ok(goals::get(connection, id, true)
        .await?
        .ok_or_else(|| error::goal_not_found(id))?)
}

impl Goals {
    /// Adds a TODO task to an open goal; the goal's progress is derived again.
    pub async fn create_task(
        &self,
        goal_id: Uuid,
        fields: TaskFields,
        key: Option<&RequestKey>,
    ) -> Result<(Task, Goal), Error> {
        self.write(key, move |connection| {
            Box::pin(async move {
                let goal = locked_goal(connection, goal_id).await?;
                goal.require_open()?;
                let now = now();
                let task = store::insert(
                    connection,
                    Uuid::now_v7(),
                    goal_id,
                    goal.user_id,
                    &fields,
                    now,
                )
                .await?;
                let goal = goals::recount(connection, goal_id, now).await?;
                let created = NewEvent::new(
                    TASK_AGGREGATE,
                    task.id,
                    task.version,
                    "phoenix.goals.v1.TaskCreated",
                    &pb::TaskCreated {
                        task: Some(proto::task(&task)),
                    },
                    now,
                );
                publish(
                    connection,
                    &[created, goal_updated(&goal, progress_paths())],
                )
                .await?;
                Ok((task, goal))
            })
        })
        .await
    }

    pub async fn task(&self, id: Uuid) -> Result<Task, Error> {
        Ok(store::get(&self.pool, id, false)
            .await?
            .ok_or_else(|| error::task_not_found(id))?)
    }

    /// A page of at most `limit` of the goal's tasks, and where the next one starts. NOT_FOUND
    /// for an unknown goal.
    pub async fn tasks(
        &self,
        goal_id: Uuid,
        status: Option<TaskStatus>,
        after: Option<TaskCursor>,
        limit: i64,
    ) -> Result<(Vec<Task>, Option<TaskCursor>), Error> {
        self.goal(goal_id).await?;
        let size = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut tasks = store::of_goal(&self.pool, goal_id, status, after, limit + 1).await?;
        let more = tasks.len() > size;
        tasks.truncate(size);
        let next = tasks
            .last()
            .filter(|_| more)
            .map(|t| (t.fields.priority, t.created_at, t.id));
        Ok((tasks, next))
    }

    /// Changes the fields named by `paths`. A status change must be an allowed move of a task
    /// of an open goal; the move to DONE counts toward the goal's progress and appends
    /// `TaskCompleted`, all in one transaction.
    pub async fn update_task(
        &self,
        id: Uuid,
        input: TaskInput,
        paths: Vec<String>,
    ) -> Result<(Task, Goal), Error> {
        let goal_id = store::goal_of(&self.pool, id)
            .await?
            .ok_or_else(|| error::task_not_found(id))?;
        self.write(None, move |connection| {
            Box::pin(async move {
                let goal = locked_goal(connection, goal_id).await?;
                let current = store::get(&mut *connection, id, true)
                    .await?
                    .ok_or_else(|| error::task_not_found(id))?;
                let now = now();
                let next = current.fields.with(&input, &paths, "task.")?;
                let moved = current.transition(next.status, now)?;
                if next == current.fields {
                    return Ok((current, goal));
                }
                if next.status != current.fields.status {
                    goal.require_open()?;
                }
                let task = store::update(connection, id, &next, moved, now).await?;
                if !moved.completes {
                    let event = task_event(
                        &task,
                        "phoenix.goals.v1.TaskUpdated",
                        &pb::TaskUpdated {
                            task: Some(proto::task(&task)),
                            paths,
                        },
                    );
                    publish(connection, &[event]).await?;
                    return Ok((task, goal));
                }
                let goal = goals::recount(connection, goal_id, now).await?;
                let completed = task_event(
                    &task,
                    "phoenix.goals.v1.TaskCompleted",
                    &pb::TaskCompleted {
                        task: Some(proto::task(&task)),
                        paths,
                        goal_progress_percentage: decimal(goal.progress()),
                    },
                );
                publish(
                    connection,
                    &[completed, goal_updated(&goal, progress_paths())],
                )
                .await?;
                Ok((task, goal))
            })
        })
        .await
    }
}

fn task_event(task: &Task, event_type: &'static str, payload: &impl prost::Message) -> NewEvent {
    NewEvent::new(
        TASK_AGGREGATE,
        task.id,
        task.version,
        event_type,
        payload,
        task.updated_at,
    )
}
