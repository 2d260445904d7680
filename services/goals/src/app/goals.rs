//! Goals: create, read, list, update.

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::stream::NewEvent;
use uuid::Uuid;

use super::{GOAL_AGGREGATE, Goals, now, publish};
use crate::domain::Goal;
use crate::domain::goal::{GoalFields, GoalInput, initial_stamps};
use crate::store::goals::{self as store, GoalCursor, GoalFilter, NewGoal};
use crate::{error, proto};

/// A page of goals and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct GoalPage {
    pub goals: Vec<Goal>,
    pub next: Option<GoalCursor>,
}

/// The event that records a change of `goal` (its version is the goal's after the change).
pub(super) fn goal_updated(goal: &Goal, paths: Vec<String>) -> NewEvent {
    NewEvent::new(
        GOAL_AGGREGATE,
        goal.id,
        goal.version,
        "phoenix.goals.v1.GoalUpdated",
        &pb::GoalUpdated {
            goal: Some(proto::goal(goal)),
            paths,
        },
        goal.updated_at,
    )
}

impl Goals {
    /// Creates a goal for a user the directory knows, in a course it knows (when given).
    pub async fn create_goal(
        &self,
        user_id: Uuid,
        course_id: Option<Uuid>,
        fields: GoalFields,
        key: Option<&RequestKey>,
    ) -> Result<Goal, Error> {
        self.resolve(user_id, course_id).await?;
        self.write(key, move |connection| {
            Box::pin(async move {
                let now = now();
                let new = NewGoal {
                    id: Uuid::now_v7(),
                    user_id,
                    course_id,
                    fields: &fields,
                    stamps: initial_stamps(fields.status, now),
                    now,
                };
                let goal = store::insert(connection, &new).await?;
                let event = NewEvent::new(
                    GOAL_AGGREGATE,
                    goal.id,
                    goal.version,
                    "phoenix.goals.v1.GoalCreated",
                    &pb::GoalCreated {
                        goal: Some(proto::goal(&goal)),
                    },
                    now,
                );
                publish(connection, &[event]).await?;
                Ok(goal)
            })
        })
        .await
    }

    pub async fn goal(&self, id: Uuid) -> Result<Goal, Error> {
        Ok(store::get(&self.pool, id, false)
            .await?
            .ok_or_else(|| error::goal_not_found(id))?)
    }

    /// A page of at most `limit` goals matching `filter`, by priority or by creation time.
    pub async fn goals(
        &self,
        filter: &GoalFilter,
        by_priority: bool,
        after: Option<GoalCursor>,
        limit: i64,
    ) -> Result<GoalPage, Error> {
        let size = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut goals = store::list(&self.pool, filter, by_priority, after, limit + 1).await?;
        let more = goals.len() > size;
        goals.truncate(size);
        let next = goals.last().filter(|_| more).map(|g| {
            if by_priority {
                GoalCursor::Priority(g.fields.priority.rank(), g.created_at, g.id)
            } else {
                GoalCursor::Created(g.created_at, g.id)
            }
        });
        Ok(GoalPage { goals, next })
    }

    /// Changes the fields named by `paths`; a status change must be an allowed move.
    pub async fn update_goal(
        &self,
        id: Uuid,
        input: GoalInput,
        paths: Vec<String>,
    ) -> Result<Goal, Error> {
        self.write(None, move |connection| {
            Box::pin(async move {
                let current = store::get(&mut *connection, id, true)
                    .await?
                    .ok_or_else(|| error::goal_not_found(id))?;
                let now = now();
                let next = current.fields.with(&input, &paths, "goal.")?;
                let stamps = current.transition(next.status, now)?;
                if next == current.fields {
                    return Ok(current);
                }
                let goal = store::update(connection, id, &next, stamps, now).await?;
                publish(connection, &[goal_updated(&goal, paths)]).await?;
                Ok(goal)
            })
        })
        .await
    }
}
