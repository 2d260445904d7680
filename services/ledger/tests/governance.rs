//! Policies as circuit breakers, and the dry run, through gRPC.

mod support;

use phoenix_proto::ledger::v1 as pb;
use support::{Harness, key, metadata, reason, spec};
use tonic::Code;

async fn set(h: &mut Harness, kind: pb::PolicyKind, asset: &str, limit: i64) -> pb::Policy {
    h.policies
        .set_policy(pb::SetPolicyRequest {
            tenant_id: h.tenant.clone(),
            kind: kind.into(),
            asset_code: asset.into(),
            limit,
            idempotency_key: key(),
        })
        .await
        .expect("policy set")
        .into_inner()
        .policy
        .expect("policy")
}

#[tokio::test]
async fn a_per_transfer_limit_applies_to_its_asset() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 1_000).await;
    let policy = set(&mut h, pb::PolicyKind::MaxTransferAmount, "BESITOS", 100).await;

    let refused = h
        .transfer(&wallet, &issuer, 101)
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "POLICY_VIOLATION");
    assert_eq!(metadata(&refused, "policy_id"), Some(policy.id));
    h.transfer(&wallet, &issuer, 100)
        .await
        .expect("at the limit");
}

#[tokio::test]
async fn the_daily_limit_holds_under_concurrent_debits() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10_000).await;
    set(&mut h, pb::PolicyKind::MaxDailyDebits, "", 500).await;

    let calls = (0..20).map(|_| {
        let mut client = h.ledger.clone();
        let request = pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(spec(&wallet, &issuer, 60)),
            idempotency_key: key(),
        };
        tokio::spawn(async move { client.create_transfer(request).await })
    });
    let accepted = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter(|r| r.as_ref().expect("joined").is_ok())
        .count();

    assert_eq!(accepted, 8, "8 × 60 = 480 fits in 500, a 9th would not");
    assert_eq!(h.balance(&wallet).await.posted, 10_000 - 480);
}

#[tokio::test]
async fn the_kill_switch_stops_debits_until_disabled() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    let pending = h
        .ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(pb::TransferSpec {
                pending: true,
                ..spec(&wallet, &issuer, 10)
            }),
            idempotency_key: key(),
        })
        .await
        .expect("reserved")
        .into_inner()
        .transfer
        .expect("t");
    let switch = set(&mut h, pb::PolicyKind::KillSwitch, "", 0).await;

    let refused = h.transfer(&wallet, &issuer, 1).await.expect_err("killed");
    assert_eq!(reason(&refused), "POLICY_VIOLATION");
    assert_eq!(
        metadata(&refused, "policy_kind").as_deref(),
        Some("KILL_SWITCH")
    );
    let post = h
        .ledger
        .post_pending_transfer(pb::PostPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: pending.id.clone(),
            amount: 0,
            idempotency_key: key(),
        })
        .await
        .expect_err("posting is a debit");
    assert_eq!(reason(&post), "POLICY_VIOLATION");
    h.ledger
        .void_pending_transfer(pb::VoidPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: pending.id,
            idempotency_key: key(),
        })
        .await
        .expect("voids still work");

    let active = h
        .policies
        .list_active_policies(pb::ListActivePoliciesRequest {
            tenant_id: h.tenant.clone(),
        })
        .await
        .expect("listed")
        .into_inner()
        .policies;
    assert_eq!(active.len(), 1);
    h.policies
        .disable_policy(pb::DisablePolicyRequest {
            tenant_id: h.tenant.clone(),
            policy_id: switch.id.clone(),
            idempotency_key: key(),
        })
        .await
        .expect("disabled");
    h.transfer(&wallet, &issuer, 1).await.expect("debits again");
    let twice = h
        .policies
        .disable_policy(pb::DisablePolicyRequest {
            tenant_id: h.tenant.clone(),
            policy_id: switch.id,
            idempotency_key: key(),
        })
        .await
        .expect_err("already ended");
    assert_eq!(twice.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn setting_a_policy_again_replaces_it() {
    let mut h = Harness::start().await;
    let first = set(&mut h, pb::PolicyKind::MaxTransferAmount, "", 100).await;
    let second = set(&mut h, pb::PolicyKind::MaxTransferAmount, "", 200).await;
    let active = h
        .policies
        .list_active_policies(pb::ListActivePoliciesRequest {
            tenant_id: h.tenant.clone(),
        })
        .await
        .expect("listed")
        .into_inner()
        .policies;
    assert_eq!(
        active.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        [second.id]
    );
    assert_ne!(first.limit, active[0].limit);

    let bad = h
        .policies
        .set_policy(pb::SetPolicyRequest {
            tenant_id: h.tenant.clone(),
            kind: pb::PolicyKind::MaxDailyDebits.into(),
            asset_code: String::new(),
            limit: -1,
            idempotency_key: key(),
        })
        .await
        .expect_err("negative limit");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(support::fields(&bad), ["limit"]);
}

#[tokio::test]
async fn the_dry_run_answers_without_writing() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 50).await;
    set(&mut h, pb::PolicyKind::MaxTransferAmount, "", 40).await;
    let transfers = support::count(&h.service.pool, "transfers").await;
    let validate = |amount| pb::ValidateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(spec(&wallet, &issuer, amount)),
    };

    let ok = h
        .policies
        .validate_transfer(validate(30))
        .await
        .expect("ok")
        .into_inner();
    assert!(ok.accepted);
    let over = h
        .policies
        .validate_transfer(validate(45))
        .await
        .expect("ok")
        .into_inner();
    assert!(!over.accepted);
    assert_eq!(over.failure.expect("failure").reason, "POLICY_VIOLATION");
    let invalid = h
        .policies
        .validate_transfer(validate(0))
        .await
        .expect_err("bad input");
    assert_eq!(invalid.code(), Code::InvalidArgument);

    assert_eq!(
        support::count(&h.service.pool, "transfers").await,
        transfers
    );
    assert_eq!(h.balance(&wallet).await.posted, 50);
}

/// A policy change holds the tenant's gate exclusively until it commits; a transfer arriving
/// meanwhile waits at the gate, and is then checked against the policy that change made: what
/// it reads after the gate is never from a snapshot older than the change.
#[tokio::test]
async fn a_transfer_that_waits_for_a_policy_change_is_checked_against_the_new_policy() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 1_000).await;
    let tenant: uuid::Uuid = h.tenant.parse().expect("a tenant id");
    // What SetPolicy does, held open: the gate taken exclusively, then the new policy.
    let mut change = h.service.pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(phoenix_ledger::store::POLICY_GATE)
        .bind(tenant)
        .execute(&mut *change)
        .await
        .expect("the gate");
    sqlx::query(
        "INSERT INTO policies (tenant_id, id, kind, asset_code, limit_amount, effective_from)
         VALUES ($1, $2, 'MAX_TRANSFER_AMOUNT', 'BESITOS', 100, clock_timestamp())",
    )
    .bind(tenant)
    .bind(uuid::Uuid::now_v7())
    .execute(&mut *change)
    .await
    .expect("a policy");

    let mut client = h.ledger.clone();
    let request = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(spec(&wallet, &issuer, 101)),
        idempotency_key: key(),
    };
    let transfer = tokio::spawn(async move { client.create_transfer(request).await });
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&h.service.pool)
        .await
        .expect("locks")
    };
    let started = std::time::Instant::now();
    while waiting().await == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the transfer never waited at the gate"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    change.commit().await.expect("the policy change commits");

    let refused = transfer
        .await
        .expect("joined")
        .expect_err("over the new limit");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "POLICY_VIOLATION");
    assert_eq!(
        h.balance(&wallet).await.posted,
        1_000,
        "nothing was debited"
    );
}
