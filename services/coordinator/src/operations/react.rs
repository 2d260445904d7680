//! ReactToContent: record the reaction (narrative) → pay its configured reward once (ledger);
//! `coordinator.content_reacted` on commit.
//!
//! The narrative registers one reaction per user, content and reaction and answers the besitos
//! to grant only to the call that registered it, so the reward is paid at most once however
//! often the user reacts so. The reaction's compensation removes it only when this saga
//! registered it (a reaction the user had before stays).

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::events::v1 as events;
use phoenix_proto::narrative::v1 as narrative;
use phoenix_runtime::client::PeerChannel;
use phoenix_runtime::{Error, Violations};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::participants::{LedgerBooks, Participants};
use super::settings::OperationsSettings;
use super::steps::{Payment, reversible_grant};
use super::{Operations, facts, not_found_first, settled};
use crate::saga::{SagaDefinition, SagaEvent, SagaRequest, Step, StepContext, StepResult};

/// The saga's type name.
pub const SAGA_TYPE: &str = "react_to_content";

/// Longest reaction, in characters (the narrative's limit).
const MAX_REACTION_CHARS: usize = 32;

/// What the saga runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactInput {
    /// The ledger tenant of the user's wallet.
    pub tenant_id: Uuid,
    pub user_id: String,
    pub content_kind: i32,
    pub content_id: String,
    pub reaction: String,
    pub currency_asset: String,
}

/// The output of `register_reaction`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub created: bool,
    pub besitos: i64,
}

impl Operations {
    /// ReactToContent: see the module documentation.
    pub async fn react_to_content(
        &self,
        request: &pb::ReactToContentRequest,
    ) -> Result<pb::ReactToContentResponse, Error> {
        let mut v = Violations::new();
        let user = v.uuid("user_id", &request.user_id);
        let content = request.content.clone().unwrap_or_default();
        if request.content.is_none() {
            v.add("content", "REQUIRED", "is required");
        } else {
            v.enumeration::<narrative::ContentKind>(
                "content.kind",
                content.kind,
                "CONTENT_KIND_REQUIRED",
                "CONTENT_KIND_FRAGMENT, CONTENT_KIND_EXPERIENCE or CONTENT_KIND_CHANNEL_POST",
            );
            v.text("content.content_id", &content.content_id, 128);
        }
        let reaction = v.text("reaction", &request.reaction, MAX_REACTION_CHARS);
        let key = v.idempotency_key(&request.idempotency_key);
        let tenant = v.uuid("tenant_id", &request.tenant_id);
        v.finish()?;
        let (participants, _) = self.ready(tenant).await?;
        facts::user(&participants, &user.to_string()).await?;
        let input = ReactInput {
            tenant_id: tenant,
            user_id: user.to_string(),
            content_kind: content.kind,
            content_id: content.content_id.trim().to_owned(),
            reaction,
            currency_asset: self.settings.currency_asset.clone(),
        };
        let saga = SagaRequest::new(SAGA_TYPE, &key, &input)?
            .user(user.to_string())
            .fingerprint_of(request);
        let outcome = self.engine.run(saga).await?;
        let failure = settled(&outcome)?;
        not_found_first(&failure, "register_reaction")?;
        let mut answer = pb::ReactToContentResponse {
            success: failure.is_none(),
            saga_id: outcome.saga_id.to_string(),
            failure: failure.map(Into::into),
            ..Default::default()
        };
        if answer.success {
            let registered: Registered = outcome.output("register_reaction")?;
            answer.created = registered.created;
            answer.besitos = registered.besitos;
        }
        Ok(answer)
    }
}

/// The saga.
pub fn definition(
    participants: &Participants,
    book: &LedgerBooks,
    _settings: &OperationsSettings,
) -> SagaDefinition {
    SagaDefinition::new(SAGA_TYPE, 1)
        .step(register_reaction(participants))
        .step(reversible_grant("pay_reward", participants, book, reward))
        .on_commit(|saga| {
            let input: ReactInput = saga.input()?;
            let registered: Registered = saga.output_of("register_reaction")?.unwrap_or_default();
            Ok(vec![SagaEvent::new(
                "coordinator.content_reacted",
                &events::CoordinatorContentReacted {
                    user_id: input.user_id,
                    content_id: input.content_id,
                    reaction: input.reaction,
                    reward: registered.besitos,
                    saga_id: saga.saga_id().to_string(),
                },
            )])
        })
}

async fn register(
    narrative: &mut narrative::narrative_service_client::NarrativeServiceClient<PeerChannel>,
    ctx: &StepContext,
    input: &ReactInput,
    key: String,
) -> StepResult<Registered> {
    let answer = narrative
        .register_reaction(ctx.request(narrative::RegisterReactionRequest {
            user_id: input.user_id.clone(),
            content: Some(content(input)),
            reaction: input.reaction.clone(),
            idempotency_key: key,
        }))
        .await?
        .into_inner();
    Ok(Registered {
        created: answer.created,
        besitos: answer.besitos_to_grant,
    })
}

fn content(input: &ReactInput) -> narrative::ContentRef {
    narrative::ContentRef {
        kind: input.content_kind,
        content_id: input.content_id.clone(),
    }
}

fn register_reaction(participants: &Participants) -> Step {
    let action = participants.clone();
    let undo = participants.clone();
    Step::new("register_reaction", move |ctx: StepContext| {
        let mut narrative = action.narrative.clone();
        async move {
            let input: ReactInput = ctx.input()?;
            register(&mut narrative, &ctx, &input, ctx.idempotency_key()).await
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut narrative = undo.narrative.clone();
        async move {
            let input: ReactInput = ctx.input()?;
            let registered = match ctx.output::<Registered>()? {
                Some(registered) => registered,
                // Unknown outcome: the registration's replay says whether it created it.
                None => {
                    register(&mut narrative, &ctx, &input, ctx.action_idempotency_key()).await?
                }
            };
            if !registered.created {
                return Ok(()); // the user's earlier reaction stays
            }
            narrative
                .revert_reaction(ctx.request(narrative::RevertReactionRequest {
                    content: Some(content(&input)),
                    user_id: input.user_id,
                    reaction: input.reaction,
                    idempotency_key: ctx.idempotency_key(),
                }))
                .await?;
            Ok(())
        }
    })
}

/// The besitos the reaction's reward pays (answered only to the call that registered it).
fn reward(ctx: &StepContext) -> StepResult<Option<Payment>> {
    let input: ReactInput = ctx.input()?;
    let registered: Registered = ctx.output_of("register_reaction")?;
    Ok(Some(Payment {
        user: input.user_id,
        asset: input.currency_asset,
        amount: registered.besitos,
        code: "reaction_reward",
    }))
}
