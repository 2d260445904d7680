//! How the ledger refuses bad requests: every bad field at once, each with its own reason, the
//! specific reason in ErrorInfo, and errors that stay small whatever the caller sent.

mod support;

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::firebase_import_service_client::FirebaseImportServiceClient;
use phoenix_testkit::{assert_refused, field_reasons, fields};
use support::{Harness, key, spec};
use tonic::Code;

/// Owned (field, reason) pairs, to compare with what a status lists.
fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(field, reason)| ((*field).to_owned(), (*reason).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_tenant_without_slug_and_key_is_refused_for_both_at_once() {
    let mut h = Harness::start().await;
    let refused = h
        .ledger
        .create_tenant(pb::CreateTenantRequest {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect_err("no slug, no key");
    assert_refused(&refused, Code::InvalidArgument, "INVALID_SLUG");
    assert_eq!(
        field_reasons(&refused),
        pairs(&[
            ("slug", "INVALID_SLUG"),
            ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED")
        ])
    );
}

#[tokio::test]
async fn batch_reasons_reach_error_info() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let batch =
        |transfers: Vec<pb::TransferSpec>, mode: pb::BatchMode| pb::CreateTransfersRequest {
            tenant_id: h.tenant.clone(),
            transfers,
            mode: mode.into(),
            idempotency_key: key(),
        };

    let empty = h
        .ledger
        .create_transfers(batch(Vec::new(), pb::BatchMode::Linked))
        .await
        .expect_err("empty");
    assert_refused(&empty, Code::InvalidArgument, "INVALID_BATCH_SIZE");
    assert_eq!(fields(&empty), ["transfers"]);

    let no_mode = h
        .ledger
        .create_transfers(batch(
            vec![spec(&issuer, &wallet, 1)],
            pb::BatchMode::Unspecified,
        ))
        .await
        .expect_err("no mode");
    assert_refused(&no_mode, Code::InvalidArgument, "BATCH_MODE_REQUIRED");
    assert_eq!(fields(&no_mode), ["mode"]);

    let zero = h
        .ledger
        .create_transfers(batch(
            vec![spec(&issuer, &wallet, 1), spec(&issuer, &wallet, 0)],
            pb::BatchMode::Linked,
        ))
        .await
        .expect_err("a zero amount");
    assert_refused(&zero, Code::InvalidArgument, "INVALID_AMOUNT");
    assert_eq!(fields(&zero), ["transfers[1].amount"]);
    assert_eq!(
        phoenix_testkit::metadata(&zero, "index").as_deref(),
        Some("1")
    );

    let negative = h
        .ledger
        .post_pending_transfer(pb::PostPendingTransferRequest {
            tenant_id: h.tenant.clone(),
            pending_id: uuid::Uuid::now_v7().to_string(),
            amount: -1,
            idempotency_key: key(),
        })
        .await
        .expect_err("a negative amount");
    assert_refused(&negative, Code::InvalidArgument, "INVALID_AMOUNT");
    assert_eq!(fields(&negative), ["amount"]);
}

/// Bytes of the details trailer a status would carry (before base64).
const MAX_DETAILS: usize = 4 * 1024;

#[tokio::test]
async fn huge_invalid_ids_give_small_errors_that_name_the_field() {
    let mut h = Harness::start().await;
    let huge = "x".repeat(20_000);

    let account = h
        .ledger
        .get_account(pb::GetAccountRequest {
            tenant_id: h.tenant.clone(),
            account_id: huge.clone(),
        })
        .await
        .expect_err("not a uuid");
    let tenant = h
        .ledger
        .get_tenant(pb::GetTenantRequest {
            tenant_id: huge.clone(),
        })
        .await
        .expect_err("not a uuid");
    for (status, field) in [(&account, "account_id"), (&tenant, "tenant_id")] {
        assert_refused(status, Code::InvalidArgument, "INVALID_ID");
        assert_eq!(fields(status), [field]);
        assert!(
            status.details().len() < MAX_DETAILS,
            "{} bytes of details",
            status.details().len()
        );
        assert!(
            status.message().len() < 1024,
            "{} bytes of message",
            status.message().len()
        );
        assert!(
            status.message().contains("20000 characters"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn a_bad_transfer_lists_every_field_with_its_key() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let transfers = support::count(&h.service.pool, "transfers").await;
    let bad = pb::TransferSpec {
        code: "c".repeat(100),
        metadata: [(String::new(), "v".to_owned())].into(),
        timeout: Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        ..spec(&issuer, &wallet, 0)
    };

    let refused = h
        .ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(bad.clone()),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("four bad fields and no key");
    assert_refused(&refused, Code::InvalidArgument, "INVALID_AMOUNT");
    assert_eq!(
        field_reasons(&refused),
        pairs(&[
            ("transfer.amount", "INVALID_AMOUNT"),
            ("transfer.timeout", "TIMEOUT_WITHOUT_PENDING"),
            ("transfer.code", "INVALID_CODE"),
            ("transfer.metadata", "INVALID_METADATA"),
            ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED"),
        ])
    );

    let dry_run = h
        .policies
        .validate_transfer(pb::ValidateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(pb::TransferSpec {
                credit_account_id: issuer.clone(),
                ..bad
            }),
        })
        .await
        .expect_err("a dry run of a malformed transfer");
    assert_refused(&dry_run, Code::InvalidArgument, "INVALID_AMOUNT");
    assert_eq!(
        field_reasons(&dry_run),
        pairs(&[
            ("transfer.amount", "INVALID_AMOUNT"),
            ("transfer.credit_account_id", "SAME_ACCOUNT"),
            ("transfer.timeout", "TIMEOUT_WITHOUT_PENDING"),
            ("transfer.code", "INVALID_CODE"),
            ("transfer.metadata", "INVALID_METADATA"),
        ])
    );

    let pending_too_long = h
        .ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer: Some(pb::TransferSpec {
                pending: true,
                timeout: Some(prost_types::Duration {
                    seconds: 400 * 24 * 3600,
                    nanos: 0,
                }),
                ..spec("nope", &wallet, -1)
            }),
            idempotency_key: "has space".into(),
        })
        .await
        .expect_err("a malformed id, a negative amount, a year-long timeout, a bad key");
    assert_refused(&pending_too_long, Code::InvalidArgument, "INVALID_ID");
    assert_eq!(
        field_reasons(&pending_too_long),
        pairs(&[
            ("transfer.debit_account_id", "INVALID_ID"),
            ("transfer.amount", "INVALID_AMOUNT"),
            ("transfer.timeout", "INVALID_TIMEOUT"),
            ("idempotency_key", "INVALID_IDEMPOTENCY_KEY"),
        ])
    );
    assert_eq!(
        support::count(&h.service.pool, "transfers").await,
        transfers
    );
}

#[tokio::test]
async fn a_batch_lists_every_bad_transfer_with_its_key() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let transfers = support::count(&h.service.pool, "transfers").await;
    let mut batch = vec![spec(&issuer, &wallet, 1); 7];
    batch[2].amount = 0;
    batch[5].code = "\u{7}bell".into();
    batch[5].credit_account_id = issuer.clone();

    for mode in [pb::BatchMode::Linked, pb::BatchMode::Independent] {
        let refused = h
            .ledger
            .create_transfers(pb::CreateTransfersRequest {
                tenant_id: h.tenant.clone(),
                transfers: batch.clone(),
                mode: mode.into(),
                idempotency_key: String::new(),
            })
            .await
            .expect_err("transfers 2 and 5 are malformed");
        assert_refused(&refused, Code::InvalidArgument, "INVALID_AMOUNT");
        assert_eq!(
            field_reasons(&refused),
            pairs(&[
                ("transfers[2].amount", "INVALID_AMOUNT"),
                ("transfers[5].credit_account_id", "SAME_ACCOUNT"),
                ("transfers[5].code", "INVALID_CODE"),
                ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED"),
            ]),
            "{mode:?}"
        );
        assert_eq!(
            phoenix_testkit::metadata(&refused, "index").as_deref(),
            Some("2"),
            "the first transfer at fault"
        );
    }
    assert_eq!(
        support::count(&h.service.pool, "transfers").await,
        transfers
    );
}

#[tokio::test]
async fn a_reversal_lists_its_code_with_its_key() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let posted = h.transfer(&wallet, &issuer, 4).await.expect("posted");
    let refused = h
        .ledger
        .reverse_transfer(pb::ReverseTransferRequest {
            tenant_id: h.tenant.clone(),
            transfer_id: posted.id,
            amount: -1,
            code: "x".repeat(65),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("a bad amount, a long code, no key");
    assert_refused(&refused, Code::InvalidArgument, "INVALID_AMOUNT");
    assert_eq!(
        field_reasons(&refused),
        pairs(&[
            ("amount", "INVALID_AMOUNT"),
            ("code", "INVALID_CODE"),
            ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED"),
        ])
    );
    assert_eq!(h.balance(&wallet).await.posted, 6);
}

#[tokio::test]
async fn an_import_call_lists_every_bad_record() {
    let h = Harness::start().await;
    let mut import = FirebaseImportServiceClient::new(h.service.channel.clone());
    let batch = h.import_batch().await;
    let line = |line_number: i64, content| pb::ImportRecord {
        source_file: "events.ndjson".into(),
        line_number,
        content,
        cut_from_bytes: 0,
    };
    let ndjson = Some(pb::import_record::Content::NdjsonLine(b"{}".to_vec()));
    let refused = import
        .import_records(pb::ImportRecordsRequest {
            tenant_id: h.tenant.clone(),
            batch_id: batch,
            records: vec![line(1, ndjson.clone()), line(2, None), line(-3, ndjson)],
            idempotency_key: String::new(),
        })
        .await
        .expect_err("a record without content, a negative line, no key");
    assert_refused(&refused, Code::InvalidArgument, "NO_CONTENT");
    assert_eq!(
        field_reasons(&refused),
        pairs(&[
            ("records[1].content", "NO_CONTENT"),
            ("records[2].line_number", "INVALID_LINE_NUMBER"),
            ("idempotency_key", "IDEMPOTENCY_KEY_REQUIRED"),
        ])
    );
    assert_eq!(
        support::count(&h.service.pool, "import_quarantine").await,
        0
    );
}

#[tokio::test]
async fn a_bad_max_count_is_reported_as_max_count() {
    let mut h = Harness::start().await;
    let (_, wallet) = h.funded_wallet("user-1", 10).await;
    for max_count in [-1, 1001] {
        let refused = h
            .events
            .read_stream(pb::ReadStreamRequest {
                tenant_id: h.tenant.clone(),
                aggregate_type: "account".into(),
                aggregate_id: wallet.clone(),
                from_version: -1,
                max_count,
            })
            .await
            .expect_err("out of range");
        assert_refused(&refused, Code::InvalidArgument, "INVALID_VERSION");
        assert_eq!(
            field_reasons(&refused),
            pairs(&[
                ("from_version", "INVALID_VERSION"),
                ("max_count", "INVALID_PAGE_SIZE")
            ]),
            "{max_count}"
        );
    }
    let read = h
        .events
        .read_stream(pb::ReadStreamRequest {
            tenant_id: h.tenant.clone(),
            aggregate_type: "account".into(),
            aggregate_id: wallet,
            from_version: 0,
            max_count: 1,
        })
        .await
        .expect("one event")
        .into_inner();
    assert_eq!(read.events.len(), 1);
}

#[tokio::test]
async fn echoed_values_are_quoted_and_cut() {
    let mut h = Harness::start().await;
    let owner = "o".repeat(200);
    let request = pb::CreateAccountRequest {
        tenant_id: h.tenant.clone(),
        asset_code: "BESITOS".into(),
        asset_scale: 0,
        owner_ref: owner.clone(),
        kind: "k".repeat(40),
        balance_limit: pb::BalanceLimit::None.into(),
        metadata: Default::default(),
        idempotency_key: key(),
    };
    h.ledger
        .create_account(request.clone())
        .await
        .expect("opened");
    let taken = h
        .ledger
        .create_account(pb::CreateAccountRequest {
            idempotency_key: key(),
            ..request
        })
        .await
        .expect_err("the same owner, asset and kind");
    assert_refused(&taken, Code::AlreadyExists, "ACCOUNT_EXISTS");
    let echoed = phoenix_testkit::metadata(&taken, "owner_ref").expect("owner_ref");
    assert!(
        echoed.chars().count() <= 65 && owner.starts_with(echoed.trim_end_matches('…')),
        "{echoed}"
    );
    assert_eq!(
        phoenix_testkit::metadata(&taken, "kind").as_deref(),
        Some("k".repeat(40).as_str()),
        "a short value is echoed whole"
    );
    assert!(
        taken.message().contains("(200 characters)"),
        "{}",
        taken.message()
    );
    assert!(!taken.message().contains(&owner), "{}", taken.message());
}
