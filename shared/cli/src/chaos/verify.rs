//! The verdict of a chaos run. The coordinator's reconciliation judges each saga; on top, since
//! the run owns its whole shop, the ledger must add up exactly: every user paid the sum of their
//! completed purchases and nothing more (no lost payment, no double charge), holds exactly what
//! they bought (no double grant), has nothing pending; every item's stock went down by what was
//! sold and holds no reservation (no leak); the revenue is the sum of the payments.

use std::collections::{BTreeMap, BTreeSet};

use phoenix_coordinator::saga::SagaState;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use tonic::transport::Channel;

use phoenix_coordinator::operations::take_decision::{
    Applied, DecisionInput, SAGA_TYPE as DECISION,
};

use super::load::{Answers, DECISION_ITEM, Shop};

/// What the run checked, and what failed.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Purchase sagas of this run per state.
    pub by_state: BTreeMap<&'static str, usize>,
    /// TakeDecision sagas of this run per state.
    pub decisions_by_state: BTreeMap<&'static str, usize>,
    pub failures: Vec<String>,
}

/// Checks the ledger against the sagas of `shop` that ended, and the clients' answers against
/// the sagas. Users and items of a stuck saga are left out of the exact sums (an operator owes
/// them a `RetrySaga`); the caller lists those sagas.
pub async fn ledger_adds_up(
    pool: &sqlx::PgPool,
    ledger_channel: Channel,
    shop: &Shop,
    answers: &Answers,
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::default();
    let ended: Vec<_> = phoenix_coordinator::reconcile::ended_purchases(pool)
        .await?
        .into_iter()
        .filter(|(_, _, plan)| plan.tenant_id == shop.tenant_id)
        .collect();
    let states: BTreeMap<String, SagaState> = ended
        .iter()
        .map(|(id, state, _)| (id.to_string(), *state))
        .collect();
    for (saga_id, answered) in &answers.sagas {
        let expected = match answered {
            pb::PurchaseState::Completed => SagaState::Completed,
            pb::PurchaseState::Compensated => SagaState::Compensated,
            pb::PurchaseState::Stuck => SagaState::Stuck,
            other => {
                verdict
                    .failures
                    .push(format!("saga {saga_id}: the client was answered {other:?}"));
                continue;
            }
        };
        match states.get(saga_id) {
            Some(state) if *state == expected => {}
            found => verdict.failures.push(format!(
                "saga {saga_id}: the client was answered {expected:?}, the saga is {found:?}"
            )),
        }
    }
    let mut stuck_users = BTreeSet::new();
    let mut stuck_items = BTreeSet::new();
    // Per user: paid, and units per sku; per sku: units sold.
    let mut paid: BTreeMap<&str, i64> = BTreeMap::new();
    let mut bought: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut sold: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, state, plan) in &ended {
        *verdict.by_state.entry(state.as_str()).or_default() += 1;
        match state {
            SagaState::Completed => {
                *paid.entry(&plan.user_id).or_default() += plan.amount;
                *bought.entry((&plan.user_id, &plan.sku)).or_default() += plan.quantity;
                *sold.entry(&plan.sku).or_default() += plan.quantity;
            }
            SagaState::Stuck => {
                stuck_users.insert(plan.user_id.as_str());
                stuck_items.insert(plan.sku.as_str());
            }
            _ => {}
        }
    }
    // TakeDecision: its besitos land in the same wallet, its items in the same holdings.
    let users: BTreeSet<&str> = shop.users.iter().map(|(user, _)| user.as_str()).collect();
    let mut granted: BTreeMap<String, i64> = BTreeMap::new();
    let mut granted_items: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut decided: BTreeMap<String, SagaState> = BTreeMap::new();
    let mut stuck_deciders = BTreeSet::new();
    for run in phoenix_coordinator::reconcile::ended_runs(pool, DECISION).await? {
        let Ok(input) = serde_json::from_value::<DecisionInput>(run.input.clone()) else {
            continue;
        };
        if !users.contains(input.user_id.as_str()) {
            continue;
        }
        *verdict
            .decisions_by_state
            .entry(run.state.as_str())
            .or_default() += 1;
        decided.insert(run.saga_id.to_string(), run.state);
        match run.state {
            SagaState::Completed => {
                let applied: Applied = run
                    .outputs
                    .get("apply_decision")
                    .and_then(|o| serde_json::from_value(o.clone()).ok())
                    .unwrap_or_default();
                *granted.entry(input.user_id.clone()).or_default() += applied.rewards.besitos;
                for (item, quantity) in applied.rewards.items {
                    *granted_items
                        .entry((input.user_id.clone(), item))
                        .or_default() += quantity;
                }
            }
            SagaState::Stuck => {
                stuck_deciders.insert(input.user_id.clone());
            }
            _ => {}
        }
    }
    for (saga_id, success) in &answers.decisions {
        match decided.get(saga_id) {
            Some(SagaState::Completed) if *success => {}
            Some(SagaState::Compensated | SagaState::Stuck) if !*success => {}
            found => verdict.failures.push(format!(
                "TakeDecision saga {saga_id}: the client was answered success={success}, the saga is {found:?}"
            )),
        }
    }
    let mut ledger_client = LedgerServiceClient::new(ledger_channel.clone());
    let mut stock = StockServiceClient::new(ledger_channel);
    for (user, wallet) in &shop.users {
        if stuck_users.contains(user.as_str()) || stuck_deciders.contains(user) {
            continue;
        }
        let balance = balance(&mut ledger_client, &shop.tenant_id, wallet).await?;
        let spent = paid.get(user.as_str()).copied().unwrap_or(0);
        let rewarded = granted.get(user).copied().unwrap_or(0);
        let expected = shop.funds - spent + rewarded;
        if balance.posted != expected {
            verdict.failures.push(format!(
                "user {user}: wallet at {} but {} funded - {spent} paid by completed purchases + {rewarded} granted by completed decisions = {expected} (a {})",
                balance.posted,
                shop.funds,
                if balance.posted > expected { "lost payment or a double grant" } else { "double charge or a lost grant" }
            ));
        }
        if balance.debits_pending != 0 {
            verdict.failures.push(format!(
                "user {user}: {} still pending: a pending transfer left behind",
                balance.debits_pending
            ));
        }
        let held: BTreeMap<String, i64> = stock
            .list_holdings(ledger::ListHoldingsRequest {
                tenant_id: shop.tenant_id.clone(),
                owner_ref: user.clone(),
            })
            .await?
            .into_inner()
            .holdings
            .into_iter()
            .map(|h| (h.item_code, h.quantity))
            .collect();
        let mut codes: BTreeSet<String> = held.keys().cloned().collect();
        codes.extend(shop.items.iter().map(|(_, sku)| sku.clone()));
        codes.insert(DECISION_ITEM.to_owned());
        for sku in &codes {
            let owned = held.get(sku).copied().unwrap_or(0);
            let expected = bought
                .get(&(user.as_str(), sku.as_str()))
                .copied()
                .unwrap_or(0)
                + granted_items
                    .get(&(user.clone(), sku.clone()))
                    .copied()
                    .unwrap_or(0);
            if owned != expected {
                verdict.failures.push(format!(
                    "user {user}: holds {owned} of {sku}, completed purchases and decisions gave {expected} ({})",
                    if owned > expected { "a double grant" } else { "a lost holding" }
                ));
            }
        }
    }
    for (_, sku) in &shop.items {
        if stuck_items.contains(sku.as_str()) {
            continue;
        }
        let item = stock
            .get_inventory_item(ledger::GetInventoryItemRequest {
                tenant_id: shop.tenant_id.clone(),
                sku: sku.clone(),
            })
            .await?
            .into_inner()
            .item
            .unwrap_or_default();
        let sold = sold.get(sku.as_str()).copied().unwrap_or(0);
        if item.reserved != 0 {
            verdict.failures.push(format!(
                "item {sku}: {} units still reserved: a reservation leaked",
                item.reserved
            ));
        }
        if item.on_hand != shop.stock - sold {
            verdict.failures.push(format!(
                "item {sku}: {} on hand, {} stocked - {sold} sold = {}",
                item.on_hand,
                shop.stock,
                shop.stock - sold
            ));
        }
    }
    if stuck_users.is_empty() {
        let revenue = balance(
            &mut ledger_client,
            &shop.tenant_id,
            &shop.revenue_account_id,
        )
        .await?;
        let total: i64 = paid.values().sum();
        if revenue.posted != total {
            verdict.failures.push(format!(
                "revenue at {}, completed purchases paid {total}",
                revenue.posted
            ));
        }
    }
    Ok(verdict)
}

/// The balances of `account`.
async fn balance(
    ledger: &mut LedgerServiceClient<Channel>,
    tenant: &str,
    account: &str,
) -> anyhow::Result<ledger::Balance> {
    Ok(ledger
        .get_account(ledger::GetAccountRequest {
            tenant_id: tenant.to_owned(),
            account_id: account.to_owned(),
        })
        .await?
        .into_inner()
        .account
        .and_then(|a| a.balance)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
    use phoenix_testkit::{spawn, spawn_with};

    use super::*;

    /// The verdict over one completed purchase, then over the same ledger tampered with.
    #[tokio::test]
    async fn the_verdict_is_clean_for_a_true_ledger_and_names_a_double_grant_and_a_lost_payment() {
        let directory = spawn(phoenix_directory::spec()).await;
        let ledger_service = spawn(phoenix_ledger::spec()).await;
        let narrative = spawn(phoenix_narrative::spec()).await;
        let urls = (directory.url(), ledger_service.url(), narrative.url());
        let coordinator = spawn_with(phoenix_coordinator::spec(), move |config| {
            config.peers.directory_url = Some(urls.0);
            config.peers.ledger_url = Some(urls.1);
            config.peers.narrative_url = Some(urls.2);
        })
        .await;
        let shop = super::super::load::open_shop(
            ledger_service.channel.clone(),
            directory.channel.clone(),
            1,
            1,
            10,
            100,
            10,
        )
        .await
        .expect("shop");
        let (user, wallet) = shop.users[0].clone();
        let answer = CoordinatorServiceClient::new(coordinator.channel.clone())
            .purchase(pb::PurchaseRequest {
                tenant_id: shop.tenant_id.clone(),
                user_id: user.clone(),
                shop_item_id: shop.items[0].0.clone(),
                quantity: 2,
                idempotency_key: "k1".into(),
            })
            .await
            .expect("purchase")
            .into_inner();
        assert_eq!(answer.state(), pb::PurchaseState::Completed, "{answer:?}");
        let mut answers = Answers::default();
        answers.sagas.insert(answer.saga_id.clone(), answer.state());
        let clean = ledger_adds_up(
            &coordinator.pool,
            ledger_service.channel.clone(),
            &shop,
            &answers,
        )
        .await
        .expect("verdict");
        assert!(clean.failures.is_empty(), "{:#?}", clean.failures);
        assert_eq!(clean.by_state.get("COMPLETED"), Some(&1));

        // One unit more than bought, and the payment handed back: what a double grant and a
        // lost payment look like in the ledger.
        let mut stock = StockServiceClient::new(ledger_service.channel.clone());
        stock
            .add_holding(ledger::AddHoldingRequest {
                tenant_id: shop.tenant_id.clone(),
                owner_ref: user.clone(),
                item_code: shop.items[0].1.clone(),
                quantity: 1,
                idempotency_key: "tamper-holding".into(),
            })
            .await
            .expect("extra holding");
        LedgerServiceClient::new(ledger_service.channel.clone())
            .create_transfer(ledger::CreateTransferRequest {
                tenant_id: shop.tenant_id.clone(),
                transfer: Some(ledger::TransferSpec {
                    debit_account_id: shop.revenue_account_id.clone(),
                    credit_account_id: wallet,
                    amount: 20,
                    ..Default::default()
                }),
                idempotency_key: "tamper-refund".into(),
            })
            .await
            .expect("refund");
        answers
            .sagas
            .insert(answer.saga_id.clone(), pb::PurchaseState::Compensated);

        let tampered = ledger_adds_up(
            &coordinator.pool,
            ledger_service.channel.clone(),
            &shop,
            &answers,
        )
        .await
        .expect("verdict");
        let failures = tampered.failures.join("\n");
        assert!(failures.contains("a double grant"), "{failures}");
        assert!(failures.contains("lost payment"), "{failures}");
        assert!(failures.contains("revenue at 0"), "{failures}");
        assert!(
            failures.contains("the client was answered Compensated, the saga is Some(Completed)"),
            "{failures}"
        );
    }
}
