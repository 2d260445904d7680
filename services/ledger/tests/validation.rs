//! How the ledger refuses bad requests: every bad field at once, each with its own reason, the
//! specific reason in ErrorInfo, and errors that stay small whatever the caller sent.

mod support;

use phoenix_proto::ledger::v1 as pb;
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
