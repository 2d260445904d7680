//! Tenants, accounts, transfers, two-phase transfers, history and idempotency, through gRPC.

mod support;

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use support::{Harness, count, fields, key, metadata, reason, spec};
use tonic::Code;

#[tokio::test]
async fn tenants_are_created_listed_and_unique_by_slug() {
    let mut h = Harness::start().await;
    let tenant = h
        .ledger
        .get_tenant(pb::GetTenantRequest {
            tenant_id: h.tenant.clone(),
        })
        .await
        .expect("found")
        .into_inner()
        .tenant
        .expect("tenant");
    assert_eq!(tenant.slug, "acme");

    let duplicate = h
        .ledger
        .create_tenant(pb::CreateTenantRequest {
            slug: "acme".into(),
            name: "Another".into(),
            idempotency_key: key(),
        })
        .await
        .expect_err("slug taken");
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert_eq!(reason(&duplicate), "TENANT_EXISTS");

    let bad = h
        .ledger
        .create_tenant(pb::CreateTenantRequest {
            slug: "Not A Slug".into(),
            name: String::new(),
            idempotency_key: key(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(fields(&bad), ["slug", "name"]);

    support::create_tenant(&mut h.ledger, "globex").await;
    let listed = h
        .ledger
        .list_tenants(pb::ListTenantsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(listed.tenants.len(), 1);
    let rest = h
        .ledger
        .list_tenants(pb::ListTenantsRequest {
            page_size: 10,
            page_token: listed.next_page_token,
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(rest.tenants.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn an_account_shows_posted_pending_and_available_balances() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    let pending = h
        .ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(pb::TransferSpec {
                pending: true,
                ..spec(&wallet, &issuer, 30)
            }),
            idempotency_key: key(),
        })
        .await
        .expect("reserved")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(pending.kind(), pb::TransferKind::Pending);
    assert_eq!(pending.pending_state(), pb::PendingState::Open);

    let balance = h.balance(&wallet).await;
    assert_eq!(
        (balance.posted, balance.debits_pending, balance.available),
        (100, 30, 70)
    );
    let accounts = h
        .ledger
        .list_accounts(pb::ListAccountsRequest {
            tenant_id: h.tenant.clone(),
            owner_ref: "user-1".into(),
        })
        .await
        .expect("listed")
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, wallet);
    assert_eq!(
        accounts[0].balance_limit(),
        pb::BalanceLimit::DebitsMustNotExceedCredits
    );
}

#[tokio::test]
async fn an_asset_keeps_its_scale_and_an_owner_has_one_account_per_asset_and_kind() {
    let mut h = Harness::start().await;
    let mut request = pb::CreateAccountRequest {
        tenant_id: h.tenant.clone(),
        asset_code: "USD".into(),
        asset_scale: 2,
        owner_ref: "user-1".into(),
        kind: "wallet".into(),
        balance_limit: pb::BalanceLimit::DebitsMustNotExceedCredits.into(),
        metadata: [("tier".to_owned(), "gold".to_owned())].into(),
        idempotency_key: key(),
    };
    let account = h
        .ledger
        .create_account(request.clone())
        .await
        .expect("opened")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        (account.asset_scale, account.metadata["tier"].as_str()),
        (2, "gold")
    );

    request.idempotency_key = key();
    let duplicate = h
        .ledger
        .create_account(request.clone())
        .await
        .expect_err("dup");
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    request.idempotency_key = key();
    request.owner_ref = "user-2".into();
    request.asset_scale = 3;
    let mismatch = h
        .ledger
        .create_account(request.clone())
        .await
        .expect_err("scale");
    assert_eq!(mismatch.code(), Code::FailedPrecondition);
    assert_eq!(reason(&mismatch), "ASSET_SCALE_MISMATCH");

    request.idempotency_key = key();
    request.balance_limit = pb::BalanceLimit::Unspecified.into();
    request.asset_code = "usd".into();
    let invalid = h.ledger.create_account(request).await.expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(fields(&invalid), ["asset_code", "balance_limit"]);
}

#[tokio::test]
async fn a_transfer_posts_balanced_entries_with_running_balances() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    let shop = h.account("shop", "BESITOS", pb::BalanceLimit::None).await;
    h.transfer(&wallet, &shop, 30).await.expect("spent");
    h.transfer(&wallet, &shop, 25).await.expect("spent again");

    let entries = h.entries(&wallet).await;
    let history: Vec<_> = entries
        .iter()
        .map(|e| (e.version, e.amount, e.balance))
        .collect();
    assert_eq!(history, [(1, 100, 100), (2, -30, 70), (3, -25, 45)]);
    assert_eq!(h.balance(&shop).await.posted, 55);
    assert_eq!(h.balance(&issuer).await.posted, -100);

    let sum: i64 = sqlx::query_scalar("SELECT sum(amount)::bigint FROM entries")
        .fetch_one(&h.service.pool)
        .await
        .expect("sum");
    assert_eq!(sum, 0, "every transfer is balanced");
}

#[tokio::test]
async fn an_overdraft_is_refused_and_writes_nothing() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let transfers = count(&h.service.pool, "transfers").await;
    let events = count(&h.service.pool, "events").await;

    let refused = h
        .transfer(&wallet, &issuer, 11)
        .await
        .expect_err("overdraft");

    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "INSUFFICIENT_FUNDS");
    assert_eq!(metadata(&refused, "available").as_deref(), Some("10"));
    assert_eq!(count(&h.service.pool, "transfers").await, transfers);
    assert_eq!(count(&h.service.pool, "events").await, events);
    assert_eq!(
        count(&h.service.pool, "request_keys").await,
        4,
        "the refused call kept no key"
    );
}

#[tokio::test]
async fn bad_transfers_get_field_errors_and_write_nothing() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let xp = h.account("user-1", "XP", pb::BalanceLimit::None).await;
    let before = count(&h.service.pool, "transfers").await;

    let zero = h.transfer(&issuer, &wallet, 0).await.expect_err("zero");
    assert_eq!(
        (zero.code(), fields(&zero)),
        (Code::InvalidArgument, vec!["transfer.amount".to_owned()])
    );
    let negative = h
        .transfer(&issuer, &wallet, -5)
        .await
        .expect_err("negative");
    assert_eq!(negative.code(), Code::InvalidArgument);
    let same = h
        .transfer(&wallet, &wallet, 1)
        .await
        .expect_err("same account");
    assert_eq!(same.code(), Code::InvalidArgument);
    let mismatch = h
        .transfer(&issuer, &xp, 1)
        .await
        .expect_err("asset mismatch");
    assert_eq!(
        (mismatch.code(), reason(&mismatch).as_str()),
        (Code::FailedPrecondition, "ASSET_MISMATCH")
    );
    let unknown = h
        .transfer(&issuer, &uuid::Uuid::new_v4().to_string(), 1)
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(fields(&unknown), ["transfer.credit_account_id"]);
    let malformed = h.transfer("nope", &wallet, 1).await.expect_err("malformed");
    assert_eq!(fields(&malformed), ["transfer.debit_account_id"]);
    let overflow = h
        .transfer(&issuer, &wallet, i64::MAX)
        .await
        .expect_err("overflow");
    assert_eq!(
        (overflow.code(), reason(&overflow).as_str()),
        (Code::FailedPrecondition, "BALANCE_OVERFLOW")
    );
    let oversized = h
        .ledger
        .create_transfers(pb::CreateTransfersRequest {
            tenant_id: h.tenant.clone(),
            transfers: vec![spec(&issuer, &wallet, 1); 8_001],
            mode: pb::BatchMode::Independent.into(),
            idempotency_key: key(),
        })
        .await
        .expect_err("oversized");
    assert_eq!(
        (oversized.code(), fields(&oversized)),
        (Code::InvalidArgument, vec!["transfers".to_owned()])
    );
    let no_key = h
        .ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(spec(&issuer, &wallet, 1)),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("key required");
    assert_eq!(fields(&no_key), ["idempotency_key"]);
    assert_eq!(reason(&no_key), "IDEMPOTENCY_KEY_REQUIRED");

    assert_eq!(count(&h.service.pool, "transfers").await, before);
}

#[tokio::test]
async fn a_linked_batch_succeeds_or_fails_as_one() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    let shop = h.account("shop", "BESITOS", pb::BalanceLimit::None).await;
    let batch = |transfers, mode: pb::BatchMode| pb::CreateTransfersRequest {
        tenant_id: String::new(),
        transfers,
        mode: mode.into(),
        idempotency_key: key(),
    };

    let mut linked = batch(
        vec![spec(&wallet, &shop, 60), spec(&wallet, &shop, 60)],
        pb::BatchMode::Linked,
    );
    linked.tenant_id = h.tenant.clone();
    let refused = h
        .ledger
        .create_transfers(linked)
        .await
        .expect_err("second overdraws");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(metadata(&refused, "index").as_deref(), Some("1"));
    assert_eq!(
        h.balance(&wallet).await.posted,
        100,
        "the first was not kept"
    );

    let mut independent = batch(
        vec![
            spec(&wallet, &shop, 60),
            spec(&wallet, &shop, 60),
            spec(&issuer, &wallet, 5),
        ],
        pb::BatchMode::Independent,
    );
    independent.tenant_id = h.tenant.clone();
    let results = h
        .ledger
        .create_transfers(independent)
        .await
        .expect("independent")
        .into_inner()
        .results;
    let outcomes: Vec<_> = results
        .iter()
        .map(|r| match r.outcome.as_ref().expect("outcome") {
            pb::transfer_result::Outcome::Transfer(_) => "ok".to_owned(),
            pb::transfer_result::Outcome::Failure(f) => f.reason.clone(),
        })
        .collect();
    assert_eq!(outcomes, ["ok", "INSUFFICIENT_FUNDS", "ok"]);
    assert_eq!(h.balance(&wallet).await.posted, 45);
}

#[tokio::test]
async fn a_pending_transfer_is_posted_in_part_voided_or_expired() {
    let mut h = Harness::start().await;
    let (_, wallet) = h.funded_wallet("user-1", 100).await;
    let shop = h.account("shop", "BESITOS", pb::BalanceLimit::None).await;
    let reserve = |h: &mut Harness, amount, timeout: Option<prost_types::Duration>| {
        let request = pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(pb::TransferSpec {
                pending: true,
                timeout,
                ..spec(&wallet, &shop, amount)
            }),
            idempotency_key: key(),
        };
        let mut client = h.ledger.clone();
        async move {
            client
                .create_transfer(request)
                .await
                .expect("reserved")
                .into_inner()
                .transfer
                .expect("t")
                .id
        }
    };

    let first = reserve(&mut h, 40, None).await;
    let posted = h
        .ledger
        .post_pending_transfer(pb::PostPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: first.clone(),
            amount: 25,
            idempotency_key: key(),
        })
        .await
        .expect("posted")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(
        (posted.kind(), posted.amount),
        (pb::TransferKind::PostPending, 25)
    );
    let balance = h.balance(&wallet).await;
    assert_eq!(
        (balance.posted, balance.debits_pending),
        (75, 0),
        "the rest is released"
    );
    let again = h
        .ledger
        .void_pending_transfer(pb::VoidPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: first.clone(),
            idempotency_key: key(),
        })
        .await
        .expect_err("already posted");
    assert_eq!(reason(&again), "PENDING_NOT_OPEN");

    let second = reserve(&mut h, 30, None).await;
    h.ledger
        .void_pending_transfer(pb::VoidPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: second.clone(),
            idempotency_key: key(),
        })
        .await
        .expect("voided");
    assert_eq!(h.balance(&wallet).await.available, 75);

    let third = reserve(
        &mut h,
        50,
        Some(prost_types::Duration {
            seconds: 0,
            nanos: 300_000_000,
        }),
    )
    .await;
    assert_eq!(h.balance(&wallet).await.available, 25);
    // The sweeper (every second by default) releases it without any call.
    let mut state = pb::PendingState::Open;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        state = h
            .ledger
            .get_transfer(pb::GetTransferRequest {
                tenant_id: h.tenant.clone(),
                transfer_id: third.clone(),
            })
            .await
            .expect("found")
            .into_inner()
            .transfer
            .expect("transfer")
            .pending_state();
        if state != pb::PendingState::Open {
            break;
        }
    }
    assert_eq!(state, pb::PendingState::Expired);
    assert_eq!(h.balance(&wallet).await.available, 75);
    let late = h
        .ledger
        .post_pending_transfer(pb::PostPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: third,
            amount: 0,
            idempotency_key: key(),
        })
        .await
        .expect_err("expired");
    assert_eq!(late.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn corrections_are_reversing_transfers_and_entries_cannot_be_edited() {
    let mut h = Harness::start().await;
    let (_, wallet) = h.funded_wallet("user-1", 100).await;
    let shop = h.account("shop", "BESITOS", pb::BalanceLimit::None).await;
    let purchase = h.transfer(&wallet, &shop, 40).await.expect("bought");

    let reversal = h
        .ledger
        .reverse_transfer(pb::ReverseTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer_id: purchase.id.clone(),
            amount: 0,
            code: "refund".into(),
            idempotency_key: key(),
        })
        .await
        .expect("reversed")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(reversal.reversal_of, purchase.id);
    assert_eq!(
        (reversal.debit_account_id.as_str(), reversal.amount),
        (shop.as_str(), 40)
    );
    assert_eq!(h.balance(&wallet).await.posted, 100);
    let twice = h
        .ledger
        .reverse_transfer(pb::ReverseTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer_id: purchase.id,
            amount: 0,
            code: String::new(),
            idempotency_key: key(),
        })
        .await
        .expect_err("nothing left");
    assert_eq!(reason(&twice), "ALREADY_REVERSED");

    // The events have their stream positions (the sequencer may not have run yet), so the
    // statements below have rows to refuse.
    phoenix_runtime::stream::sequencer::pass(&h.service.pool)
        .await
        .expect("a sequencer pass");
    assert!(count(&h.service.pool, "event_positions").await > 0);

    for statement in [
        "UPDATE entries SET amount = amount * 2",
        "DELETE FROM entries",
        "UPDATE transfers SET amount = 1",
        "DELETE FROM transfers",
        "UPDATE events SET payload = ''",
        "DELETE FROM events",
        "TRUNCATE entries CASCADE",
        "TRUNCATE events",
        "UPDATE event_positions SET position = position + 1000",
        "DELETE FROM event_positions",
        "TRUNCATE event_positions",
        "DELETE FROM accounts",
        "TRUNCATE accounts CASCADE",
    ] {
        let error = sqlx::query(statement)
            .execute(&h.service.pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
}

#[tokio::test]
async fn the_auditor_finds_an_entry_of_no_account() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 100).await;
    h.transfer(&wallet, &issuer, 10).await.expect("posted");
    let clean = phoenix_ledger::audit::run(&h.service.pool)
        .await
        .expect("audit ran");
    assert_eq!(clean.violations(), 0, "{}", clean.render());

    // Written around the service, which writes entries only with their transfer.
    let stray = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO entries (tenant_id, account_id, version, transfer_id, asset_code, amount,
                              balance, created_at)
         VALUES ($1::uuid, $2, 1, $2, 'BESITOS', 1, 1, now())",
    )
    .bind(&h.tenant)
    .bind(stray)
    .execute(&h.service.pool)
    .await
    .expect("inserted");
    let report = phoenix_ledger::audit::run(&h.service.pool)
        .await
        .expect("audit ran");
    let rendered = report.render();
    assert!(
        rendered.contains(&format!(
            "entry {stray}/1: account {stray} is no BESITOS account"
        )),
        "{rendered}"
    );
}

#[tokio::test]
async fn history_pages_and_balance_at_a_point_in_time() {
    let mut h = Harness::start().await;
    let (_, wallet) = h.funded_wallet("user-1", 100).await;
    let shop = h.account("shop", "BESITOS", pb::BalanceLimit::None).await;
    h.transfer(&wallet, &shop, 10).await.expect("1");
    let middle = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    h.transfer(&wallet, &shop, 20).await.expect("2");

    let page = h
        .ledger
        .list_account_entries(pb::ListAccountEntriesRequest {
            tenant_id: h.tenant.clone(),
            account_id: wallet.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.entries.len(), 2);
    let rest = h
        .ledger
        .list_account_entries(pb::ListAccountEntriesRequest {
            tenant_id: h.tenant.clone(),
            account_id: wallet.clone(),
            page_size: 2,
            page_token: page.next_page_token,
        })
        .await
        .expect("rest")
        .into_inner();
    assert_eq!(
        rest.entries.iter().map(|e| e.balance).collect::<Vec<_>>(),
        [70]
    );

    let at = |time: chrono::DateTime<chrono::Utc>| pb::GetBalanceAtRequest {
        tenant_id: h.tenant.clone(),
        account_id: wallet.clone(),
        time: Some(phoenix_ledger::proto::timestamp(time)),
    };
    let then = h
        .ledger
        .get_balance_at(at(middle))
        .await
        .expect("then")
        .into_inner();
    assert_eq!((then.posted, then.version), (90, 2));
    let before = h
        .ledger
        .get_balance_at(at(middle - chrono::Duration::days(1)))
        .await
        .expect("before")
        .into_inner();
    assert_eq!((before.posted, before.version), (0, 0));
}

#[tokio::test]
async fn a_replayed_key_returns_the_first_answer_also_after_a_restart() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 0).await;
    let request = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(spec(&issuer, &wallet, 7)),
        idempotency_key: "order-42".into(),
    };
    let first = h
        .ledger
        .create_transfer(request.clone())
        .await
        .expect("first")
        .into_inner();
    let replay = h
        .ledger
        .create_transfer(request.clone())
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(first, replay);

    let tenant = h.tenant.clone();
    let service = h.service.restart().await;
    let mut ledger = LedgerServiceClient::new(service.channel.clone());
    let after_restart = ledger
        .create_transfer(request.clone())
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(first, after_restart);

    let mut different = request.clone();
    different.transfer = Some(spec(&issuer, &wallet, 8));
    let reused = ledger
        .create_transfer(different)
        .await
        .expect_err("different request");
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(reason(&reused), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(fields(&reused), ["idempotency_key"]);

    let balance = ledger
        .get_account(pb::GetAccountRequest {
            tenant_id: tenant.clone(),
            account_id: wallet.clone(),
        })
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account")
        .balance
        .expect("balance");
    assert_eq!(balance.posted, 7, "one effect for three calls");

    // Once expired and swept, the key is free again and the same request is a new one.
    let removed = phoenix_runtime::idempotency::remove_expired(
        &service.pool,
        chrono::Utc::now() + chrono::Duration::days(2),
        1000,
    )
    .await
    .expect("cleanup");
    assert!(removed >= 1);
    let fresh = ledger
        .create_transfer(request)
        .await
        .expect("new effect")
        .into_inner();
    assert_ne!(fresh.transfer.expect("t").id, first.transfer.expect("t").id);
}

#[tokio::test]
async fn a_replay_answers_as_the_first_call_did_after_its_funds_were_spent() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let mut pending = spec(&wallet, &issuer, 6);
    pending.pending = true;
    let batch = pb::CreateTransfersRequest {
        tenant_id: h.tenant.clone(),
        transfers: vec![pending, spec(&wallet, &issuer, 100)],
        mode: pb::BatchMode::Independent.into(),
        idempotency_key: "batch-1".into(),
    };
    let first = h
        .ledger
        .create_transfers(batch.clone())
        .await
        .expect("first")
        .into_inner();
    let Some(pb::transfer_result::Outcome::Transfer(opened)) = &first.results[0].outcome else {
        panic!("the pending transfer was refused: {first:?}");
    };
    assert_eq!(opened.pending_state(), pb::PendingState::Open);

    // The pending transfer is posted and the rest spent: running the calls again now would
    // be refused, and a pending transfer read now is no longer open.
    h.ledger
        .post_pending_transfer(pb::PostPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: opened.id.clone(),
            amount: 0,
            idempotency_key: key(),
        })
        .await
        .expect("posted");
    let spend = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(spec(&wallet, &issuer, 4)),
        idempotency_key: "spend-1".into(),
    };
    let spent = h
        .ledger
        .create_transfer(spend.clone())
        .await
        .expect("spent")
        .into_inner();
    assert_eq!(h.balance(&wallet).await.posted, 0);

    let replayed = h
        .ledger
        .create_transfers(batch)
        .await
        .expect("batch replay")
        .into_inner();
    assert_eq!(
        replayed, first,
        "the batch answers as it did, pending still open"
    );
    let replayed = h
        .ledger
        .create_transfer(spend)
        .await
        .expect("a replay is not refused for the funds its first call spent")
        .into_inner();
    assert_eq!(replayed, spent);
    assert_eq!(h.balance(&wallet).await.posted, 0, "one effect each");
}

#[tokio::test]
async fn concurrent_duplicates_have_exactly_one_effect() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 0).await;
    let request = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(spec(&issuer, &wallet, 3)),
        idempotency_key: "same-key".into(),
    };
    let calls = (0..16).map(|_| {
        let mut client = h.ledger.clone();
        let request = request.clone();
        tokio::spawn(async move {
            client
                .create_transfer(request)
                .await
                .map(|r| r.into_inner())
        })
    });
    let answers: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| {
            joined
                .expect("joined")
                .expect("every duplicate is answered")
        })
        .collect();
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(h.balance(&wallet).await.posted, 3);
}

#[tokio::test]
async fn one_tenant_never_sees_or_touches_another() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 50).await;
    let other = support::create_tenant(&mut h.ledger, "globex").await;
    let theirs = support::open_account(
        &mut h.ledger,
        &other,
        "user-9",
        "BESITOS",
        pb::BalanceLimit::None,
    )
    .await;

    let peek = h
        .ledger
        .get_account(pb::GetAccountRequest {
            tenant_id: other.clone(),
            account_id: wallet.clone(),
        })
        .await
        .expect_err("other tenant");
    assert_eq!(peek.code(), Code::NotFound);
    let steal = h
        .ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: other.clone(),
            transfer: Some(spec(&wallet, &theirs, 10)),
            idempotency_key: key(),
        })
        .await
        .expect_err("cross-tenant");
    assert_eq!(steal.code(), Code::NotFound);
    let mixed = h.transfer(&issuer, &theirs, 10).await.expect_err("mixed");
    assert_eq!(mixed.code(), Code::NotFound);

    // Even a raw write cannot make a row of one tenant point at another's account.
    let tenant: uuid::Uuid = h.tenant.parse().expect("uuid");
    let theirs_id: uuid::Uuid = theirs.parse().expect("uuid");
    let forged = sqlx::query(
        "INSERT INTO transfers (tenant_id, id, batch_id, kind, debit_account_id, credit_account_id,
                                asset_code, amount, created_at)
         SELECT $1, gen_random_uuid(), gen_random_uuid(), 'POSTED', $2, $3, 'BESITOS', 1, now()",
    )
    .bind(tenant)
    .bind(theirs_id)
    .bind(wallet.parse::<uuid::Uuid>().expect("uuid"))
    .execute(&h.service.pool)
    .await
    .expect_err("foreign account");
    let code = forged
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(
        code.as_deref(),
        Some("23503"),
        "foreign_key_violation: {forged}"
    );
    assert!(
        forged
            .to_string()
            .contains("is not a BESITOS account of tenant"),
        "{forged}"
    );
    assert_eq!(h.balance(&wallet).await.posted, 50);
}

#[tokio::test]
async fn with_authentication_the_token_decides_the_tenant() {
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let service = phoenix_testkit::spawn_with(phoenix_ledger::spec(), |config| {
        config.auth.hs256_secret = Some(secret.to_owned())
    })
    .await;
    let token = |tenant: &str, roles: &[&str]| {
        phoenix_testkit::bearer(
            secret,
            serde_json::json!({"sub": "svc", "tenant": tenant, "roles": roles}),
        )
    };
    fn call<T>(
        message: T,
        bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    ) -> tonic::Request<T> {
        phoenix_testkit::signed(message, &bearer)
    }
    let mut client = LedgerServiceClient::new(service.channel.clone());
    let admin = token("", &["ledger-admin"]);
    let create = |slug: &str| pb::CreateTenantRequest {
        slug: slug.into(),
        name: slug.into(),
        idempotency_key: key(),
    };
    let a = client
        .create_tenant(call(create("a"), admin.clone()))
        .await
        .expect("a")
        .into_inner()
        .tenant
        .expect("t")
        .id;
    let b = client
        .create_tenant(call(create("b"), admin.clone()))
        .await
        .expect("b")
        .into_inner()
        .tenant
        .expect("t")
        .id;
    let not_admin = client
        .create_tenant(call(create("c"), token(&a, &[])))
        .await
        .expect_err("needs admin");
    assert_eq!(not_admin.code(), Code::PermissionDenied);

    let own = client
        .get_tenant(call(
            pb::GetTenantRequest {
                tenant_id: String::new(),
            },
            token(&a, &[]),
        ))
        .await
        .expect("own tenant from the token")
        .into_inner();
    assert_eq!(own.tenant.expect("t").id, a);
    let other = client
        .get_tenant(call(
            pb::GetTenantRequest {
                tenant_id: b.clone(),
            },
            token(&a, &[]),
        ))
        .await
        .expect_err("tenant b");
    assert_eq!(other.code(), Code::PermissionDenied);
    let listed = client
        .list_tenants(call(pb::ListTenantsRequest::default(), token(&a, &[])))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed
            .tenants
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
        [a]
    );
}
