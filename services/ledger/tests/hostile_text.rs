//! Every text field of every ledger request, sent a NUL and then 20,000 characters: each is
//! INVALID_ARGUMENT naming the field, with small details, and nothing is written (PostgreSQL's
//! text and jsonb cannot hold a NUL; such a value must never reach them and come back as
//! INTERNAL). Record *content* of the import is the exception the contract makes: it is
//! quarantined, never refused.

mod support;

use std::future::Future;

use futures_util::future::BoxFuture;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::firebase_import_service_client::FirebaseImportServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_testkit::{assert_refused, fields};
use support::{Harness, count, key, spec};
use tonic::Code;

/// A call of `$method` on a clone of `$client`, with the request `$request` makes of the value.
macro_rules! call {
    ($client:expr, $method:ident, $request:expr) => {{
        let client = $client.clone();
        move |v: String| {
            let mut client = client.clone();
            let request = $request(v);
            async move { client.$method(request).await }
        }
    }};
}

/// One field of one request: its path, the reason a NUL and a huge value get, and the call
/// that sends a request with that value in the field and valid others.
struct Case {
    rpc: &'static str,
    field: &'static str,
    nul: &'static str,
    huge: &'static str,
    call: Box<dyn Fn(String) -> BoxFuture<'static, Result<(), tonic::Status>>>,
}

fn case<F, Fut, T>(
    rpc: &'static str,
    field: &'static str,
    reasons: (&'static str, &'static str),
    call: F,
) -> Case
where
    F: Fn(String) -> Fut + 'static,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
{
    Case {
        rpc,
        field,
        nul: reasons.0,
        huge: reasons.1,
        call: Box::new(move |value| {
            let answer = call(value);
            Box::pin(async move { answer.await.map(|_| ()) })
        }),
    }
}

/// `value` once `edit` changed it.
fn edited<T>(mut value: T, edit: impl FnOnce(&mut T)) -> T {
    edit(&mut value);
    value
}

/// A value the whole test can copy into its requests.
fn leak(value: String) -> &'static str {
    Box::leak(value.into_boxed_str())
}

/// Every reason for both values.
fn both(reason: &'static str) -> (&'static str, &'static str) {
    (reason, reason)
}

/// Rows of every table a ledger call may write.
async fn written(pool: &sqlx::PgPool) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "tenants",
        "assets",
        "accounts",
        "transfers",
        "entries",
        "policies",
        "request_keys",
        "events",
        "inventory_items",
        "reservations",
        "holdings",
        "import_batches",
        "import_batch_sources",
        "import_quarantine",
    ] {
        counts.push(count(pool, table).await);
    }
    counts
}

/// A text field of a message: its name, the reason a bad value gets, and how to put one there.
type Field<M> = (&'static str, &'static str, fn(&mut M, String));

/// The text fields of a transfer.
fn transfer_fields() -> [Field<pb::TransferSpec>; 5] {
    [
        ("debit_account_id", "INVALID_ID", |t, v| {
            t.debit_account_id = v
        }),
        ("credit_account_id", "INVALID_ID", |t, v| {
            t.credit_account_id = v
        }),
        ("code", "INVALID_CODE", |t, v| t.code = v),
        ("metadata", "INVALID_METADATA", |t, v| {
            t.metadata = [("k".into(), v)].into()
        }),
        ("metadata", "INVALID_METADATA", |t, v| {
            t.metadata = [(v, "v".into())].into()
        }),
    ]
}

/// The text fields of a new account.
fn account_fields() -> [Field<pb::CreateAccountRequest>; 5] {
    [
        ("asset_code", "INVALID_ASSET_CODE", |r, v| r.asset_code = v),
        ("owner_ref", "INVALID_OWNER_REF", |r, v| r.owner_ref = v),
        ("kind", "INVALID_KIND", |r, v| r.kind = v),
        ("metadata", "INVALID_METADATA", |r, v| {
            r.metadata = [("k".into(), v)].into()
        }),
        ("metadata", "INVALID_METADATA", |r, v| {
            r.metadata = [(v, "v".into())].into()
        }),
    ]
}

/// The cases of LedgerService.
fn ledger_cases(h: &Harness, wallet: &'static str, issuer: &'static str) -> Vec<Case> {
    let tenant = leak(h.tenant.clone());
    let c = h.ledger.clone();
    let account = move || pb::CreateAccountRequest {
        tenant_id: tenant.into(),
        asset_code: "GEMS".into(),
        asset_scale: 0,
        owner_ref: "user-9".into(),
        kind: "wallet".into(),
        balance_limit: pb::BalanceLimit::None.into(),
        metadata: Default::default(),
        idempotency_key: key(),
    };
    let transfer = move || spec(wallet, issuer, 1);
    let mut cases = vec![
        case(
            "CreateTenant",
            "slug",
            both("INVALID_SLUG"),
            call!(c, create_tenant, |v| pb::CreateTenantRequest {
                slug: v,
                name: "N".into(),
                idempotency_key: key(),
            }),
        ),
        case(
            "CreateTenant",
            "name",
            both("INVALID_NAME"),
            call!(c, create_tenant, |v| pb::CreateTenantRequest {
                slug: "new-tenant".into(),
                name: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "CreateTenant",
            "idempotency_key",
            both("INVALID_IDEMPOTENCY_KEY"),
            call!(c, create_tenant, |v| pb::CreateTenantRequest {
                slug: "new-tenant".into(),
                name: "N".into(),
                idempotency_key: v,
            }),
        ),
        case(
            "GetTenant",
            "tenant_id",
            both("INVALID_ID"),
            call!(c, get_tenant, |v| pb::GetTenantRequest { tenant_id: v }),
        ),
        case(
            "ListTenants",
            "page_token",
            both("INVALID_PAGE_TOKEN"),
            call!(c, list_tenants, |v| pb::ListTenantsRequest {
                page_size: 0,
                page_token: v,
            }),
        ),
        case(
            "GetAccount",
            "account_id",
            both("INVALID_ID"),
            call!(c, get_account, |v| pb::GetAccountRequest {
                tenant_id: tenant.into(),
                account_id: v,
            }),
        ),
        case(
            "ListAccounts",
            "owner_ref",
            both("INVALID_OWNER_REF"),
            call!(c, list_accounts, |v| pb::ListAccountsRequest {
                tenant_id: tenant.into(),
                owner_ref: v,
            }),
        ),
        case(
            "CreateTransfer",
            "idempotency_key",
            both("INVALID_IDEMPOTENCY_KEY"),
            call!(c, create_transfer, |v| pb::CreateTransferRequest {
                tenant_id: tenant.into(),
                transfer: Some(transfer()),
                idempotency_key: v,
            }),
        ),
        case(
            "PostPendingTransfer",
            "pending_id",
            both("INVALID_ID"),
            call!(c, post_pending_transfer, |v| {
                pb::PostPendingTransferRequest {
                    tenant_id: tenant.into(),
                    pending_id: v,
                    amount: 0,
                    idempotency_key: key(),
                }
            }),
        ),
        case(
            "VoidPendingTransfer",
            "pending_id",
            both("INVALID_ID"),
            call!(c, void_pending_transfer, |v| {
                pb::VoidPendingTransferRequest {
                    tenant_id: tenant.into(),
                    pending_id: v,
                    idempotency_key: key(),
                }
            }),
        ),
        case(
            "ReverseTransfer",
            "transfer_id",
            both("INVALID_ID"),
            call!(c, reverse_transfer, |v| pb::ReverseTransferRequest {
                tenant_id: tenant.into(),
                transfer_id: v,
                amount: 0,
                code: String::new(),
                idempotency_key: key(),
            }),
        ),
        case(
            "ReverseTransfer",
            "code",
            both("INVALID_CODE"),
            call!(c, reverse_transfer, |v| pb::ReverseTransferRequest {
                tenant_id: tenant.into(),
                transfer_id: uuid::Uuid::now_v7().to_string(),
                amount: 0,
                code: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "GetTransfer",
            "transfer_id",
            both("INVALID_ID"),
            call!(c, get_transfer, |v| pb::GetTransferRequest {
                tenant_id: tenant.into(),
                transfer_id: v,
            }),
        ),
        case(
            "ListAccountEntries",
            "account_id",
            both("INVALID_ID"),
            call!(c, list_account_entries, |v| pb::ListAccountEntriesRequest {
                tenant_id: tenant.into(),
                account_id: v,
                page_size: 0,
                page_token: String::new(),
            }),
        ),
        case(
            "ListAccountEntries",
            "page_token",
            both("INVALID_PAGE_TOKEN"),
            call!(c, list_account_entries, |v| pb::ListAccountEntriesRequest {
                tenant_id: tenant.into(),
                account_id: wallet.into(),
                page_size: 0,
                page_token: v,
            }),
        ),
        case(
            "GetBalanceAt",
            "account_id",
            both("INVALID_ID"),
            call!(c, get_balance_at, |v| pb::GetBalanceAtRequest {
                tenant_id: tenant.into(),
                account_id: v,
                time: Some(prost_types::Timestamp::default()),
            }),
        ),
    ];
    for (name, reason, edit) in account_fields() {
        cases.push(case(
            "CreateAccount",
            name,
            both(reason),
            call!(c, create_account, move |v| edited(account(), |r| edit(
                r, v
            ))),
        ));
    }
    for (name, reason, edit) in transfer_fields() {
        cases.push(case(
            "CreateTransfer",
            leak(format!("transfer.{name}")),
            both(reason),
            call!(c, create_transfer, move |v| pb::CreateTransferRequest {
                tenant_id: tenant.into(),
                transfer: Some(edited(transfer(), |t| edit(t, v))),
                idempotency_key: key(),
            }),
        ));
        cases.push(case(
            "CreateTransfers",
            leak(format!("transfers[1].{name}")),
            both(reason),
            call!(c, create_transfers, move |v| pb::CreateTransfersRequest {
                tenant_id: tenant.into(),
                transfers: vec![transfer(), edited(transfer(), |t| edit(t, v))],
                mode: pb::BatchMode::Linked.into(),
                idempotency_key: key(),
            }),
        ));
    }
    cases
}

/// The cases of PolicyService and EventStoreService.
fn governance_and_event_cases(
    h: &Harness,
    wallet: &'static str,
    issuer: &'static str,
) -> Vec<Case> {
    let tenant = leak(h.tenant.clone());
    let p = h.policies.clone();
    let e = h.events.clone();
    let read = |aggregate_type: String, aggregate_id: String| pb::ReadStreamRequest {
        tenant_id: tenant.into(),
        aggregate_type,
        aggregate_id,
        from_version: 0,
        max_count: 0,
    };
    let mut cases = vec![
        case(
            "SetPolicy",
            "asset_code",
            both("INVALID_ASSET_CODE"),
            call!(p, set_policy, |v| pb::SetPolicyRequest {
                tenant_id: tenant.into(),
                kind: pb::PolicyKind::MaxTransferAmount.into(),
                asset_code: v,
                limit: 10,
                idempotency_key: key(),
            }),
        ),
        case(
            "DisablePolicy",
            "policy_id",
            both("INVALID_ID"),
            call!(p, disable_policy, |v| pb::DisablePolicyRequest {
                tenant_id: tenant.into(),
                policy_id: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "ListActivePolicies",
            "tenant_id",
            both("INVALID_ID"),
            call!(p, list_active_policies, |v| pb::ListActivePoliciesRequest {
                tenant_id: v
            }),
        ),
        case(
            "ReadStream",
            "aggregate_type",
            ("CONTROL_CHARACTER", "TOO_LONG"),
            call!(e, read_stream, |v| read(v, wallet.into())),
        ),
        case(
            "ReadStream",
            "aggregate_id",
            ("CONTROL_CHARACTER", "TOO_LONG"),
            call!(e, read_stream, |v| read("account".into(), v)),
        ),
        case(
            "Subscribe",
            "tenant_id",
            both("INVALID_ID"),
            call!(e, subscribe, |v| pb::SubscribeRequest {
                tenant_id: v,
                after_position: 0,
            }),
        ),
        case(
            "RehydrateAccount",
            "account_id",
            both("INVALID_ID"),
            call!(e, rehydrate_account, |v| pb::RehydrateAccountRequest {
                tenant_id: tenant.into(),
                account_id: v,
            }),
        ),
    ];
    for (name, reason, edit) in transfer_fields() {
        cases.push(case(
            "ValidateTransfer",
            leak(format!("transfer.{name}")),
            both(reason),
            call!(p, validate_transfer, move |v| pb::ValidateTransferRequest {
                tenant_id: tenant.into(),
                transfer: Some(edited(spec(wallet, issuer, 1), |t| edit(t, v))),
            }),
        ));
    }
    cases
}

/// The cases of StockService.
fn stock_cases(h: &Harness) -> Vec<Case> {
    let tenant = leak(h.tenant.clone());
    let s = StockServiceClient::new(h.service.channel.clone());
    let holding = |owner_ref: String, item_code: String| pb::AddHoldingRequest {
        tenant_id: tenant.into(),
        owner_ref,
        item_code,
        quantity: 1,
        idempotency_key: key(),
    };
    let adjust = |sku: String, reason: String| pb::AdjustInventoryRequest {
        tenant_id: tenant.into(),
        sku,
        delta: 1,
        expected_version: None,
        reason,
        idempotency_key: key(),
    };
    vec![
        case(
            "CreateInventoryItem",
            "sku",
            both("INVALID_CODE"),
            call!(s, create_inventory_item, |v| {
                pb::CreateInventoryItemRequest {
                    tenant_id: tenant.into(),
                    sku: v,
                    name: "Gem".into(),
                    on_hand: 1,
                    idempotency_key: key(),
                }
            }),
        ),
        case(
            "CreateInventoryItem",
            "name",
            both("INVALID_NAME"),
            call!(s, create_inventory_item, |v| {
                pb::CreateInventoryItemRequest {
                    tenant_id: tenant.into(),
                    sku: "SKU-2".into(),
                    name: v,
                    on_hand: 1,
                    idempotency_key: key(),
                }
            }),
        ),
        case(
            "GetInventoryItem",
            "sku",
            both("INVALID_CODE"),
            call!(s, get_inventory_item, |v| pb::GetInventoryItemRequest {
                tenant_id: tenant.into(),
                sku: v,
            }),
        ),
        case(
            "ListInventoryItems",
            "page_token",
            both("INVALID_CODE"),
            call!(s, list_inventory_items, |v| pb::ListInventoryItemsRequest {
                tenant_id: tenant.into(),
                page_size: 0,
                page_token: v,
            }),
        ),
        case(
            "AdjustInventory",
            "sku",
            both("INVALID_CODE"),
            call!(s, adjust_inventory, |v| adjust(v, String::new())),
        ),
        case(
            "AdjustInventory",
            "reason",
            both("INVALID_REASON"),
            call!(s, adjust_inventory, |v| adjust("SKU-1".into(), v)),
        ),
        case(
            "ReserveStock",
            "reference",
            both("INVALID_REFERENCE"),
            call!(s, reserve_stock, |v| pb::ReserveStockRequest {
                tenant_id: tenant.into(),
                sku: "SKU-1".into(),
                quantity: 1,
                expected_version: None,
                ttl: None,
                reference: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "ReleaseReservation",
            "reservation_id",
            both("INVALID_ID"),
            call!(s, release_reservation, |v| pb::ReleaseReservationRequest {
                tenant_id: tenant.into(),
                reservation_id: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "CommitReservation",
            "reservation_id",
            both("INVALID_ID"),
            call!(s, commit_reservation, |v| pb::CommitReservationRequest {
                tenant_id: tenant.into(),
                reservation_id: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "GetReservation",
            "reservation_id",
            both("INVALID_ID"),
            call!(s, get_reservation, |v| pb::GetReservationRequest {
                tenant_id: tenant.into(),
                reservation_id: v,
            }),
        ),
        case(
            "AddHolding",
            "owner_ref",
            both("INVALID_OWNER_REF"),
            call!(s, add_holding, |v| holding(v, "gem".into())),
        ),
        case(
            "AddHolding",
            "item_code",
            both("INVALID_CODE"),
            call!(s, add_holding, |v| holding("user-1".into(), v)),
        ),
        case(
            "RemoveHolding",
            "owner_ref",
            both("INVALID_OWNER_REF"),
            call!(s, remove_holding, |v| {
                let add = holding(v, "gem".into());
                pb::RemoveHoldingRequest {
                    tenant_id: add.tenant_id,
                    owner_ref: add.owner_ref,
                    item_code: add.item_code,
                    quantity: add.quantity,
                    idempotency_key: add.idempotency_key,
                }
            }),
        ),
        case(
            "ListHoldings",
            "owner_ref",
            both("INVALID_OWNER_REF"),
            call!(s, list_holdings, |v| pb::ListHoldingsRequest {
                tenant_id: tenant.into(),
                owner_ref: v,
            }),
        ),
    ]
}

/// The cases of FirebaseImportService, on a running batch.
fn import_cases(h: &Harness, batch: &'static str) -> Vec<Case> {
    let tenant = leak(h.tenant.clone());
    let i = FirebaseImportServiceClient::new(h.service.channel.clone());
    let records = |batch_id: String, source_file: String| pb::ImportRecordsRequest {
        tenant_id: tenant.into(),
        batch_id,
        records: vec![pb::ImportRecord {
            source_file,
            line_number: 1,
            content: Some(pb::import_record::Content::NdjsonLine(b"{}".to_vec())),
            cut_from_bytes: 0,
        }],
        idempotency_key: key(),
    };
    let checksum = "0".repeat(64);
    let finish = move |collection: String, checksum: String| pb::FinishImportBatchRequest {
        tenant_id: tenant.into(),
        batch_id: batch.into(),
        sources: vec![pb::SourceCollection {
            collection,
            document_count: 0,
            checksum,
        }],
        idempotency_key: key(),
    };
    let sum = leak(checksum);
    vec![
        case(
            "StartImportBatch",
            "source_name",
            both("INVALID_SOURCE_NAME"),
            call!(i, start_import_batch, |v| pb::StartImportBatchRequest {
                tenant_id: tenant.into(),
                source_name: v,
                idempotency_key: key(),
            }),
        ),
        case(
            "ImportRecords",
            "batch_id",
            both("INVALID_ID"),
            call!(i, import_records, |v| records(v, "export.ndjson".into())),
        ),
        case(
            "ImportRecords",
            "records[0].source_file",
            both("INVALID_SOURCE_FILE"),
            call!(i, import_records, |v| records(batch.into(), v)),
        ),
        case(
            "FinishImportBatch",
            "sources[0].collection",
            both("INVALID_COLLECTION"),
            call!(i, finish_import_batch, |v| finish(v, sum.into())),
        ),
        case(
            "FinishImportBatch",
            "sources[0].checksum",
            both("INVALID_CHECKSUM"),
            call!(i, finish_import_batch, |v| finish("campaigns".into(), v)),
        ),
        case(
            "GetImportReport",
            "page_token",
            both("INVALID_PAGE_TOKEN"),
            call!(i, get_import_report, |v| pb::GetImportReportRequest {
                tenant_id: tenant.into(),
                batch_id: batch.into(),
                page_size: 0,
                page_token: v,
            }),
        ),
    ]
}

#[tokio::test]
async fn a_nul_or_a_huge_value_in_any_text_field_is_refused_naming_it() {
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("user-1", 10).await;
    let (issuer, wallet) = (leak(issuer), leak(wallet));
    StockServiceClient::new(h.service.channel.clone())
        .create_inventory_item(pb::CreateInventoryItemRequest {
            tenant_id: h.tenant.clone(),
            sku: "SKU-1".into(),
            name: "Gem".into(),
            on_hand: 5,
            idempotency_key: key(),
        })
        .await
        .expect("an item");
    let batch = h.import_batch().await;
    let cases: Vec<Case> = [
        ledger_cases(&h, wallet, issuer),
        governance_and_event_cases(&h, wallet, issuer),
        stock_cases(&h),
        import_cases(&h, leak(batch)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let before = written(&h.service.pool).await;

    let huge = "x".repeat(20_000);
    let mut failures = Vec::new();
    for case in &cases {
        for (value, reason) in [("a\u{0}b".to_owned(), case.nul), (huge.clone(), case.huge)] {
            let what = format!(
                "{} {} with {}",
                case.rpc,
                case.field,
                if value.len() < 10 {
                    "a NUL"
                } else {
                    "20,000 characters"
                }
            );
            let status = match (case.call)(value).await {
                Ok(()) => {
                    failures.push(format!("{what}: accepted"));
                    continue;
                }
                Err(status) => status,
            };
            let seen = (
                status.code(),
                phoenix_testkit::reason(&status),
                fields(&status),
            );
            let expected = (
                Code::InvalidArgument,
                reason.to_owned(),
                vec![case.field.to_owned()],
            );
            if seen != expected {
                failures.push(format!("{what}: {seen:?}, not {expected:?}"));
                continue;
            }
            assert_refused(&status, Code::InvalidArgument, reason);
            if status.details().len() >= 4096 || status.message().len() >= 1024 {
                failures.push(format!(
                    "{what}: {} bytes of details, {} of message",
                    status.details().len(),
                    status.message().len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        written(&h.service.pool).await,
        before,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_nul_or_a_huge_value_in_a_record_is_quarantined_not_refused() {
    let h = Harness::start().await;
    let mut import = FirebaseImportServiceClient::new(h.service.channel.clone());
    let batch = h.import_batch().await;
    let huge = "x".repeat(20_000);
    let document = |collection: &str, document_id: &str, json: &str| pb::ImportRecord {
        source_file: "export.json".into(),
        line_number: 0,
        content: Some(pb::import_record::Content::Document(
            pb::FirestoreDocument {
                collection: collection.into(),
                document_id: document_id.into(),
                json: json.into(),
            },
        )),
        cut_from_bytes: 0,
    };
    let line = |text: &str| pb::ImportRecord {
        source_file: "events.ndjson".into(),
        line_number: 1,
        content: Some(pb::import_record::Content::NdjsonLine(
            text.as_bytes().to_vec(),
        )),
        cut_from_bytes: 0,
    };
    let audit = r#"{"actor": "a", "action": "b", "at": "2025-01-01T00:00:00Z"}"#;
    let records = vec![
        document("audit\u{0}logs", "a1", audit),
        document(&huge, "a2", audit),
        document("audit_logs", "a\u{0}3", audit),
        document("audit_logs", &huge, audit),
        document("audit_logs", "a5", "{\"actor\": \"a\u{0}\"}"),
        document(
            "audit_logs",
            "a6",
            r#"{"actor": "a\u0000", "action": "b", "at": "2025-01-01T00:00:00Z"}"#,
        ),
        document(
            "audit_logs",
            "a7",
            &format!(r#"{{"actor": "{huge}", "action": "b", "at": "2025-01-01T00:00:00Z"}}"#),
        ),
        document(
            "audit_logs",
            "a8",
            &format!(r#"{{"actor": "a", "action": "b", "at": "{huge}"}}"#),
        ),
        line("{\"collection\": \"audit_logs\", \"id\": \"a\u{0}9\"}"),
        line(&huge),
    ];
    let answer = import
        .import_records(pb::ImportRecordsRequest {
            tenant_id: h.tenant.clone(),
            batch_id: batch,
            records,
            idempotency_key: key(),
        })
        .await
        .expect("content is quarantined, never refused")
        .into_inner();
    let reasons: Vec<&str> = answer.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "UNKNOWN_COLLECTION",
            "UNKNOWN_COLLECTION",
            "INVALID_ID",
            "INVALID_ID",
            "MALFORMED_JSON",
            "INVALID_VALUE",
            "INVALID_VALUE",
            "INVALID_VALUE",
            "MALFORMED_JSON",
            "MALFORMED_JSON",
        ]
    );
    for rejected in &answer.rejected {
        assert!(
            rejected.message.chars().count() < 300,
            "{}: {} characters of message",
            rejected.reason,
            rejected.message.chars().count()
        );
        assert!(rejected.raw_excerpt.chars().count() <= 200);
    }
    assert_eq!(answer.inserted_count, 0);
    assert_eq!(count(&h.service.pool, "import_quarantine").await, 10);
}
