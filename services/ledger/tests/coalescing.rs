//! Coalesced commits: concurrent single-operation posting calls written in one transaction
//! each keep the outcome a lone call gets — refusals, replays, idempotency keys, events — and
//! one call's failure never fails another's.
//!
//! The calls go through the use case (`app::Ledger::post`) from one task, so they are all
//! queued before a writer runs and land in one group, deterministically.

mod support;

use std::collections::BTreeMap;

use phoenix_ledger::app::Ledger;
use phoenix_ledger::app::posting::{BatchOutcome, Located};
use phoenix_ledger::config::LedgerSettings;
use phoenix_ledger::domain::ledger::{Linking, Operation, TransferSpec};
use phoenix_proto::ledger::v1 as pb;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::{Error, RefusalKind};
use support::{Harness, key};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

struct Direct {
    h: Harness,
    tenant: Uuid,
    ledger: Ledger,
    /// An issuer account and an empty no-overdraft wallet.
    issuer: String,
    wallet: String,
    _stop: DropGuard,
}

/// A ledger service with one tenant and an issuer and a wallet, and its use cases coalescing
/// with a window wide enough for every call a test posts together.
async fn direct() -> Direct {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("ana", 0).await;
    let shutdown = CancellationToken::new();
    let ledger = Ledger::new(
        h.service.pool.clone(),
        LedgerSettings::parse(&["--coalesce-window=50ms".to_owned()]).expect("settings"),
        shutdown.clone(),
    );
    Direct {
        tenant: h.tenant.parse().expect("a tenant id"),
        h,
        ledger,
        issuer,
        wallet,
        _stop: shutdown.drop_guard(),
    }
}

fn transfer(debit: &str, credit: &str, amount: i64) -> TransferSpec {
    TransferSpec {
        debit_account_id: debit.parse().expect("an account id"),
        credit_account_id: credit.parse().expect("an account id"),
        amount,
        pending: false,
        timeout: None,
        code: "test".into(),
        metadata: BTreeMap::new(),
    }
}

/// The key the API would make for a CreateTransfer of `spec` under `key`.
fn keyed(h: &Harness, key: &str, spec: &TransferSpec) -> RequestKey {
    let request = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(pb::TransferSpec {
            debit_account_id: spec.debit_account_id.to_string(),
            credit_account_id: spec.credit_account_id.to_string(),
            amount: spec.amount,
            code: spec.code.clone(),
            metadata: spec.metadata.clone().into_iter().collect(),
            ..Default::default()
        }),
        idempotency_key: key.to_owned(),
    };
    RequestKey::new(&h.tenant, key, "LedgerService/CreateTransfer", &request)
}

/// Posts every call at once (all queued before a writer takes the group) and answers each.
async fn post_together(
    ledger: &Ledger,
    tenant: Uuid,
    calls: Vec<(RequestKey, TransferSpec)>,
) -> Vec<Result<BatchOutcome, Error>> {
    futures_util::future::join_all(
        calls
            .into_iter()
            .map(|(key, spec)| post_transfer(ledger, key, tenant, spec)),
    )
    .await
}

/// CreateTransfer's use case: `spec` under `key`.
async fn post_transfer(
    ledger: &Ledger,
    key: RequestKey,
    tenant: Uuid,
    spec: TransferSpec,
) -> Result<BatchOutcome, Error> {
    ledger
        .post(
            &key,
            tenant,
            vec![Operation::Transfer(spec)],
            Linking::Linked,
            Located::Single(Some("transfer")),
        )
        .await
}

fn made(answer: &Result<BatchOutcome, Error>) -> &phoenix_ledger::domain::ledger::Transfer {
    match answer {
        Ok(outcome) => outcome.results[0].as_ref().expect("the transfer was made"),
        Err(error) => panic!("the call failed: {error:?}"),
    }
}

/// The (code kind, reason) of a refused call.
fn refusal(answer: &Result<BatchOutcome, Error>) -> (RefusalKind, String) {
    match answer {
        Err(Error::Refused(refusal)) => (refusal.kind, refusal.reason.to_string()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn audit_is_clean(h: &Harness) {
    let report = phoenix_ledger::audit::run(&h.service.pool)
        .await
        .expect("audit ran");
    assert_eq!(report.violations(), 0, "{}", report.render());
}

#[tokio::test]
async fn one_callers_refusal_never_fails_another_s_in_the_same_group() {
    let Direct {
        mut h,
        tenant,
        ledger,
        issuer,
        wallet,
        ..
    } = direct().await;
    h.transfer(&issuer, &wallet, 100).await.expect("funded");
    let (_, other) = h.funded_wallet("bea", 0).await;
    // A key already used, alone, for another transfer.
    let used = key();
    let first = transfer(&issuer, &wallet, 5);
    let lone = post_together(
        &ledger,
        tenant,
        vec![(keyed(&h, &used, &first), first.clone())],
    )
    .await;
    let first_id = made(&lone[0]).id;

    let missing = Uuid::now_v7().to_string();
    let calls = vec![
        transfer(&issuer, &wallet, 10),   // fine
        transfer(&missing, &wallet, 10),  // an account that does not exist
        transfer(&wallet, &other, 1_000), // more than the wallet holds
        transfer(&wallet, &other, 20),    // fine, and sees the first call's credit
        transfer(&issuer, &other, 7),     // reuses `used` for another request
        first.clone(),                    // replays `used`'s first call
    ];
    let keys: Vec<RequestKey> = calls
        .iter()
        .enumerate()
        .map(|(i, spec)| match i {
            4 | 5 => keyed(&h, &used, spec),
            _ => keyed(&h, &key(), spec),
        })
        .collect();
    let answers = post_together(
        &ledger,
        tenant,
        keys.into_iter().zip(calls.clone()).collect(),
    )
    .await;

    let (a, d) = (made(&answers[0]), made(&answers[3]));
    assert_eq!(
        a.created_at, d.created_at,
        "the calls were written in one transaction (one clock reading)"
    );
    assert_eq!(
        made(&answers[5]).id,
        first_id,
        "a replay answers the first call"
    );
    let refused: Vec<(RefusalKind, String)> =
        [1, 2, 4].iter().map(|&i| refusal(&answers[i])).collect();
    // Each refused call, alone now, is refused the same way.
    for (index, together) in [1, 2, 4].into_iter().zip(&refused) {
        let spec = calls[index].clone();
        let key = if index == 4 {
            keyed(&h, &used, &spec)
        } else {
            keyed(&h, &key(), &spec)
        };
        let alone = post_together(&ledger, tenant, vec![(key, spec)]).await;
        assert_eq!(&refusal(&alone[0]), together, "call {index}");
    }
    assert_eq!(
        refused,
        [
            (RefusalKind::NotFound, "ACCOUNT_NOT_FOUND".to_owned()),
            (RefusalKind::Precondition, "INSUFFICIENT_FUNDS".to_owned()),
            (RefusalKind::Invalid, "IDEMPOTENCY_KEY_REUSED".to_owned()),
        ]
    );
    // 100 funded + 5 + 10 in, 20 out.
    assert_eq!(h.balance(&wallet).await.available, 95);
    assert_eq!(h.balance(&other).await.available, 20);
    audit_is_clean(&h).await;
}

#[tokio::test]
async fn the_same_key_twice_in_one_group_takes_effect_once() {
    let Direct {
        mut h,
        tenant,
        ledger,
        issuer,
        wallet,
        ..
    } = direct().await;
    let spec = transfer(&issuer, &wallet, 30);
    let same = keyed(&h, &key(), &spec);
    let answers = post_together(
        &ledger,
        tenant,
        vec![(same.clone(), spec.clone()), (same, spec)],
    )
    .await;
    assert_eq!(made(&answers[0]).id, made(&answers[1]).id);
    assert_eq!(h.balance(&wallet).await.available, 30, "one effect");
    assert_eq!(
        support::count(&h.service.pool, "transfers WHERE amount = 30").await,
        1
    );
    audit_is_clean(&h).await;
}

#[tokio::test]
async fn a_value_the_database_refuses_fails_only_its_own_call() {
    let Direct {
        mut h,
        tenant,
        ledger,
        issuer,
        wallet,
        ..
    } = direct().await;
    // Past the API's validation (which refuses it): a NUL, which no jsonb can hold.
    let mut unstorable = transfer(&issuer, &wallet, 2);
    unstorable.metadata.insert("note".into(), "a\u{0}b".into());
    let calls: Vec<(RequestKey, TransferSpec)> = [
        transfer(&issuer, &wallet, 1),
        unstorable,
        transfer(&issuer, &wallet, 4),
    ]
    .into_iter()
    .map(|spec| (keyed(&h, &key(), &spec), spec))
    .collect();
    let answers = post_together(&ledger, tenant, calls).await;
    made(&answers[0]);
    made(&answers[2]);
    assert_eq!(
        refusal(&answers[1]),
        (RefusalKind::Invalid, "VALUE_NOT_STORABLE".to_owned())
    );
    assert_eq!(
        h.balance(&wallet).await.available,
        5,
        "the others were written"
    );
    audit_is_clean(&h).await;
}

#[tokio::test]
async fn coalesced_calls_append_one_event_per_call_and_account_in_order() {
    let Direct {
        mut h,
        tenant,
        ledger,
        issuer,
        wallet,
        ..
    } = direct().await;
    let calls: Vec<(RequestKey, TransferSpec)> = (1..=5)
        .map(|amount| transfer(&issuer, &wallet, amount))
        .map(|spec| (keyed(&h, &key(), &spec), spec))
        .collect();
    let answers = post_together(&ledger, tenant, calls).await;
    let created: Vec<_> = answers.iter().map(|a| made(a).created_at).collect();
    assert!(created.windows(2).all(|w| w[0] == w[1]), "one transaction");
    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT aggregate_version FROM events WHERE aggregate_id = $1 ORDER BY seq",
    )
    .bind(&wallet)
    .fetch_all(&h.service.pool)
    .await
    .expect("events");
    // Opened, then one event per call, in the calls' order.
    assert_eq!(versions, (1..=6).collect::<Vec<i64>>());
    let entries = h.entries(&wallet).await;
    let amounts: Vec<i64> = entries.iter().map(|e| e.amount).collect();
    assert_eq!(amounts, vec![1, 2, 3, 4, 5]);
    audit_is_clean(&h).await;
}

/// Posts `spec` under a fresh key, from a task of its own.
fn post_alone(
    h: &Harness,
    ledger: &Ledger,
    tenant: Uuid,
    spec: TransferSpec,
) -> tokio::task::JoinHandle<Result<BatchOutcome, Error>> {
    let key = keyed(h, &key(), &spec);
    let ledger = ledger.clone();
    tokio::spawn(async move { post_transfer(&ledger, key, tenant, spec).await })
}

#[tokio::test]
async fn a_call_on_an_account_a_group_holds_waits_behind_it_while_other_calls_go() {
    let Direct {
        mut h,
        tenant,
        ledger,
        issuer,
        wallet,
        ..
    } = direct().await;
    let (other_issuer, other_wallet) = h.funded_wallet("bea", 0).await;
    // The test holds the wallet's row, so the first call's group waits in the database
    // holding the wallet (and the issuer) for as long as the test says.
    let holder = support::lock_account(&h.service.pool, &wallet).await;
    let first = post_alone(&h, &ledger, tenant, transfer(&issuer, &wallet, 1));
    let waiting: i64 = loop {
        let waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&h.service.pool)
        .await
        .expect("activity");
        if waiting > 0 {
            break waiting;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(waiting, 1, "the first group waits for the wallet");

    let second = post_alone(&h, &ledger, tenant, transfer(&issuer, &wallet, 2));
    let unrelated = post_alone(
        &h,
        &ledger,
        tenant,
        transfer(&other_issuer, &other_wallet, 3),
    );
    // The call on other accounts is written meanwhile by the other writer, alone: the call
    // on the wallet was held back rather than put in its group, where it would have made the
    // group wait for the wallet too.
    let unrelated = tokio::time::timeout(std::time::Duration::from_secs(10), unrelated)
        .await
        .expect("the unrelated call is answered while the wallet is held")
        .expect("the task");
    assert_eq!(made(&unrelated).amount, 3);
    assert!(
        !second.is_finished(),
        "the call on the wallet waits for the group holding it"
    );

    holder.rollback().await.expect("the wallet released");
    let (first, second) = (
        first.await.expect("the task"),
        second.await.expect("the task"),
    );
    assert_eq!((made(&first).amount, made(&second).amount), (1, 2));
    // Held back, it comes after the call that holds its accounts: the wallet's entries in the
    // calls' order.
    let amounts: Vec<i64> = h.entries(&wallet).await.iter().map(|e| e.amount).collect();
    assert_eq!(amounts, vec![1, 2]);
    audit_is_clean(&h).await;
}

/// A writer keeps its connection from one group to the next while calls keep coming, and gives
/// it back once they stop: after the server ends the ledger's sessions (a restart, a proxy's
/// idle timeout) and a quiet spell, the next call is written on a live connection, not on the
/// dead one the writer held. One writer, so the call after the spell is its.
#[tokio::test]
async fn a_writer_gives_its_connection_back_when_calls_stop() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("ana", 0).await;
    let tenant: Uuid = h.tenant.parse().expect("a tenant id");
    let shutdown = CancellationToken::new();
    let ledger = Ledger::new(
        h.service.pool.clone(),
        LedgerSettings::parse(&[
            "--coalesce-window=1ms".to_owned(),
            "--coalesce-writers=1".to_owned(),
        ])
        .expect("settings"),
        shutdown.clone(),
    );
    let _stop = shutdown.drop_guard();
    let before = post_alone(&h, &ledger, tenant, transfer(&issuer, &wallet, 1))
        .await
        .expect("the task");
    assert_eq!(made(&before).amount, 1);

    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name = 'phoenix-ledger' AND backend_type = 'client backend'",
    )
    .fetch_all(&h.service.pool)
    .await
    .expect("sessions ended");
    assert!(!ended.is_empty(), "the writer's session was among them");
    // Past the writer's hold and the pool's ping threshold (a connection idle a second is
    // pinged before it is lent).
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;

    let after = post_alone(&h, &ledger, tenant, transfer(&issuer, &wallet, 2))
        .await
        .expect("the task");
    assert_eq!(made(&after).amount, 2);
    let amounts: Vec<i64> = h.entries(&wallet).await.iter().map(|e| e.amount).collect();
    assert_eq!(amounts, vec![1, 2]);
}
