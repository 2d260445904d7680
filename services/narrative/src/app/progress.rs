//! Per-user progress: requirement checks, visits, unlocks and locks, and the whole progress.

use chrono::{DateTime, Utc};
use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{IDEMPOTENCY_TTL, Narrative, UserChange};
use crate::domain::{
    ExperienceProgress, FragmentProgress, Metrics, Reaction, RequirementCheck, TakenDecision, rules,
};
use crate::store::{catalog, experiences, progress as store, reactions};
use crate::{error, proto};

/// What RecordVisit answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitOutcome {
    pub progress: FragmentProgress,
    pub metrics: Metrics,
}

/// What UnlockFragments answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockOutcome {
    pub unlocked: Vec<Uuid>,
    pub already_unlocked: Vec<Uuid>,
}

/// What LockFragments answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOutcome {
    pub locked: Vec<Uuid>,
    pub not_unlocked: Vec<Uuid>,
}

/// Everything a user did in the narrative.
#[derive(Debug, Clone)]
pub struct UserProgress {
    pub fragments: Vec<FragmentProgress>,
    pub decisions: Vec<TakenDecision>,
    pub completed_levels: Vec<i32>,
    pub experiences: Vec<ExperienceProgress>,
    pub reactions: Vec<Reaction>,
    pub last_activity_at: Option<DateTime<Utc>>,
}

/// NOT_FOUND `FRAGMENT_NOT_FOUND` naming `fragment_ids[i]` for the first id that names no
/// fragment.
async fn fragments_exist(connection: &mut PgConnection, ids: &[Uuid]) -> Result<(), Error> {
    let missing = catalog::missing(&mut *connection, false, ids).await?;
    if let Some((i, id)) = ids.iter().enumerate().find(|(_, id)| missing.contains(id)) {
        return Err(error::fragment_not_found(*id)
            .at(format!("fragment_ids[{i}]"))
            .into());
    }
    Ok(())
}

impl Narrative {
    /// The fragment's requirements for `user`: what this context knows, and the external
    /// facts for the caller to resolve.
    pub async fn check_requirements(
        &self,
        user_id: Uuid,
        fragment_id: Uuid,
    ) -> Result<RequirementCheck, Error> {
        let fragment = catalog::fragment_by_id(&self.pool, fragment_id)
            .await?
            .ok_or_else(|| error::fragment_not_found(fragment_id))?;
        let r = &fragment.input.requirements;
        let known = store::known(
            &self.pool,
            user_id,
            &r.required_fragments,
            &r.required_experiences,
        )
        .await?;
        Ok(rules::evaluate(r, fragment.input.vip_exclusive, &known))
    }

    /// Records a visit of `time_spent_ms` once per key, counting it in the fragment's metrics.
    pub async fn record_visit(
        &self,
        user_id: Uuid,
        fragment_id: Uuid,
        time_spent_ms: i64,
        key: &RequestKey,
    ) -> Result<VisitOutcome, Error> {
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                if !catalog::missing(&mut *connection, false, &[fragment_id])
                    .await?
                    .is_empty()
                {
                    return Err(error::fragment_not_found(fragment_id).into());
                }
                let mut change = UserChange::begin(connection, user_id).await?;
                let (visits, metrics) = store::record_visit(
                    connection,
                    user_id,
                    fragment_id,
                    time_spent_ms,
                    change.now,
                )
                .await?;
                change.record(
                    "phoenix.narrative.v1.FragmentVisited",
                    &pb::FragmentVisited {
                        user_id: user_id.to_string(),
                        fragment_id: fragment_id.to_string(),
                        time_spent: Some(proto::millis(time_spent_ms)),
                        visit_count: visits,
                    },
                );
                change.finish(connection).await?;
                let progress =
                    store::fragment_progress(&mut *connection, user_id, fragment_id).await?;
                Ok(VisitOutcome { progress, metrics })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Unlocks `fragments` for the user once per key; answers which this call unlocked.
    pub async fn unlock_fragments(
        &self,
        user_id: Uuid,
        fragments: &[Uuid],
        key: &RequestKey,
    ) -> Result<UnlockOutcome, Error> {
        let fragments = fragments.to_vec();
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                fragments_exist(connection, &fragments).await?;
                let mut change = UserChange::begin(connection, user_id).await?;
                let unlocked = store::unlock(connection, user_id, &fragments, change.now).await?;
                if !unlocked.is_empty() {
                    change.record(
                        "phoenix.narrative.v1.ContentUnlocked",
                        &pb::ContentUnlocked {
                            user_id: user_id.to_string(),
                            fragment_ids: proto::ids(&unlocked),
                        },
                    );
                }
                change.finish(connection).await?;
                let already_unlocked = fragments
                    .iter()
                    .filter(|id| !unlocked.contains(id))
                    .copied()
                    .collect();
                Ok(UnlockOutcome {
                    unlocked,
                    already_unlocked,
                })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Locks `fragments` again once per key (a compensation of UnlockFragments).
    pub async fn lock_fragments(
        &self,
        user_id: Uuid,
        fragments: &[Uuid],
        key: &RequestKey,
    ) -> Result<LockOutcome, Error> {
        let fragments = fragments.to_vec();
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                fragments_exist(connection, &fragments).await?;
                let mut change = UserChange::begin(connection, user_id).await?;
                let locked = store::lock(connection, user_id, &fragments, change.now).await?;
                if !locked.is_empty() {
                    change.record(
                        "phoenix.narrative.v1.ContentLocked",
                        &pb::ContentLocked {
                            user_id: user_id.to_string(),
                            fragment_ids: proto::ids(&locked),
                        },
                    );
                }
                change.finish(connection).await?;
                let not_unlocked = fragments
                    .iter()
                    .filter(|id| !locked.contains(id))
                    .copied()
                    .collect();
                Ok(LockOutcome {
                    locked,
                    not_unlocked,
                })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }

    /// Everything the user did here (empty for a user who did nothing).
    pub async fn user_progress(&self, user_id: Uuid) -> Result<UserProgress, Error> {
        let fragments = store::all_fragment_progress(&self.pool, user_id).await?;
        let taken = store::decisions_taken(&self.pool, user_id).await?;
        let mut completed_levels: Vec<i32> = taken
            .iter()
            .map(|(_, level)| *level)
            .filter(|l| *l > 0)
            .collect();
        completed_levels.sort_unstable();
        completed_levels.dedup();
        Ok(UserProgress {
            fragments,
            decisions: taken.into_iter().map(|(d, _)| d).collect(),
            completed_levels,
            experiences: experiences::progress_of_user(&self.pool, user_id).await?,
            reactions: reactions::of_user(&self.pool, user_id).await?,
            last_activity_at: store::last_activity(&self.pool, user_id).await?,
        })
    }
}
