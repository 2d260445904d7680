//! VIP plans: what SubscribeVip sells and AccessVipNarrative offers. They live in the
//! coordinator's own table (`vip_plans`, migration 0006): a plan is the coordinator's offer,
//! combining a price in a ledger asset (paid from the user's wallet to the plan's revenue
//! account) with a period of the directory's VIP membership; neither context owns both.
//! UpsertVipPlan checks with the ledger that the revenue account exists in the plan's asset.

use std::time::Duration;

use chrono::Utc;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_runtime::{Error, Refusal, Violations, auth};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::participants::within;
use super::{Operations, READ_TIMEOUT, peer_error};

/// Shortest and longest VIP period a plan may sell.
const MIN_PERIOD: Duration = Duration::from_secs(3600);
const MAX_PERIOD: Duration = Duration::from_secs(3660 * 86_400);

/// A VIP plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipPlan {
    pub plan_id: String,
    pub name: String,
    pub asset_code: String,
    pub price: i64,
    pub period_seconds: i64,
    pub revenue_account_id: Uuid,
    pub active: bool,
    pub min_conversion_score: f64,
    /// The ledger tenant of the revenue account.
    pub tenant_id: Uuid,
}

impl VipPlan {
    pub fn to_proto(&self) -> pb::VipPlan {
        pb::VipPlan {
            plan_id: self.plan_id.clone(),
            name: self.name.clone(),
            asset_code: self.asset_code.clone(),
            price: self.price,
            period: Some(prost_types::Duration {
                seconds: self.period_seconds,
                nanos: 0,
            }),
            revenue_account_id: self.revenue_account_id.to_string(),
            active: self.active,
            min_conversion_score: self.min_conversion_score,
            tenant_id: self.tenant_id.to_string(),
        }
    }
}

/// With authentication on, only the role `coordinator-admin` edits plans.
pub fn require_admin<T>(request: &tonic::Request<T>) -> Result<(), Refusal> {
    auth::require_role(request, crate::api::sagas::ADMIN_ROLE)
}

/// A plan id: letters, digits, '-', '_', '.', 1 to 64.
pub fn plan_id(violations: &mut Violations, field: &str, value: &str) -> String {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if value.is_empty() {
        violations.add(field, "REQUIRED", "is required");
    } else if !valid {
        violations.add(
            field,
            "INVALID_PLAN_ID",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
    value.to_owned()
}

fn validate(plan: Option<&pb::VipPlan>) -> Result<VipPlan, Error> {
    let mut v = Violations::new();
    let given = plan.cloned().unwrap_or_default();
    if plan.is_none() {
        v.add("plan", "REQUIRED", "is required");
    }
    let plan_id = plan_id(&mut v, "plan.plan_id", &given.plan_id);
    let name = v.text("plan.name", &given.name, 200);
    let asset_ok = !given.asset_code.is_empty()
        && given.asset_code.len() <= 16
        && given
            .asset_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !asset_ok {
        v.add(
            "plan.asset_code",
            "INVALID_ASSET_CODE",
            "must be 1 to 16 upper-case letters, digits or underscores",
        );
    }
    if given.price <= 0 {
        v.add("plan.price", "INVALID_PRICE", "must be more than 0");
    }
    let period = given.period.map_or(0, |p| p.seconds);
    if !(MIN_PERIOD.as_secs()..=MAX_PERIOD.as_secs()).contains(&u64::try_from(period).unwrap_or(0))
    {
        v.add(
            "plan.period",
            "INVALID_PERIOD",
            "must be 1 hour to 3,660 days, in whole seconds",
        );
    }
    let revenue = v.uuid("plan.revenue_account_id", &given.revenue_account_id);
    let tenant = v.uuid("plan.tenant_id", &given.tenant_id);
    if !(0.0..=100.0).contains(&given.min_conversion_score) {
        v.add(
            "plan.min_conversion_score",
            "INVALID_SCORE",
            "must be 0.00 to 100.00",
        );
    }
    v.finish()?;
    Ok(VipPlan {
        plan_id,
        name,
        asset_code: given.asset_code,
        price: given.price,
        period_seconds: period,
        revenue_account_id: revenue,
        active: given.active,
        min_conversion_score: given.min_conversion_score,
        tenant_id: tenant,
    })
}

impl Operations {
    /// UpsertVipPlan: validates, checks the revenue account with the ledger, stores.
    pub async fn upsert_vip_plan(
        &self,
        request: &pb::UpsertVipPlanRequest,
    ) -> Result<pb::UpsertVipPlanResponse, Error> {
        let plan = validate(request.plan.as_ref())?;
        let (participants, book) = self.ready(plan.tenant_id).await?;
        let mut client = participants.ledger.clone();
        let account = client
            .get_account(within(
                ledger::GetAccountRequest {
                    tenant_id: book.tenant.to_string(),
                    account_id: plan.revenue_account_id.to_string(),
                },
                READ_TIMEOUT,
            ))
            .await
            .map_err(|status| peer_error("ledger", &status))?
            .into_inner()
            .account
            .unwrap_or_default();
        if account.asset_code != plan.asset_code {
            return Err(Refusal::precondition(
                "REVENUE_ASSET_MISMATCH",
                format!(
                    "the revenue account holds {}, not the plan's {}",
                    account.asset_code, plan.asset_code
                ),
            )
            .at("plan.revenue_account_id")
            .into());
        }
        let stored = upsert(&self.pool, &plan).await?;
        Ok(pb::UpsertVipPlanResponse {
            plan: Some(stored.to_proto()),
        })
    }

    /// ListVipPlans.
    pub async fn list_vip_plans(&self) -> Result<pb::ListVipPlansResponse, Error> {
        Ok(pb::ListVipPlansResponse {
            plans: list(&self.pool)
                .await?
                .iter()
                .map(VipPlan::to_proto)
                .collect(),
        })
    }
}

/// A `vip_plans` row, in COLUMNS order.
type PlanRow = (String, String, String, i64, i64, Uuid, bool, f64, Uuid);

fn plan_of(row: PlanRow) -> VipPlan {
    VipPlan {
        plan_id: row.0,
        name: row.1,
        asset_code: row.2,
        price: row.3,
        period_seconds: row.4,
        revenue_account_id: row.5,
        active: row.6,
        min_conversion_score: row.7,
        tenant_id: row.8,
    }
}

const COLUMNS: &str = "plan_id, name, asset_code, price, period_seconds, revenue_account_id, \
                       active, min_conversion_score, tenant_id";

/// Creates or replaces the plan; answers it as stored.
pub async fn upsert(pool: &PgPool, plan: &VipPlan) -> Result<VipPlan, Error> {
    let row: PlanRow = sqlx::query_as(&format!(
        "INSERT INTO vip_plans ({COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (plan_id) DO UPDATE SET
             name = EXCLUDED.name, asset_code = EXCLUDED.asset_code, price = EXCLUDED.price,
             period_seconds = EXCLUDED.period_seconds,
             revenue_account_id = EXCLUDED.revenue_account_id, active = EXCLUDED.active,
             min_conversion_score = EXCLUDED.min_conversion_score,
             tenant_id = EXCLUDED.tenant_id, updated_at = EXCLUDED.updated_at
         RETURNING {COLUMNS}"
    ))
    .bind(&plan.plan_id)
    .bind(&plan.name)
    .bind(&plan.asset_code)
    .bind(plan.price)
    .bind(plan.period_seconds)
    .bind(plan.revenue_account_id)
    .bind(plan.active)
    .bind(plan.min_conversion_score)
    .bind(plan.tenant_id)
    .bind(Utc::now())
    .fetch_one(pool)
    .await?;
    Ok(plan_of(row))
}

/// Every plan, by id.
pub async fn list(pool: &PgPool) -> Result<Vec<VipPlan>, Error> {
    let rows: Vec<PlanRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM vip_plans ORDER BY plan_id"))
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(plan_of).collect())
}

/// One plan.
pub async fn get(pool: &PgPool, plan_id: &str) -> Result<Option<VipPlan>, Error> {
    let row: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vip_plans WHERE plan_id = $1"
    ))
    .bind(plan_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(plan_of))
}

/// The plan offered to a user of `score` (0 when unknown): the active plan with the highest
/// `min_conversion_score` the score reaches, the cheapest among equals.
pub fn offer_for(plans: &[VipPlan], score: f64) -> Option<&VipPlan> {
    plans
        .iter()
        .filter(|plan| plan.active && plan.min_conversion_score <= score)
        .max_by(|a, b| {
            a.min_conversion_score
                .total_cmp(&b.min_conversion_score)
                .then(b.price.cmp(&a.price))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, score: f64, price: i64, active: bool) -> VipPlan {
        VipPlan {
            plan_id: id.into(),
            name: id.into(),
            asset_code: "BESITOS".into(),
            price,
            period_seconds: 86_400,
            revenue_account_id: Uuid::nil(),
            active,
            min_conversion_score: score,
            tenant_id: Uuid::nil(),
        }
    }

    #[test]
    fn the_offer_is_the_best_plan_the_score_reaches() {
        let plans = [
            plan("basic", 0.0, 100, true),
            plan("cheap-basic", 0.0, 80, true),
            plan("premium", 60.0, 500, true),
            plan("retired", 40.0, 10, false),
        ];
        assert_eq!(offer_for(&plans, 10.0).unwrap().plan_id, "cheap-basic");
        assert_eq!(offer_for(&plans, 75.0).unwrap().plan_id, "premium");
        assert!(offer_for(&plans[3..], 99.0).is_none());
    }
}
