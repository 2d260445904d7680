//! AccessVipNarrative (seed 001 `ACCEDER_NARRATIVA_VIP`): VIP access (directory), the VIP
//! channel membership repaired when a VIP is missing from it (EnsureChannelMembership, itself
//! idempotent), then the fragment's other requirements. No saga: nothing is granted, so
//! nothing is compensated; the answer and its events are recorded under the caller's key.
//!
//! - not VIP: denied `vip_required` with the preview and an offer (the free trial when the
//!   user never had it, else the plan their conversion score reaches, see `plans::offer_for`);
//!   `coordinator.access_denied` and `analytics.conversion_opportunity`;
//! - VIP, other requirements unmet: denied `additional_requirements`, each listed with its
//!   suggestion; `coordinator.access_denied`;
//! - granted: the content; `analytics.vip_content_accessed`.

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::directory::v1 as directory;
use phoenix_proto::events::v1 as events;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::stream::NewEvent;
use phoenix_runtime::{Error, Violations};
use serde::{Deserialize, Serialize};

use super::participants::within;
use super::plans::{self, VipPlan};
use super::requirements::{Missing, missing};
use super::take_decision::missing_to_proto;
use super::{Operations, READ_TIMEOUT, facts, operation_event, peer_error, record, recorded};

/// The free trial offered to a user who never had it (the directory's default length).
const TRIAL_SECONDS: i64 = 7 * 86_400;

/// The answer, as recorded under the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Access {
    granted: bool,
    reason: String,
    content: String,
    preview: String,
    trial_offered: bool,
    plan_offered: Option<VipPlan>,
    missing: Vec<Missing>,
    vip_status: String,
    channel_repaired: bool,
}

impl Access {
    /// The offer as the events name it: "trial", the plan's id, or empty.
    fn offer_name(&self) -> String {
        if self.trial_offered {
            "trial".to_owned()
        } else {
            self.plan_offered
                .as_ref()
                .map(|plan| plan.plan_id.clone())
                .unwrap_or_default()
        }
    }

    /// `coordinator.access_denied` for this answer.
    fn denied(&self, user_id: &str, fragment_id: &str) -> NewEvent {
        operation_event(
            "coordinator.access_denied",
            &events::CoordinatorAccessDenied {
                user_id: user_id.to_owned(),
                fragment_id: fragment_id.to_owned(),
                reason: self.reason.clone(),
                offer: self.offer_name(),
            },
        )
    }

    fn to_proto(&self) -> pb::AccessVipNarrativeResponse {
        let offer = if self.trial_offered {
            Some(pb::vip_offer::Offer::Trial(prost_types::Duration {
                seconds: TRIAL_SECONDS,
                nanos: 0,
            }))
        } else {
            self.plan_offered
                .as_ref()
                .map(|plan| pb::vip_offer::Offer::Plan(plan.to_proto()))
        };
        pb::AccessVipNarrativeResponse {
            success: self.granted,
            reason: self.reason.clone(),
            content: self.content.clone(),
            preview: self.preview.clone(),
            offer: offer.map(|offer| pb::VipOffer { offer: Some(offer) }),
            missing: self.missing.iter().map(missing_to_proto).collect(),
            vip_status: self.vip_status.clone(),
            channel_repaired: self.channel_repaired,
        }
    }
}

impl Operations {
    /// AccessVipNarrative: see the module documentation.
    pub async fn access_vip_narrative(
        &self,
        request: &pb::AccessVipNarrativeRequest,
    ) -> Result<pb::AccessVipNarrativeResponse, Error> {
        let mut v = Violations::new();
        let user = v.uuid("user_id", &request.user_id).to_string();
        let fragment = v.uuid("fragment_id", &request.fragment_id).to_string();
        let key = v.idempotency_key(&request.idempotency_key);
        let tenant = v.uuid("tenant_id", &request.tenant_id);
        v.finish()?;
        let key = RequestKey::new(&user, &key, "AccessVipNarrative", request);
        if let Some(access) = recorded::<Access>(&self.pool, &key).await? {
            return Ok(access.to_proto());
        }
        let (access, events) = self.judge_access(tenant, &user, &fragment).await?;
        Ok(record(&self.pool, &key, access, events).await?.to_proto())
    }

    async fn judge_access(
        &self,
        tenant: uuid::Uuid,
        user_id: &str,
        fragment_id: &str,
    ) -> Result<(Access, Vec<NewEvent>), Error> {
        let (participants, book) = self.ready(tenant).await?;
        let user = facts::user(&participants, user_id).await?;
        let answer = facts::fragment(&participants, user_id, fragment_id, true).await?;
        let fragment = answer.fragment.unwrap_or_default();
        let membership = facts::vip(&participants, user_id).await?;
        let mut access = Access {
            preview: fragment.preview.clone(),
            vip_status: vip_status(&membership),
            ..Access::default()
        };
        if !membership.vip {
            access.reason = "vip_required".to_owned();
            if user.vip_trial_used {
                let mut plans = plans::list(&self.pool).await?;
                plans.retain(|plan| plan.tenant_id == tenant);
                access.plan_offered =
                    plans::offer_for(&plans, user.conversion_score.unwrap_or(0.0)).cloned();
            } else {
                access.trial_offered = true;
            }
            let offer = access.offer_name();
            let events = vec![
                access.denied(user_id, fragment_id),
                operation_event(
                    "analytics.conversion_opportunity",
                    &events::AnalyticsConversionOpportunity {
                        user_id: user_id.to_owned(),
                        fragment_id: fragment_id.to_owned(),
                        offer,
                        // 0.00–100.00 as hundredths of a percent.
                        conversion_score: (user.conversion_score.unwrap_or(0.0) * 100.0)
                            .round()
                            .clamp(0.0, 10_000.0) as i32,
                    },
                ),
            ];
            return Ok((access, events));
        }
        let mut directory_client = participants.directory.clone();
        access.channel_repaired = directory_client
            .ensure_channel_membership(within(
                directory::EnsureChannelMembershipRequest {
                    user_id: user_id.to_owned(),
                },
                READ_TIMEOUT,
            ))
            .await
            .map_err(|status| peer_error("directory", &status))?
            .into_inner()
            .joined;
        let required = facts::required(&answer.check.unwrap_or_default());
        let facts = facts::facts(&participants, &book, &self.settings, user_id, &required).await?;
        access.missing = missing(&required, &facts);
        if !access.missing.is_empty() {
            access.reason = "additional_requirements".to_owned();
            let event = access.denied(user_id, fragment_id);
            return Ok((access, vec![event]));
        }
        access.granted = true;
        access.content = fragment.content;
        let event = operation_event(
            "analytics.vip_content_accessed",
            &events::AnalyticsVipContentAccessed {
                user_id: user_id.to_owned(),
                fragment_id: fragment_id.to_owned(),
            },
        );
        Ok((access, vec![event]))
    }
}

fn vip_status(membership: &directory::VipMembership) -> String {
    match membership.status() {
        directory::VipStatus::Trial if membership.vip => "trial",
        directory::VipStatus::Active if membership.vip => "active",
        _ => "none",
    }
    .to_owned()
}
