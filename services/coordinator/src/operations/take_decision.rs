//! TakeDecision (seed 001 `TOMAR_DECISION`): the composite requirements, then the saga
//!
//! apply_decision → grant_besitos → add_items → unlock_fragments → unlock_experiences →
//! progress_experience, with `coordinator.decision_taken` on commit.
//!
//! Each compensation is safe when its action never happened: the narrative's reverts answer
//! NOT_APPLIED, and the ledger's undo first repeats the action under the action's own key
//! (which answers the first call's result, or makes it now) and then reverses it.
//!
//! A refusal of `progress_experience` on the experience's own rules (the user has not reached
//! this component yet, abandoned or completed the experience) does not undo the decision: the
//! step answers "not progressed" with the narrative's reason.

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::events::v1 as events;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::{Error, Violations};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::facts;
use super::participants::{LedgerBook, LedgerBooks, Participants};
use super::requirements::{Missing, RequirementKind, missing};
use super::steps::{Payment, Unlockable, reversible_grant, reversible_items, reversible_unlock};
use super::{Operations, operation_event, record, recorded, settled};
use crate::saga::{
    SagaDefinition, SagaEvent, SagaRequest, Step, StepContext, StepError, StepResult,
};

/// The saga's type name.
pub const SAGA_TYPE: &str = "take_decision";

/// What the saga runs on, decided before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionInput {
    /// The ledger tenant of the user's accounts and holdings.
    pub tenant_id: Uuid,
    pub user_id: String,
    pub fragment_id: String,
    pub decision_id: String,
    /// The experience the fragment is a component of, if any.
    pub experience_id: Option<String>,
    /// The asset besitos are paid in.
    pub currency_asset: String,
}

/// The rewards the narrative answered, as the saga keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardsGranted {
    pub besitos: i64,
    pub items: Vec<(String, i64)>,
    pub unlock_fragment_ids: Vec<String>,
    pub unlock_experience_ids: Vec<String>,
    pub achievement_ids: Vec<String>,
}

impl RewardsGranted {
    fn of(rewards: Option<narrative::Rewards>) -> Self {
        let rewards = rewards.unwrap_or_default();
        Self {
            besitos: rewards.besitos,
            items: facts::items(&rewards.items).into_iter().collect(),
            unlock_fragment_ids: rewards.unlock_fragment_ids,
            unlock_experience_ids: rewards.unlock_experience_ids,
            achievement_ids: rewards.achievement_ids,
        }
    }

    fn to_proto(&self) -> narrative::Rewards {
        narrative::Rewards {
            besitos: self.besitos,
            items: self
                .items
                .iter()
                .map(|(item_id, quantity)| narrative::ItemAmount {
                    item_id: item_id.clone(),
                    quantity: *quantity,
                })
                .collect(),
            unlock_fragment_ids: self.unlock_fragment_ids.clone(),
            unlock_experience_ids: self.unlock_experience_ids.clone(),
            achievement_ids: self.achievement_ids.clone(),
        }
    }
}

/// The output of `apply_decision`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub rewards: RewardsGranted,
    pub next_fragment_id: String,
    pub completed_level: i32,
}

/// The output of `progress_experience`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progressed {
    /// The experience progressed; None when the fragment is in none or it was not progressed.
    pub experience_id: Option<String>,
    pub completed_now: bool,
    /// Why the narrative did not progress it (e.g. COMPONENT_OUT_OF_ORDER).
    pub not_progressed: Option<String>,
    /// The experience's rewards, when this progress completed it.
    pub rewards: Option<RewardsGranted>,
}

/// What the key's record holds: the answer when requirements were unmet, or the saga's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Gate {
    Unmet(Vec<Missing>),
    Saga(DecisionInput),
}

/// The validated request.
pub struct TakeDecision {
    pub tenant_id: Uuid,
    pub user_id: String,
    pub fragment_id: String,
    pub decision_id: String,
    pub idempotency_key: String,
}

impl TakeDecision {
    /// Every field checked at once.
    pub fn validate(request: &pb::TakeDecisionRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let user = v.uuid("user_id", &request.user_id);
        let fragment = v.uuid("fragment_id", &request.fragment_id);
        let decision = v.uuid("decision_id", &request.decision_id);
        let key = v.idempotency_key(&request.idempotency_key);
        let tenant = v.uuid("tenant_id", &request.tenant_id);
        v.finish()?;
        Ok(Self {
            tenant_id: tenant,
            user_id: user.to_string(),
            fragment_id: fragment.to_string(),
            decision_id: decision.to_string(),
            idempotency_key: key,
        })
    }
}

impl Operations {
    /// TakeDecision: see the module documentation.
    pub async fn take_decision(
        &self,
        request: &pb::TakeDecisionRequest,
    ) -> Result<pb::TakeDecisionResponse, Error> {
        let call = TakeDecision::validate(request)?;
        let (participants, book) = self.ready(call.tenant_id).await?;
        let key = RequestKey::new(
            &call.user_id,
            &call.idempotency_key,
            "TakeDecision",
            request,
        );
        let gate = match recorded::<Gate>(&self.pool, &key).await? {
            Some(gate) => gate,
            None => {
                let gate = self.decision_gate(&participants, &book, &call).await?;
                let events = match &gate {
                    Gate::Unmet(missing) => vec![operation_event(
                        "coordinator.requirements_failed",
                        &events::CoordinatorRequirementsFailed {
                            user_id: call.user_id.clone(),
                            fragment_id: call.fragment_id.clone(),
                            decision_id: call.decision_id.clone(),
                            missing: missing.iter().map(missing_to_event).collect(),
                        },
                    )],
                    Gate::Saga(_) => Vec::new(),
                };
                record(&self.pool, &key, gate, events).await?
            }
        };
        let input = match gate {
            Gate::Unmet(missing) => {
                return Ok(pb::TakeDecisionResponse {
                    success: false,
                    missing_requirements: missing.iter().map(missing_to_proto).collect(),
                    ..Default::default()
                });
            }
            Gate::Saga(input) => input,
        };
        let saga = SagaRequest::new(SAGA_TYPE, &call.idempotency_key, &input)?
            .user(&call.user_id)
            .fingerprint_of(request);
        let outcome = self.engine.run(saga).await?;
        let failure = settled(&outcome)?;
        let mut answer = pb::TakeDecisionResponse {
            success: failure.is_none(),
            saga_id: outcome.saga_id.to_string(),
            failure: failure.map(Into::into),
            ..Default::default()
        };
        if answer.success {
            let applied: Applied = outcome.output("apply_decision")?;
            let progressed: Progressed = outcome.output("progress_experience")?;
            answer.next_fragment_id = applied.next_fragment_id;
            answer.completed_level = applied.completed_level;
            answer.rewards_granted = Some(applied.rewards.to_proto());
            answer.experiences_updated = progressed.experience_id.into_iter().collect();
        }
        Ok(answer)
    }

    /// The user, the fragment and its decision must exist (NOT_FOUND otherwise); then either
    /// the missing requirements or the saga's input.
    async fn decision_gate(
        &self,
        participants: &Participants,
        book: &LedgerBook,
        call: &TakeDecision,
    ) -> Result<Gate, Error> {
        facts::user(participants, &call.user_id).await?;
        let answer = facts::fragment(participants, &call.user_id, &call.fragment_id, false).await?;
        let fragment = answer.fragment.unwrap_or_default();
        if !fragment.decisions.iter().any(|d| d.id == call.decision_id) {
            return Err(phoenix_runtime::Refusal::not_found(
                "DECISION_NOT_FOUND",
                format!(
                    "fragment {} has no decision {}",
                    call.fragment_id, call.decision_id
                ),
            )
            .at("decision_id")
            .into());
        }
        let required = facts::required(&answer.check.unwrap_or_default());
        let facts =
            facts::facts(participants, book, &self.settings, &call.user_id, &required).await?;
        let missing = missing(&required, &facts);
        if !missing.is_empty() {
            return Ok(Gate::Unmet(missing));
        }
        Ok(Gate::Saga(DecisionInput {
            tenant_id: call.tenant_id,
            user_id: call.user_id.clone(),
            fragment_id: call.fragment_id.clone(),
            decision_id: call.decision_id.clone(),
            experience_id: (!fragment.experience_id.is_empty()).then_some(fragment.experience_id),
            currency_asset: self.settings.currency_asset.clone(),
        }))
    }
}

/// A missing requirement on the wire.
pub fn missing_to_proto(missing: &Missing) -> pb::MissingRequirement {
    let kind = match missing.kind {
        RequirementKind::Vip => pb::RequirementKind::Vip,
        RequirementKind::Level => pb::RequirementKind::Level,
        RequirementKind::Item => pb::RequirementKind::Item,
        RequirementKind::Achievement => pb::RequirementKind::Achievement,
        RequirementKind::Experience => pb::RequirementKind::Experience,
        RequirementKind::Fragment => pb::RequirementKind::Fragment,
    };
    pb::MissingRequirement {
        kind: kind.into(),
        id: missing.id.clone(),
        required: missing.required,
        current: missing.current,
        suggestion: missing.suggestion.clone(),
    }
}

/// A missing requirement in `coordinator.requirements_failed`.
pub fn missing_to_event(missing: &Missing) -> events::MissingRequirement {
    let kind = match missing.kind {
        RequirementKind::Vip => "vip",
        RequirementKind::Level => "level",
        RequirementKind::Item => "item",
        RequirementKind::Achievement => "achievement",
        RequirementKind::Experience => "experience",
        RequirementKind::Fragment => "unlock",
    };
    events::MissingRequirement {
        kind: kind.to_owned(),
        requirement: if missing.id.is_empty() {
            missing.required.to_string()
        } else {
            missing.id.clone()
        },
        suggestion: missing.suggestion.clone(),
        required: missing.required,
        current: missing.current,
    }
}

/// The saga.
pub fn definition(participants: &Participants, book: &LedgerBooks) -> SagaDefinition {
    SagaDefinition::new(SAGA_TYPE, 1)
        .step(apply_decision(participants))
        .step(reversible_grant(
            "grant_besitos",
            participants,
            book,
            besitos,
        ))
        .step(reversible_items("add_items", participants, book, items))
        .step(reversible_unlock(
            "unlock_fragments",
            Unlockable::Fragments,
            participants,
            fragments,
        ))
        .step(reversible_unlock(
            "unlock_experiences",
            Unlockable::Experiences,
            participants,
            experiences,
        ))
        .step(progress_experience(participants))
        .step(reversible_grant(
            "grant_experience_besitos",
            participants,
            book,
            experience_besitos,
        ))
        .step(reversible_items(
            "add_experience_items",
            participants,
            book,
            experience_items,
        ))
        .on_commit(|saga| {
            let input: DecisionInput = saga.input()?;
            let applied: Applied = saga.output_of("apply_decision")?.unwrap_or_default();
            let progressed: Progressed = saga.output_of("progress_experience")?.unwrap_or_default();
            let mut rewards = vec![&applied.rewards];
            rewards.extend(progressed.rewards.as_ref());
            Ok(vec![SagaEvent::new(
                "coordinator.decision_taken",
                &events::CoordinatorDecisionTaken {
                    user_id: input.user_id,
                    fragment_id: input.fragment_id,
                    decision_id: input.decision_id,
                    saga_id: saga.saga_id().to_string(),
                    besitos_granted: rewards.iter().map(|r| r.besitos).sum(),
                    item_ids: rewards
                        .iter()
                        .flat_map(|r| r.items.iter().map(|(item, _)| item.clone()))
                        .collect(),
                    unlocked_fragment_ids: applied.rewards.unlock_fragment_ids.clone(),
                    experience_ids: progressed.experience_id.into_iter().collect(),
                },
            )])
        })
}

fn apply_decision(participants: &Participants) -> Step {
    let action = participants.clone();
    let undo = participants.clone();
    Step::new("apply_decision", move |ctx: StepContext| {
        let mut narrative = action.narrative.clone();
        async move {
            let input: DecisionInput = ctx.input()?;
            let answer = narrative
                .apply_decision(ctx.request(narrative::ApplyDecisionRequest {
                    user_id: input.user_id,
                    fragment_id: input.fragment_id,
                    decision_id: input.decision_id,
                    idempotency_key: ctx.idempotency_key(),
                }))
                .await?
                .into_inner();
            Ok(Applied {
                rewards: RewardsGranted::of(answer.rewards),
                next_fragment_id: answer.next_fragment_id,
                completed_level: answer.completed_level,
            })
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut narrative = undo.narrative.clone();
        async move {
            let input: DecisionInput = ctx.input()?;
            // NOT_APPLIED when the decision was never recorded: nothing to undo.
            narrative
                .revert_decision(ctx.request(narrative::RevertDecisionRequest {
                    user_id: input.user_id,
                    fragment_id: input.fragment_id,
                    decision_id: input.decision_id,
                    idempotency_key: ctx.idempotency_key(),
                }))
                .await?;
            Ok(())
        }
    })
}

/// The rewards `apply_decision` answered (it succeeded before any later step ran).
fn applied(ctx: &StepContext) -> StepResult<Applied> {
    ctx.output_of("apply_decision")
}

/// The besitos the decision pays.
fn besitos(ctx: &StepContext) -> StepResult<Option<Payment>> {
    let input: DecisionInput = ctx.input()?;
    Ok(Some(Payment {
        user: input.user_id,
        asset: input.currency_asset,
        amount: applied(ctx)?.rewards.besitos,
        code: "decision_reward",
    }))
}

/// The fragments the decision unlocks.
fn fragments(ctx: &StepContext) -> StepResult<(String, Vec<String>)> {
    let input: DecisionInput = ctx.input()?;
    Ok((input.user_id, applied(ctx)?.rewards.unlock_fragment_ids))
}

/// The experiences the decision unlocks.
fn experiences(ctx: &StepContext) -> StepResult<(String, Vec<String>)> {
    let input: DecisionInput = ctx.input()?;
    Ok((input.user_id, applied(ctx)?.rewards.unlock_experience_ids))
}

/// The items the decision grants.
fn items(ctx: &StepContext) -> StepResult<(String, Vec<(String, i64)>)> {
    let input: DecisionInput = ctx.input()?;
    Ok((input.user_id, applied(ctx)?.rewards.items))
}

/// The rewards of the experience this decision completed (none when it completed none).
fn completed(ctx: &StepContext) -> StepResult<RewardsGranted> {
    let progressed: Progressed = ctx.output_of("progress_experience")?;
    Ok(progressed
        .rewards
        .filter(|_| progressed.completed_now)
        .unwrap_or_default())
}

/// The besitos of the experience this decision completed.
fn experience_besitos(ctx: &StepContext) -> StepResult<Option<Payment>> {
    let input: DecisionInput = ctx.input()?;
    Ok(Some(Payment {
        user: input.user_id,
        asset: input.currency_asset,
        amount: completed(ctx)?.besitos,
        code: "experience_reward",
    }))
}

/// The items of the experience this decision completed.
fn experience_items(ctx: &StepContext) -> StepResult<(String, Vec<(String, i64)>)> {
    let input: DecisionInput = ctx.input()?;
    Ok((input.user_id, completed(ctx)?.items))
}

/// Refusals of the experience's own rules that leave the decision standing.
const NOT_PROGRESSED: [&str; 4] = [
    "COMPONENT_OUT_OF_ORDER",
    "EXPERIENCE_ABANDONED",
    "EXPERIENCE_COMPLETED",
    "EXPERIENCE_NOT_UNLOCKED",
];

fn progress_experience(participants: &Participants) -> Step {
    let action = participants.clone();
    let undo = participants.clone();
    Step::new("progress_experience", move |ctx: StepContext| {
        let mut narrative = action.narrative.clone();
        async move {
            let input: DecisionInput = ctx.input()?;
            let Some(experience_id) = input.experience_id.clone() else {
                return Ok(Progressed::default());
            };
            let answer = narrative
                .progress_experience_component(ctx.request(
                    narrative::ProgressExperienceComponentRequest {
                        user_id: input.user_id,
                        experience_id: experience_id.clone(),
                        component: Some(fragment_component(&input.fragment_id)),
                        idempotency_key: ctx.idempotency_key(),
                    },
                ))
                .await;
            match answer {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    Ok(Progressed {
                        experience_id: Some(experience_id),
                        completed_now: answer.completed_now,
                        not_progressed: None,
                        rewards: answer
                            .completed_now
                            .then(|| RewardsGranted::of(answer.rewards)),
                    })
                }
                Err(status) => match StepError::from_status(&status) {
                    StepError::Refused(failure)
                        if NOT_PROGRESSED.contains(&failure.reason.as_str()) =>
                    {
                        Ok(Progressed {
                            experience_id: None,
                            completed_now: false,
                            not_progressed: Some(failure.reason),
                            rewards: None,
                        })
                    }
                    other => Err(other),
                },
            }
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut narrative = undo.narrative.clone();
        async move {
            let input: DecisionInput = ctx.input()?;
            let Some(experience_id) = input.experience_id.clone() else {
                return Ok(());
            };
            if let Some(progressed) = ctx.output::<Progressed>()?
                && progressed.experience_id.is_none()
            {
                return Ok(()); // not progressed: nothing to undo
            }
            // NOT_APPLIED when the component was never completed by this saga's call.
            narrative
                .revert_experience_component(ctx.request(
                    narrative::RevertExperienceComponentRequest {
                        user_id: input.user_id,
                        experience_id,
                        component: Some(fragment_component(&input.fragment_id)),
                        idempotency_key: ctx.idempotency_key(),
                    },
                ))
                .await?;
            Ok(())
        }
    })
}

fn fragment_component(fragment_id: &str) -> narrative::ComponentRef {
    narrative::ComponentRef {
        target: Some(narrative::component_ref::Target::FragmentId(
            fragment_id.to_owned(),
        )),
    }
}
