//! The load test: concurrent random transfers, pendings, posts, voids, expiries, reversals,
//! batches and idempotent replays, then the auditor over the database they leave; once with
//! concurrent single-operation calls coalesced into shared transactions (the default), once
//! with each call its own transaction.
//!
//! Small by default so CI runs it; `PHOENIX_LEDGER_LOAD_OPS=20000 cargo phoenix test -p
//! phoenix-ledger --test load` runs it large. `PHOENIX_LEDGER_LOAD_WORKERS` sets the concurrency.

mod support;

use std::sync::Arc;

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use rand::Rng;
use rand::seq::IndexedRandom;
use support::{Harness, key, spec};
use tokio::sync::Mutex;
use tonic::Code;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Requests already answered, to replay with their key and compare.
#[derive(Default)]
struct Answered {
    transfers: Vec<(pb::CreateTransferRequest, pb::CreateTransferResponse)>,
    pendings: Vec<String>,
    posted: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_coalesced_operations_leaves_every_invariant_intact() {
    // A wide window, so that groups of several calls form even on a slow machine.
    storm("--coalesce-window=5ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_operations_each_in_its_own_transaction_leaves_every_invariant_intact() {
    storm("--coalesce-window=0").await;
}

async fn storm(coalescing: &str) {
    let operations = setting("PHOENIX_LEDGER_LOAD_OPS", 600);
    let workers = setting("PHOENIX_LEDGER_LOAD_WORKERS", 8);
    let service = phoenix_testkit::spawn_with(phoenix_ledger::spec(), |config| {
        config.service_args = vec![coalescing.to_owned()];
    })
    .await;
    let mut h = Harness::on(service).await;
    let mut policies = h.policies.clone();
    policies
        .set_policy(pb::SetPolicyRequest {
            tenant_id: h.tenant.clone(),
            kind: pb::PolicyKind::MaxTransferAmount.into(),
            asset_code: String::new(),
            limit: 400,
            idempotency_key: key(),
        })
        .await
        .expect("policy");
    let mut wallets = Vec::new();
    for user in 0..12 {
        let (_, wallet) = h.funded_wallet(&format!("user-{user}"), 300).await;
        wallets.push(wallet);
    }
    let wallets = Arc::new(wallets);
    let stock = StockServiceClient::new(h.service.channel.clone());
    let skus: Vec<String> = (0..3).map(|i| format!("SKU-{i}")).collect();
    for sku in &skus {
        stock
            .clone()
            .create_inventory_item(pb::CreateInventoryItemRequest {
                tenant_id: h.tenant.clone(),
                sku: sku.clone(),
                name: sku.clone(),
                on_hand: 40,
                idempotency_key: key(),
            })
            .await
            .expect("item");
    }
    let skus = Arc::new(skus);
    let answered = Arc::new(Mutex::new(Answered::default()));
    let tenant = h.tenant.clone();

    let tasks = (0..workers).map(|_| {
        let mut ledger = h.ledger.clone();
        let mut stock = stock.clone();
        let skus = skus.clone();
        let wallets = wallets.clone();
        let answered = answered.clone();
        let tenant = tenant.clone();
        let per_worker = operations / workers;
        tokio::spawn(async move {
            let mut replays = 0;
            for _ in 0..per_worker {
                let roll = rand::rng().random_range(0..100);
                let (debit, credit, amount) = {
                    let mut rng = rand::rng();
                    let pair: Vec<&String> = wallets.choose_multiple(&mut rng, 2).collect();
                    (pair[0].clone(), pair[1].clone(), rng.random_range(1..450))
                };
                match roll {
                    0..35 => {
                        let request = pb::CreateTransferRequest {
                            tenant_id: tenant.clone(),
                            transfer: Some(spec(&debit, &credit, amount)),
                            idempotency_key: key(),
                        };
                        if let Ok(response) = ledger.create_transfer(request.clone()).await {
                            let response = response.into_inner();
                            answered
                                .lock()
                                .await
                                .posted
                                .push(response.transfer.as_ref().expect("t").id.clone());
                            answered.lock().await.transfers.push((request, response));
                        }
                    }
                    35..50 => {
                        let timeout = rand::rng().random_bool(0.5).then(|| prost_types::Duration {
                            seconds: 0,
                            nanos: rand::rng().random_range(50..900) * 1_000_000,
                        });
                        let request = pb::CreateTransferRequest {
                            tenant_id: tenant.clone(),
                            transfer: Some(pb::TransferSpec {
                                pending: true,
                                timeout,
                                ..spec(&debit, &credit, amount)
                            }),
                            idempotency_key: key(),
                        };
                        if let Ok(response) = ledger.create_transfer(request).await {
                            let id = response.into_inner().transfer.expect("t").id;
                            answered.lock().await.pendings.push(id);
                        }
                    }
                    50..70 => {
                        let pending = answered
                            .lock()
                            .await
                            .pendings
                            .choose(&mut rand::rng())
                            .cloned();
                        if let Some(pending_id) = pending {
                            let result = if roll < 60 {
                                ledger
                                    .post_pending_transfer(pb::PostPendingTransferRequest {
                                        tenant_id: tenant.clone(),
                                        pending_id,
                                        amount: 0,
                                        idempotency_key: key(),
                                    })
                                    .await
                                    .map(|_| ())
                            } else {
                                ledger
                                    .void_pending_transfer(pb::VoidPendingTransferRequest {
                                        tenant_id: tenant.clone(),
                                        pending_id,
                                        idempotency_key: key(),
                                    })
                                    .await
                                    .map(|_| ())
                            };
                            if let Err(status) = result {
                                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                            }
                        }
                    }
                    70..82 => {
                        let previous = answered
                            .lock()
                            .await
                            .transfers
                            .choose(&mut rand::rng())
                            .cloned();
                        if let Some((request, response)) = previous {
                            let replay = ledger
                                .create_transfer(request)
                                .await
                                .expect("a replay is answered");
                            assert_eq!(
                                replay.into_inner(),
                                response,
                                "a replay returns the first answer"
                            );
                            replays += 1;
                        }
                    }
                    82..86 => {
                        let sku = skus.choose(&mut rand::rng()).expect("skus").clone();
                        let quantity = rand::rng().random_range(1..4);
                        let reserved = stock
                            .reserve_stock(pb::ReserveStockRequest {
                                tenant_id: tenant.clone(),
                                sku,
                                quantity,
                                expected_version: None,
                                ttl: Some(prost_types::Duration {
                                    seconds: 1,
                                    nanos: 0,
                                }),
                                reference: String::new(),
                                idempotency_key: key(),
                            })
                            .await;
                        match reserved {
                            Ok(response) => {
                                let id = response.into_inner().reservation.expect("r").id;
                                if roll == 82 {
                                    continue; // left to expire
                                }
                                let resolved = if roll == 83 {
                                    stock
                                        .release_reservation(pb::ReleaseReservationRequest {
                                            tenant_id: tenant.clone(),
                                            reservation_id: id,
                                            idempotency_key: key(),
                                        })
                                        .await
                                        .map(|_| ())
                                } else {
                                    stock
                                        .commit_reservation(pb::CommitReservationRequest {
                                            tenant_id: tenant.clone(),
                                            reservation_id: id,
                                            idempotency_key: key(),
                                        })
                                        .await
                                        .map(|_| ())
                                };
                                if let Err(status) = resolved {
                                    assert_eq!(
                                        status.code(),
                                        Code::FailedPrecondition,
                                        "{status:?}"
                                    );
                                }
                            }
                            Err(status) => {
                                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}")
                            }
                        }
                    }
                    86..88 => {
                        let original = answered
                            .lock()
                            .await
                            .posted
                            .choose(&mut rand::rng())
                            .cloned();
                        if let Some(transfer_id) = original {
                            let result = ledger
                                .reverse_transfer(pb::ReverseTransferRequest {
                                    tenant_id: tenant.clone(),
                                    transfer_id,
                                    amount: 0,
                                    code: String::new(),
                                    idempotency_key: key(),
                                })
                                .await;
                            if let Err(status) = result {
                                assert_ne!(status.code(), Code::Internal, "{status:?}");
                            }
                        }
                    }
                    _ => {
                        let mode = if roll < 94 {
                            pb::BatchMode::Independent
                        } else {
                            pb::BatchMode::Linked
                        };
                        let transfers = (0..10)
                            .map(|_| {
                                let mut rng = rand::rng();
                                let pair: Vec<&String> =
                                    wallets.choose_multiple(&mut rng, 2).collect();
                                spec(pair[0], pair[1], rng.random_range(1..100))
                            })
                            .collect();
                        let result = ledger
                            .create_transfers(pb::CreateTransfersRequest {
                                tenant_id: tenant.clone(),
                                transfers,
                                mode: mode.into(),
                                idempotency_key: key(),
                            })
                            .await;
                        if let Err(status) = result {
                            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                        }
                    }
                }
            }
            replays
        })
    });
    let replays: usize = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("worker"))
        .sum();
    // Let the sweeper release the pendings whose timeout passed.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;

    let report = phoenix_ledger::audit::run(&h.service.pool)
        .await
        .expect("audit ran");
    println!(
        "{operations} operations, {replays} replays\n{}",
        report.render()
    );
    assert_eq!(report.violations(), 0, "{}", report.render());
    let transfers = support::count(&h.service.pool, "transfers").await;
    assert!(
        transfers > i64::try_from(operations / 4).unwrap_or(0),
        "the storm moved money: {transfers}"
    );
    let expired = support::count(&h.service.pool, "transfers WHERE kind = 'EXPIRE_PENDING'").await;
    assert!(expired > 0, "some pendings expired");
    // Sanity: the auditor does find a broken invariant.
    sqlx::query("UPDATE accounts SET credits_pending = credits_pending + 1 WHERE id = $1::uuid")
        .bind(&wallets[0])
        .execute(&h.service.pool)
        .await
        .expect("corrupt");
    let broken = phoenix_ledger::audit::run(&h.service.pool)
        .await
        .expect("audit ran");
    assert!(broken.violations() >= 1, "{}", broken.render());
}
