//! ClaimMissionReward: missions claim → credit XP → credit currency → add items.
//!
//! The claim is the pivot: missions records it exactly once per run and it cannot be undone,
//! so the steps after it only go forward (retried, then STUCK for an operator, never
//! compensated). A claim the missions context refuses (an unknown run, a run that has not
//! succeeded) leaves nothing to undo.
//!
//! The ledger keys of the credits are derived from the missions claim id, not from the saga:
//! a run claimed again (missions answers the first claim, `replayed`) by another request, with
//! another key, credits nothing twice.

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::events::v1 as events;
use phoenix_proto::missions::v1 as missions;
use phoenix_proto::narrative::v1::ItemAmount;
use phoenix_runtime::{Error, Violations};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::participants::{Grant, HoldingChange, LedgerBooks, Participants};
use super::settings::OperationsSettings;
use super::{Operations, facts, not_found_first, settled};
use crate::saga::{SagaDefinition, SagaEvent, SagaRequest, Step, StepContext, StepResult};

/// The saga's type name.
pub const SAGA_TYPE: &str = "claim_mission_reward";

/// What the saga runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInput {
    /// The ledger tenant of the user's accounts and holdings.
    pub tenant_id: Uuid,
    pub user_id: String,
    pub season_id: String,
    pub run_id: String,
}

/// The output of `claim`: what missions granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimed {
    pub claim_id: String,
    pub xp: i64,
    pub currency: i64,
    pub items: Vec<(String, i64)>,
    pub badge_id: String,
    /// Missions answered an earlier claim of the run.
    pub replayed: bool,
}

impl Operations {
    /// ClaimMissionReward: see the module documentation.
    pub async fn claim_mission_reward(
        &self,
        request: &pb::ClaimMissionRewardRequest,
    ) -> Result<pb::ClaimMissionRewardResponse, Error> {
        let mut v = Violations::new();
        let user = v.uuid("user_id", &request.user_id);
        let season = v.text("season_id", &request.season_id, 64);
        let run = v.uuid("run_id", &request.run_id);
        let key = v.idempotency_key(&request.idempotency_key);
        let tenant = v.uuid("tenant_id", &request.tenant_id);
        v.finish()?;
        let (participants, _) = self.ready(tenant).await?;
        facts::user(&participants, &user.to_string()).await?;
        let input = ClaimInput {
            tenant_id: tenant,
            user_id: user.to_string(),
            season_id: season,
            run_id: run.to_string(),
        };
        let saga = SagaRequest::new(SAGA_TYPE, &key, &input)?
            .user(user.to_string())
            .fingerprint_of(request);
        let outcome = self.engine.run(saga).await?;
        let failure = settled(&outcome)?;
        not_found_first(&failure, "claim")?;
        let mut answer = pb::ClaimMissionRewardResponse {
            success: failure.is_none(),
            saga_id: outcome.saga_id.to_string(),
            failure: failure.map(Into::into),
            ..Default::default()
        };
        if let Some(claimed) = outcome.outputs.get("claim") {
            let claimed: Claimed = serde_json::from_value(claimed.clone())
                .map_err(|e| Error::invariant("SAGA_OUTPUT_UNREADABLE", e.to_string()))?;
            answer.claim_id = claimed.claim_id;
            answer.xp = claimed.xp;
            answer.currency = claimed.currency;
            answer.badge_id = claimed.badge_id;
            answer.items = claimed
                .items
                .into_iter()
                .map(|(item_id, quantity)| ItemAmount { item_id, quantity })
                .collect();
        }
        Ok(answer)
    }
}

/// The saga.
pub fn definition(
    participants: &Participants,
    book: &LedgerBooks,
    settings: &OperationsSettings,
) -> SagaDefinition {
    SagaDefinition::new(SAGA_TYPE, 1)
        .step(claim(participants))
        .step(credit(
            "credit_xp",
            participants,
            book,
            settings.xp_asset.clone(),
            |claimed| claimed.xp,
        ))
        .step(credit(
            "credit_currency",
            participants,
            book,
            settings.currency_asset.clone(),
            |claimed| claimed.currency,
        ))
        .step(add_items(participants, book))
        .on_commit(|saga| {
            let input: ClaimInput = saga.input()?;
            let claimed: Claimed = saga.output_of("claim")?.unwrap_or_default();
            Ok(vec![SagaEvent::new(
                "gamification.mission_completed",
                &events::GamificationMissionCompleted {
                    user_id: input.user_id,
                    mission_id: String::new(),
                    run_id: input.run_id,
                    season_id: input.season_id,
                    claim_id: claimed.claim_id,
                    xp: claimed.xp,
                    currency: claimed.currency,
                    item_ids: claimed.items.into_iter().map(|(item, _)| item).collect(),
                    badge_id: claimed.badge_id,
                },
            )])
        })
}

fn claim(participants: &Participants) -> Step {
    let action = participants.clone();
    Step::new("claim", move |ctx: StepContext| {
        let mut client = action.missions.clone();
        async move {
            let input: ClaimInput = ctx.input()?;
            // Exactly once per run in missions: a retry answers the first claim (`replayed`).
            let answer = client
                .claim_run(ctx.request(missions::ClaimRunRequest {
                    user_id: input.user_id,
                    season_id: input.season_id,
                    run_id: input.run_id,
                }))
                .await?
                .into_inner();
            let claim = answer.claim.unwrap_or_default();
            let reward = claim.reward.unwrap_or_default();
            Ok(Claimed {
                claim_id: claim.claim_id,
                xp: i64::from(reward.xp),
                currency: i64::from(reward.currency),
                items: reward
                    .items
                    .into_iter()
                    .map(|item| (item.code, i64::from(item.quantity)))
                    .collect(),
                badge_id: reward.badge_id,
                replayed: answer.replayed,
            })
        }
    })
    .pivot()
}

fn claimed(ctx: &StepContext) -> StepResult<Claimed> {
    ctx.output_of("claim")
}

fn credit(
    name: &'static str,
    participants: &Participants,
    book: &LedgerBooks,
    asset: String,
    amount: fn(&Claimed) -> i64,
) -> Step {
    let action = participants.clone();
    let book = book.clone();
    Step::new(name, move |ctx: StepContext| {
        let mut ledger = action.ledger.clone();
        let book = book.clone();
        let asset = asset.clone();
        async move {
            let book = book.in_saga(&ctx)?;
            let input: ClaimInput = ctx.input()?;
            let claimed = claimed(&ctx)?;
            let amount = amount(&claimed);
            if amount <= 0 {
                return Ok(None);
            }
            let key = format!("claim:{}:{name}", claimed.claim_id);
            let grant = Grant {
                user: &input.user_id,
                asset: &asset,
                amount,
                code: "mission_reward",
                key: &key,
            };
            Ok(Some(
                book.grant(&mut ledger, &grant, ctx.remaining()).await?,
            ))
        }
    })
}

fn add_items(participants: &Participants, book: &LedgerBooks) -> Step {
    let action = participants.clone();
    let book = book.clone();
    Step::new("add_items", move |ctx: StepContext| {
        let mut stock = action.stock.clone();
        let book = book.clone();
        async move {
            let book = book.in_saga(&ctx)?;
            let input: ClaimInput = ctx.input()?;
            let claimed = claimed(&ctx)?;
            for (item, quantity) in &claimed.items {
                let key = format!("claim:{}:item:{item}", claimed.claim_id);
                book.change_holding(
                    &mut stock,
                    HoldingChange {
                        user: &input.user_id,
                        item,
                        quantity: *quantity,
                        key,
                    },
                    true,
                    ctx.remaining(),
                )
                .await?;
            }
            Ok(claimed.items.len())
        }
    })
}
