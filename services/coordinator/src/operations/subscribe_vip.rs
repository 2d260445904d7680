//! SubscribeVip: pay the plan (ledger) → grant its VIP period (directory) → put the user in the
//! VIP channel (directory); compensations refund, revoke and leave.
//!
//! The directory cannot take back part of a membership: its undo of a grant is RevokeVip, which
//! ends the whole membership. So the grant's compensation revokes only when the user had no VIP
//! access before this saga's grant; when they had (a renewal), it refuses
//! (`VIP_GRANT_NOT_REVERSIBLE`) and the saga is STUCK for an operator, who decides between the
//! extra period and the refund: nothing is taken from the user silently. The channel step's
//! compensation leaves the VIP channel only when this saga put the user there.

use chrono::{DateTime, Utc};
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::directory::v1 as directory;
use phoenix_proto::events::v1 as events;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_runtime::convert::{optional_timestamp, time_from_proto};
use phoenix_runtime::{Error, Refusal, Violations};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::participants::{LedgerBook, LedgerBooks, Participants};
use super::plans::{self, VipPlan};
use super::{Operations, facts, settled};
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_runtime::client::PeerChannel;

use crate::saga::{
    SagaDefinition, SagaEvent, SagaRequest, Step, StepContext, StepError, StepResult,
};

/// The saga's type name.
pub const SAGA_TYPE: &str = "subscribe_vip";

/// What the saga runs on: the plan as it was when the subscription began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeInput {
    /// The ledger tenant of the user's wallet and the plan's revenue account.
    pub tenant_id: Uuid,
    pub user_id: String,
    pub plan: VipPlan,
}

/// The output of `grant_vip`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// Whether the user had VIP access right before the grant.
    pub was_vip: bool,
    /// The membership's period right after the grant.
    #[serde(default)]
    pub period_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub period_end: Option<DateTime<Utc>>,
}

impl Operations {
    /// SubscribeVip: see the module documentation.
    pub async fn subscribe_vip(
        &self,
        request: &pb::SubscribeVipRequest,
    ) -> Result<pb::SubscribeVipResponse, Error> {
        let mut v = Violations::new();
        let user = v.uuid("user_id", &request.user_id);
        let plan_id = plans::plan_id(&mut v, "plan_id", &request.plan_id);
        let key = v.idempotency_key(&request.idempotency_key);
        let tenant = v.uuid("tenant_id", &request.tenant_id);
        v.finish()?;
        let (participants, _) = self.ready(tenant).await?;
        facts::user(&participants, &user.to_string()).await?;
        let plan = plans::get(&self.pool, &plan_id).await?.ok_or_else(|| {
            Refusal::not_found("PLAN_NOT_FOUND", format!("no VIP plan has id {plan_id}"))
                .at("plan_id")
        })?;
        if !plan.active {
            return Err(Refusal::precondition(
                "PLAN_INACTIVE",
                format!("VIP plan {plan_id} is not sold now"),
            )
            .at("plan_id")
            .into());
        }
        if plan.tenant_id != tenant {
            return Err(Refusal::precondition(
                "PLAN_TENANT_MISMATCH",
                format!(
                    "VIP plan {plan_id} is sold in ledger tenant {}, not {tenant}",
                    plan.tenant_id
                ),
            )
            .at("tenant_id")
            .into());
        }
        let input = SubscribeInput {
            tenant_id: tenant,
            user_id: user.to_string(),
            plan,
        };
        let saga = SagaRequest::new(SAGA_TYPE, &key, &input)?
            .user(user.to_string())
            .fingerprint_of(request);
        let outcome = self.engine.run(saga).await?;
        let failure = settled(&outcome)?;
        let mut answer = pb::SubscribeVipResponse {
            success: failure.is_none(),
            saga_id: outcome.saga_id.to_string(),
            plan: Some(input.plan.to_proto()),
            failure: failure.map(Into::into),
            ..Default::default()
        };
        if answer.success {
            answer.payment_transfer_id = outcome.output("pay")?;
        }
        Ok(answer)
    }
}

/// The saga.
pub fn definition(participants: &Participants, book: &LedgerBooks) -> SagaDefinition {
    SagaDefinition::new(SAGA_TYPE, 1)
        .step(pay(participants, book))
        .step(grant_vip(participants))
        .step(join_channel(participants))
        .on_commit(|saga| {
            let input: SubscribeInput = saga.input()?;
            let granted: Granted = saga.output_of("grant_vip")?.unwrap_or_default();
            Ok(vec![SagaEvent::new(
                "commerce.vip_subscribed",
                &events::CommerceVipSubscribed {
                    user_id: input.user_id,
                    plan_id: input.plan.plan_id,
                    subscription_id: saga.saga_id().to_string(),
                    starts_at: optional_timestamp(granted.period_start),
                    ends_at: optional_timestamp(granted.period_end),
                },
            )])
        })
}

async fn payment(
    participants: &Participants,
    book: &LedgerBook,
    ctx: &StepContext,
    input: &SubscribeInput,
    key: String,
) -> Result<String, StepError> {
    let mut client = participants.ledger.clone();
    let wallet = book
        .account(
            &mut client,
            &input.user_id,
            &input.plan.asset_code,
            "wallet",
            ctx.remaining(),
        )
        .await?;
    let answer = client
        .create_transfer(ctx.request(ledger::CreateTransferRequest {
            tenant_id: book.tenant.to_string(),
            transfer: Some(ledger::TransferSpec {
                debit_account_id: wallet,
                credit_account_id: input.plan.revenue_account_id.to_string(),
                amount: input.plan.price,
                pending: false,
                timeout: None,
                code: "vip_subscription".to_owned(),
                metadata: Default::default(),
            }),
            idempotency_key: key,
        }))
        .await?
        .into_inner();
    Ok(answer.transfer.map(|t| t.id).unwrap_or_default())
}

fn pay(participants: &Participants, book: &LedgerBooks) -> Step {
    let (action, action_book) = (participants.clone(), book.clone());
    let (undo, undo_book) = (participants.clone(), book.clone());
    Step::new("pay", move |ctx: StepContext| {
        let (participants, book) = (action.clone(), action_book.clone());
        async move {
            let book = book.in_saga(&ctx)?;
            let input: SubscribeInput = ctx.input()?;
            payment(&participants, &book, &ctx, &input, ctx.idempotency_key()).await
        }
    })
    .compensate(move |ctx: StepContext| {
        let (participants, book) = (undo.clone(), undo_book.clone());
        async move {
            let book = book.in_saga(&ctx)?;
            let input: SubscribeInput = ctx.input()?;
            let transfer = match ctx.output::<String>()? {
                Some(transfer) => transfer,
                // Unknown outcome: the payment's replay answers it, or is refused (nothing was
                // paid: a refused call writes nothing).
                None => match payment(
                    &participants,
                    &book,
                    &ctx,
                    &input,
                    ctx.action_idempotency_key(),
                )
                .await
                {
                    Ok(transfer) => transfer,
                    Err(StepError::Refused(_)) => return Ok(()),
                    Err(other) => return Err(other),
                },
            };
            let mut client = participants.ledger.clone();
            book.reverse(
                &mut client,
                &transfer,
                ctx.idempotency_key(),
                ctx.remaining(),
            )
            .await?;
            Ok(())
        }
    })
}

fn grant_vip(participants: &Participants) -> Step {
    let action = participants.clone();
    let undo = participants.clone();
    Step::new("grant_vip", move |ctx: StepContext| {
        let mut client = action.directory.clone();
        async move {
            let input: SubscribeInput = ctx.input()?;
            let history = vip_history(&mut client, &ctx, &input.user_id).await?;
            let was_vip = vip_before(&history, &ctx.idempotency_key());
            let membership = client
                .grant_vip(ctx.request(directory::GrantVipRequest {
                    user_id: input.user_id,
                    duration: Some(prost_types::Duration {
                        seconds: input.plan.period_seconds,
                        nanos: 0,
                    }),
                    idempotency_key: ctx.idempotency_key(),
                    reason: format!("VIP plan {}", input.plan.plan_id),
                }))
                .await?
                .into_inner()
                .membership
                .unwrap_or_default();
            let time = |t: Option<prost_types::Timestamp>| t.as_ref().and_then(time_from_proto);
            Ok(Granted {
                was_vip,
                period_start: time(membership.period_start_time),
                period_end: time(membership.period_end_time),
            })
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut client = undo.directory.clone();
        async move {
            let input: SubscribeInput = ctx.input()?;
            let history = vip_history(&mut client, &ctx, &input.user_id).await?;
            let action_key = ctx.action_idempotency_key();
            if !history
                .iter()
                .any(|entry| entry.idempotency_key == action_key)
            {
                return Ok(()); // the grant never happened
            }
            if vip_before(&history, &action_key) {
                return Err(StepError::refused(
                    "VIP_GRANT_NOT_REVERSIBLE",
                    "the user had VIP access before this grant; the directory can only revoke \
                     the whole membership: an operator decides",
                ));
            }
            client
                .revoke_vip(ctx.request(directory::RevokeVipRequest {
                    user_id: input.user_id,
                    idempotency_key: ctx.idempotency_key(),
                    reason: "subscription saga compensated".to_owned(),
                }))
                .await?;
            Ok(())
        }
    })
}

/// The user's VIP history, oldest first.
async fn vip_history(
    client: &mut DirectoryServiceClient<PeerChannel>,
    ctx: &StepContext,
    user_id: &str,
) -> StepResult<Vec<directory::VipHistoryEntry>> {
    Ok(client
        .list_vip_history(ctx.request(directory::ListVipHistoryRequest {
            user_id: user_id.to_owned(),
        }))
        .await?
        .into_inner()
        .entries)
}

/// Whether the history shows VIP access right before the change made with `key` (or now, when
/// no change has that key yet): the last earlier entry is a TRIAL or ACTIVE period that had
/// not ended when the change was made.
fn vip_before(history: &[directory::VipHistoryEntry], key: &str) -> bool {
    let position = history
        .iter()
        .position(|entry| entry.idempotency_key == key)
        .unwrap_or(history.len());
    let Some(previous) = position.checked_sub(1).map(|i| &history[i]) else {
        return false;
    };
    let at = history
        .get(position)
        .and_then(|entry| entry.change_time)
        .map_or_else(|| chrono::Utc::now().timestamp(), |t| t.seconds);
    let active = matches!(
        previous.status(),
        directory::VipStatus::Trial | directory::VipStatus::Active
    );
    active && previous.period_end_time.is_some_and(|end| end.seconds > at)
}

fn join_channel(participants: &Participants) -> Step {
    let action = participants.clone();
    let undo = participants.clone();
    Step::new("join_channel", move |ctx: StepContext| {
        let mut client = action.directory.clone();
        async move {
            let input: SubscribeInput = ctx.input()?;
            let answer = client
                .join_channel(ctx.request(directory::JoinChannelRequest {
                    user_id: input.user_id,
                    channel: directory::Channel::Vip.into(),
                }))
                .await?
                .into_inner();
            Ok(answer.changed)
        }
    })
    .compensate(move |ctx: StepContext| {
        let mut client = undo.directory.clone();
        async move {
            let input: SubscribeInput = ctx.input()?;
            let joined = match ctx.output::<bool>()? {
                Some(joined) => joined,
                // Unknown outcome: leave unless the user was VIP (and so a member) before.
                None => !ctx.output_of::<Granted>("grant_vip")?.was_vip,
            };
            if joined {
                client
                    .leave_channel(ctx.request(directory::LeaveChannelRequest {
                        user_id: input.user_id,
                        channel: directory::Channel::Vip.into(),
                    }))
                    .await?;
            }
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        key: &str,
        status: directory::VipStatus,
        at: i64,
        end: i64,
    ) -> directory::VipHistoryEntry {
        directory::VipHistoryEntry {
            idempotency_key: key.into(),
            status: status.into(),
            change_time: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            period_end_time: Some(prost_types::Timestamp {
                seconds: end,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn vip_before_reads_the_entry_before_the_grant() {
        use directory::VipStatus::{Active, Cancelled};
        let renewal = [
            entry("a", Active, 0, 1_000),
            entry("saga", Active, 500, 2_000),
        ];
        assert!(vip_before(&renewal, "saga"), "active until after the grant");
        let lapsed = [
            entry("a", Active, 0, 100),
            entry("saga", Active, 500, 2_000),
        ];
        assert!(!vip_before(&lapsed, "saga"), "ended before the grant");
        let cancelled = [
            entry("a", Cancelled, 0, 1_000),
            entry("saga", Active, 500, 2_000),
        ];
        assert!(!vip_before(&cancelled, "saga"));
        assert!(
            !vip_before(&[entry("saga", Active, 500, 2_000)], "saga"),
            "first grant"
        );
    }
}
