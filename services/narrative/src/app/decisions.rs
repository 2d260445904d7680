//! ApplyDecision and RevertDecision: a user's one decision per fragment, and its compensation.

use phoenix_proto::narrative::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::idempotency::{self, RequestKey};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{IDEMPOTENCY_TTL, Narrative, UserChange};
use crate::domain::story::decision_rewards;
use crate::domain::{CheckStatus, Decision, Fragment, Reverted, Rewards, TakenDecision, rules};
use crate::store::{catalog, progress as store};
use crate::{error, proto};

/// What ApplyDecision answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionOutcome {
    pub taken: TakenDecision,
    pub rewards: Rewards,
    pub next_fragment: Option<Uuid>,
    pub completed_level: i32,
}

/// What RevertDecision answers (and replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertOutcome {
    pub outcome: Reverted,
    /// The rewards the undone decision had answered.
    pub rewards: Rewards,
}

/// The fragment and its decision `decision_id`, with `user`'s state locked and its change
/// begun; NOT_FOUND for either, FAILED_PRECONDITION `DECISION_NOT_OF_FRAGMENT` for a decision
/// of another fragment.
async fn fragment_and_decision(
    connection: &mut PgConnection,
    user_id: Uuid,
    fragment_id: Uuid,
    decision_id: Uuid,
) -> Result<(Fragment, Decision, UserChange), Error> {
    let (fragment, decision, version) = catalog::fragment_and_decision(
        &mut *connection,
        fragment_id,
        decision_id,
        Some((user_id, super::now())),
    )
    .await?;
    let fragment = fragment.ok_or_else(|| error::fragment_not_found(fragment_id))?;
    let decision = decision.ok_or_else(|| error::decision_not_found(decision_id))?;
    if decision.fragment_id != fragment_id {
        return Err(error::decision_of_another_fragment(
            decision_id,
            fragment_id,
            decision.fragment_id,
        )
        .into());
    }
    Ok((fragment, decision, UserChange::locked(user_id, version)))
}

impl Narrative {
    /// Records `user`'s decision on the fragment once per key and answers the rewards to grant;
    /// a second decision on the fragment (with any other key) is ALREADY_EXISTS
    /// `DECISION_ALREADY_TAKEN`, and requirements known here that do not hold are
    /// FAILED_PRECONDITION `REQUIREMENTS_NOT_MET`.
    pub async fn apply_decision(
        &self,
        user_id: Uuid,
        fragment_id: Uuid,
        decision_id: Uuid,
        key: &RequestKey,
    ) -> Result<DecisionOutcome, Error> {
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let (fragment, decision, mut change) =
                    fragment_and_decision(connection, user_id, fragment_id, decision_id).await?;
                let r = &fragment.input.requirements;
                if !r.required_fragments.is_empty() || !r.required_experiences.is_empty() {
                    let known = store::known(
                        &mut *connection,
                        user_id,
                        &r.required_fragments,
                        &r.required_experiences,
                    )
                    .await?;
                    let check = rules::evaluate(r, fragment.input.vip_exclusive, &known);
                    if check.status == CheckStatus::NotMet {
                        return Err(error::requirements_not_met(&check).into());
                    }
                }
                let (rewards, level) = decision_rewards(&fragment, &decision);
                let taken = TakenDecision {
                    user_id,
                    fragment_id,
                    decision_id,
                    taken_at: change.now,
                };
                change.record(
                    "phoenix.narrative.v1.DecisionTaken",
                    &pb::DecisionTaken {
                        decision: Some(proto::taken_decision(&taken)),
                        rewards: Some(proto::rewards(&rewards)),
                        next_fragment_id: proto::optional_id(decision.next_fragment),
                    },
                );
                if level > 0 {
                    change.record(
                        "phoenix.narrative.v1.LevelCompleted",
                        &pb::LevelCompleted {
                            user_id: user_id.to_string(),
                            level,
                            fragment_id: fragment_id.to_string(),
                        },
                    );
                }
                let (version, events) = change.into_events();
                store::take_decision(connection, &taken, &rewards, level, version, &events).await?;
                Ok(DecisionOutcome {
                    taken,
                    rewards,
                    next_fragment: decision.next_fragment,
                    completed_level: level,
                })
            })
        })
        .await;
        let outcome = match outcome {
            // The primary key refused it inside the transaction, which cannot read on: the
            // decision that holds the fragment is committed, so it reads here, for the caller
            // to tell its own earlier decision (a retry under a new key) from another one.
            Err(refused) if refused.reason() == "DECISION_ALREADY_TAKEN" => {
                let taken = store::user_decision(&self.pool, user_id, fragment_id)
                    .await?
                    .map(|(id, ..)| id);
                return Err(error::decision_already_taken(fragment_id, taken).into());
            }
            outcome => outcome?,
        };
        self.events.appended();
        Ok(outcome)
    }

    /// Undoes `user`'s decision `decision_id` on the fragment, once per key. When the user's
    /// decision there is another one, or none, nothing changes and the answer says
    /// `NotApplied`.
    pub async fn revert_decision(
        &self,
        user_id: Uuid,
        fragment_id: Uuid,
        decision_id: Uuid,
        key: &RequestKey,
    ) -> Result<RevertOutcome, Error> {
        let outcome = idempotency::once(&self.pool, key, IDEMPOTENCY_TTL, move |connection| {
            Box::pin(async move {
                let (.., mut change) =
                    fragment_and_decision(connection, user_id, fragment_id, decision_id).await?;
                let taken = store::user_decision(&mut *connection, user_id, fragment_id).await?;
                let Some((_, rewards, _, taken_at)) =
                    taken.filter(|(taken, ..)| *taken == decision_id)
                else {
                    return Ok(RevertOutcome {
                        outcome: Reverted::NotApplied,
                        rewards: Rewards::default(),
                    });
                };
                store::remove_decision(connection, user_id, fragment_id, change.now).await?;
                change.record(
                    "phoenix.narrative.v1.DecisionReverted",
                    &pb::DecisionReverted {
                        decision: Some(proto::taken_decision(&TakenDecision {
                            user_id,
                            fragment_id,
                            decision_id,
                            taken_at,
                        })),
                    },
                );
                change.finish(connection).await?;
                Ok(RevertOutcome {
                    outcome: Reverted::Reverted,
                    rewards,
                })
            })
        })
        .await?;
        self.events.appended();
        Ok(outcome)
    }
}
