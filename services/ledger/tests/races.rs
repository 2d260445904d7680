//! Concurrent callers: each gets the answer it would get alone.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use phoenix_ledger::app::Ledger;
use phoenix_ledger::app::posting::Located;
use phoenix_ledger::config::LedgerSettings;
use phoenix_ledger::domain::ledger::{Linking, Operation, TransferSpec};
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::metrics::ServiceLabels;
use support::{Harness, key};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test]
async fn concurrent_first_accounts_of_a_new_asset_all_open() {
    let h = Harness::start().await;
    for round in 0..3 {
        let asset = format!("GEMS{round}");
        let calls = (0..10).map(|owner| {
            let mut ledger = h.ledger.clone();
            let request = pb::CreateAccountRequest {
                tenant_id: h.tenant.clone(),
                asset_code: asset.clone(),
                asset_scale: 2,
                owner_ref: format!("owner-{owner}"),
                kind: "wallet".into(),
                balance_limit: pb::BalanceLimit::DebitsMustNotExceedCredits.into(),
                metadata: Default::default(),
                idempotency_key: key(),
            };
            tokio::spawn(async move { ledger.create_account(request).await })
        });
        let answers = futures_util::future::join_all(calls).await;
        let mut owners = Vec::new();
        for answer in answers {
            let account = answer
                .expect("the call's task")
                .unwrap_or_else(|status| panic!("round {round}: {status:?}"))
                .into_inner()
                .account
                .expect("account");
            assert_eq!(
                (account.asset_code.as_str(), account.asset_scale),
                (asset.as_str(), 2)
            );
            owners.push(account.owner_ref);
        }
        owners.sort();
        owners.dedup();
        assert_eq!(owners.len(), 10, "one account per owner");
    }
}

/// A posting call dropped while it waits on an account's lock (its caller's deadline, a
/// cancelled call) writes nothing, and rolls its transaction back once its lock statement
/// ends: the gate and the account are free again, no session is left inside a block, and the
/// pool's check on release (the backstop for such sessions) has nothing to discard.
#[tokio::test]
async fn a_posting_dropped_while_waiting_on_a_lock_writes_nothing_and_frees_its_connection() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("ana", 100).await;
    let tenant: Uuid = h.tenant.parse().expect("a tenant id");
    let shutdown = CancellationToken::new();
    // Not coalesced, so the posting runs in the caller's future, and goes with it.
    let ledger = Ledger::new(
        h.service.pool.clone(),
        LedgerSettings::parse(&["--coalesce-window=0".to_owned()]).expect("settings"),
        shutdown.clone(),
    );
    let _stop = shutdown.drop_guard();
    let discarded = || {
        phoenix_runtime::metrics::global()
            .connections_discarded
            .get_or_create(&ServiceLabels {
                service: "ledger".into(),
            })
            .get()
    };
    let discarded_before = discarded();

    let holder = support::lock_account(&h.service.pool, &wallet).await;
    let request = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(support::spec(&wallet, &issuer, 40)),
        idempotency_key: key(),
    };
    let request_key = RequestKey::new(
        &h.tenant,
        &request.idempotency_key,
        "LedgerService/CreateTransfer",
        &request,
    );
    let spec = TransferSpec {
        debit_account_id: wallet.parse().expect("an account id"),
        credit_account_id: issuer.parse().expect("an account id"),
        amount: 40,
        pending: false,
        timeout: None,
        code: String::new(),
        metadata: BTreeMap::new(),
    };
    let mut posting = Box::pin(ledger.post(
        &request_key,
        tenant,
        vec![Operation::Transfer(spec)],
        Linking::Linked,
        Located::Single(Some("transfer")),
    ));
    tokio::select! {
        answer = &mut posting => panic!("the posting went past the wallet's lock: {answer:?}"),
        () = support::until_a_lock_is_waited_for(&h.service.pool) => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => panic!("the posting never waited on the lock"),
    }
    drop(posting);
    holder.commit().await.expect("the wallet released");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let in_a_block: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&h.service.pool)
        .await
        .expect("pg_stat_activity");
        if in_a_block == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{in_a_block} sessions still inside a transaction block"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.balance(&wallet).await.posted,
        100,
        "the dropped posting wrote nothing"
    );
    h.transfer(&wallet, &issuer, 40)
        .await
        .expect("the wallet takes the next transfer");
    assert_eq!(h.balance(&wallet).await.posted, 60);
    assert_eq!(
        discarded(),
        discarded_before,
        "the dropped posting rolled its transaction back; the pool had no connection to discard"
    );
}
