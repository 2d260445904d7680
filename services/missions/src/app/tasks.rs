//! Goals' `TaskCompleted`, delivered by the coordinator's bus (see `consumer`): the completed
//! task takes down the shield of every boss of the user linked to it, once per event.
//!
//! De-duplicated on the event id (`missions_v2_task_events`). The row is written after the
//! boards, so a crash in between redelivers the event; applying it again is harmless, because a
//! boss whose shield is down takes no more damage.

use phoenix_runtime::Error;
use uuid::Uuid;

use super::{Missions, ids};
use crate::domain::rules;
use crate::metrics;
use crate::store::task_events;

/// What one `TaskCompleted` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// It took down (or found down) the shield of this many linked bosses, one per board.
    Applied { boards: i32 },
    /// No boss of the user links the task: nothing to do.
    Unlinked,
    /// The event was processed before: nothing changed.
    Duplicate,
}

impl TaskOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Unlinked => "unlinked",
            Self::Duplicate => "duplicate",
        }
    }
}

impl Missions {
    /// Applies the event `event_id` (the user's task `task_id` moved to DONE) to every board of
    /// the user whose boss is linked to the task: its shield goes down (phase 2). A second
    /// delivery of the same event answers `Duplicate` and changes nothing. Errors are the
    /// database's (UNAVAILABLE: deliver again later).
    pub async fn apply_task_completed(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        task_id: Uuid,
    ) -> Result<TaskOutcome, Error> {
        let outcome = self.task_completed(event_id, user_id, task_id).await?;
        metrics::task_event(outcome.label());
        Ok(outcome)
    }

    async fn task_completed(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        task_id: Uuid,
    ) -> Result<TaskOutcome, Error> {
        if task_events::processed(&self.pool, event_id).await? {
            return Ok(TaskOutcome::Duplicate);
        }
        let mut boards = 0;
        for key in self.repo.keys_of_user(user_id).await? {
            let linked = |board: &crate::domain::board::Board| {
                board
                    .boss
                    .as_ref()
                    .is_some_and(|boss| boss.linked_task_id == Some(task_id))
            };
            // Looked at first without the lock, so boards without the link are not written.
            if !self.repo.load(&key).await?.as_ref().is_some_and(linked) {
                continue;
            }
            let changed = self
                .change(&key, |board, catalog, settings, now| {
                    // Linked again under the lock: the link may have moved since the look.
                    if !linked(board) {
                        return Ok(false);
                    }
                    let shield = board
                        .boss
                        .as_ref()
                        .map_or(1, |boss| i32::from(boss.shield_max.max(1)));
                    rules::damage_boss(board, task_id, shield, catalog, settings, &mut ids(), now)?;
                    Ok(true)
                })
                .await;
            match changed {
                Ok((_, true)) => boards += 1,
                Ok((_, false)) => {}
                // The rules said no for this board (its boss run ended as the day closed):
                // nothing to do here, the user's other boards still count.
                Err(Error::Refused(refusal)) => {
                    tracing::info!(%event_id, board = ?key, %refusal, "task completion refused");
                }
                Err(error) => return Err(error),
            }
        }
        if !task_events::record(&self.pool, event_id, user_id, task_id, boards).await? {
            return Ok(TaskOutcome::Duplicate);
        }
        Ok(if boards == 0 {
            TaskOutcome::Unlinked
        } else {
            TaskOutcome::Applied { boards }
        })
    }
}
