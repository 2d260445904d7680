//! Experience progress: unlock (and its compensation), component progress (and its
//! compensation), abandonment. Each is once per key, under the user's lock.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{IDEMPOTENCY_TTL, Narrative, UserChange};
use crate::domain::experience::Status;
use crate::domain::{Experience, ExperienceProgress, Reverted, Rewards, Target};
use crate::store::{catalog, experiences as store};
use crate::{error, proto};

/// What ProgressExperienceComponent answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentOutcome {
    pub progress: ExperienceProgress,
    pub completed_now: bool,
    /// The experience's rewards, when this call completed it.
    pub rewards: Rewards,
}

/// The experience and the user's progress in it (new when none), locked.
async fn load(
    connection: &mut PgConnection,
    user_id: Uuid,
    experience_id: Uuid,
) -> Result<(Experience, ExperienceProgress), Error> {
    let (experience, ..) = catalog::experience_by_id(connection, experience_id)
        .await?
        .ok_or_else(|| error::experience_not_found(experience_id))?;
    let progress = store::progress_of(&mut *connection, user_id, experience_id, true)
        .await?
        .unwrap_or_else(|| ExperienceProgress::new(&experience));
    Ok((experience, progress))
}

/// Records one change of the experience in the user's stream.
fn changed(change: &mut UserChange, progress: &ExperienceProgress, what: &str, sequence: i32) {
    change.record(
        "phoenix.narrative.v1.ExperienceChanged",
        &pb::ExperienceChanged {
            user_id: change.user_id.to_string(),
            experience_id: progress.experience_id.to_string(),
            change: what.to_owned(),
            sequence,
            progress: Some(proto::experience_progress(progress)),
        },
    );
}

/// What RevertExperienceComponent answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRevert {
    pub outcome: Reverted,
    pub progress: ExperienceProgress,
    /// The experience's rewards, when this revert undid its completion: the completion
    /// answered them, and completing it again answers them again, so the compensating caller
    /// takes them back. (Outcomes recorded before it existed replay without it.)
    #[serde(default)]
    pub rewards: Rewards,
}

/// The sequence of the component `target` completes; NOT_FOUND `COMPONENT_NOT_FOUND`.
fn sequence(experience: &Experience, target: &Target) -> Result<i32, Error> {
    experience
        .sequence_of(target)
        .ok_or_else(|| error::component_not_found(experience.id).into())
}

impl Narrative {
    /// Makes the experience available to the user once per key; true when this call did.
    pub async fn unlock_experience(
        &self,
        user_id: Uuid,
        experience_id: Uuid,
        key: &RequestKey,
    ) -> Result<(ExperienceProgress, bool), Error> {
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let mut change = UserChange::begin(connection, user_id).await?;
                let (_, mut progress) = load(connection, user_id, experience_id).await?;
                if progress.unlocked_at.is_some() {
                    return Ok((progress, false));
                }
                progress.unlocked_at = Some(change.now);
                store::save(connection, user_id, &progress, change.now).await?;
                changed(&mut change, &progress, "unlocked", 0);
                change.finish(connection).await?;
                Ok((progress, true))
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Undoes UnlockExperience once per key while the experience is not started; a started one
    /// is FAILED_PRECONDITION `EXPERIENCE_STARTED`.
    pub async fn lock_experience(
        &self,
        user_id: Uuid,
        experience_id: Uuid,
        key: &RequestKey,
    ) -> Result<Reverted, Error> {
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let mut change = UserChange::begin(connection, user_id).await?;
                let (_, mut progress) = load(connection, user_id, experience_id).await?;
                if progress.unlocked_at.is_none() {
                    return Ok(Reverted::NotApplied);
                }
                if progress.status != Status::NotStarted {
                    return Err(error::experience_started(experience_id).into());
                }
                progress.unlocked_at = None;
                store::remove(connection, user_id, experience_id).await?;
                changed(&mut change, &progress, "locked", 0);
                change.finish(connection).await?;
                Ok(Reverted::Reverted)
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Completes the component `target` once per key (in order); the last one completes the
    /// experience and answers its rewards.
    pub async fn progress_component(
        &self,
        user_id: Uuid,
        experience_id: Uuid,
        target: &Target,
        key: &RequestKey,
    ) -> Result<ComponentOutcome, Error> {
        let target = target.clone();
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let mut change = UserChange::begin(connection, user_id).await?;
                let (experience, mut progress) = load(connection, user_id, experience_id).await?;
                let sequence = sequence(&experience, &target)?;
                let step = progress.complete(&experience, sequence, change.now)?;
                if !step.changed {
                    return Ok(ComponentOutcome {
                        progress,
                        completed_now: false,
                        rewards: Rewards::default(),
                    });
                }
                store::save(connection, user_id, &progress, change.now).await?;
                if step.started_now {
                    changed(&mut change, &progress, "started", 0);
                }
                changed(&mut change, &progress, "component_completed", sequence);
                if step.completed_now {
                    changed(&mut change, &progress, "completed", 0);
                }
                change.finish(connection).await?;
                Ok(ComponentOutcome {
                    progress,
                    completed_now: step.completed_now,
                    rewards: if step.completed_now {
                        experience.rewards
                    } else {
                        Rewards::default()
                    },
                })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Undoes the component `target` once per key; one never completed is `NotApplied`.
    pub async fn revert_component(
        &self,
        user_id: Uuid,
        experience_id: Uuid,
        target: &Target,
        key: &RequestKey,
    ) -> Result<ComponentRevert, Error> {
        let target = target.clone();
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let mut change = UserChange::begin(connection, user_id).await?;
                let (experience, mut progress) = load(connection, user_id, experience_id).await?;
                let sequence = sequence(&experience, &target)?;
                let was_completed = progress.status == Status::Completed;
                if !progress.revert(sequence) {
                    return Ok(ComponentRevert {
                        outcome: Reverted::NotApplied,
                        progress,
                        rewards: Rewards::default(),
                    });
                }
                store::save(connection, user_id, &progress, change.now).await?;
                changed(&mut change, &progress, "component_reverted", sequence);
                change.finish(connection).await?;
                Ok(ComponentRevert {
                    outcome: Reverted::Reverted,
                    progress,
                    rewards: if was_completed {
                        experience.rewards
                    } else {
                        Rewards::default()
                    },
                })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Marks a started experience abandoned once per key.
    pub async fn abandon_experience(
        &self,
        user_id: Uuid,
        experience_id: Uuid,
        key: &RequestKey,
    ) -> Result<ExperienceProgress, Error> {
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let mut change = UserChange::begin(connection, user_id).await?;
                let (_, mut progress) = load(connection, user_id, experience_id).await?;
                if progress.abandon(change.now)? {
                    store::save(connection, user_id, &progress, change.now).await?;
                    changed(&mut change, &progress, "abandoned", 0);
                    change.finish(connection).await?;
                }
                Ok(progress)
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revert_recorded_before_its_rewards_existed_still_replays() {
        let experience = Experience {
            id: Uuid::now_v7(),
            title: "t".into(),
            description: String::new(),
            components: vec![Target::Mission("m".into())],
            rewards: Rewards::default(),
        };
        let progress = ExperienceProgress::new(&experience);
        let recorded = serde_json::to_value((Reverted::Reverted, &progress)).expect("json");
        let replayed: ComponentRevert = serde_json::from_value(recorded).expect("replays");
        assert_eq!(replayed.outcome, Reverted::Reverted);
        assert_eq!(replayed.progress, progress);
        assert!(replayed.rewards.is_empty());
    }
}
