//! `phoenix bench ledger`: single transfers over gRPC from N concurrent clients, the same
//! double-entry write straight through SQL (the floor: the same store function, no gRPC), and
//! batches of linked transfers. Prints throughput and latency, then one machine-readable line.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_runtime::bench::{Phase, drive};
use phoenix_runtime::idempotency::RequestKey;
use rand::Rng;
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::app::Ledger;
use crate::app::posting::Located;
use crate::config::LedgerSettings;
use crate::domain::ledger::{Linking, Operation, TransferSpec};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent clients of the single-transfer phases.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Length of each measured phase.
    #[arg(long, default_value = "15s", value_parser = phoenix_runtime::config::positive_duration)]
    pub duration: Duration,
    /// Unmeasured single transfers first, so the measured phases find connections open,
    /// statements prepared and caches warm.
    #[arg(long, default_value = "5s", value_parser = phoenix_runtime::config::positive_duration)]
    pub warmup: Duration,
    /// Transfers per batch call (at most 8,000).
    #[arg(long, default_value_t = 8_000, value_parser = clap::value_parser!(u32).range(1..=8_000))]
    pub batch_size: u32,
    /// Concurrent clients of the batch phase.
    #[arg(long, default_value_t = 2)]
    pub batch_clients: usize,
    /// Accounts the transfers move between (more accounts, fewer lock waits).
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// A running ledger service (e.g. http://127.0.0.1:50054) instead of one started here; the
    /// SQL floor then needs DATABASE_URL.
    #[arg(long)]
    pub target: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Copy)]
pub struct Results {
    pub clients: usize,
    pub grpc: Phase,
    pub sql: Option<Phase>,
    pub batch: Phase,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        let sql_tps = self.sql.map_or(0.0, |p| p.per_second());
        let ratio = if sql_tps > 0.0 {
            self.grpc.per_second() / sql_tps
        } else {
            0.0
        };
        format!(
            "ledger-bench clients={} grpc_tps={:.0} sql_tps={:.0} ratio={:.2} p50_ms={:.2} p99_ms={:.2} batch_tps={:.0} batch_ratio={:.1}",
            self.clients,
            self.grpc.per_second(),
            sql_tps,
            ratio,
            self.grpc.p50_ms,
            self.grpc.p99_ms,
            self.batch.per_second(),
            self.batch.per_second() / self.grpc.per_second().max(f64::EPSILON),
        )
    }
}

/// Runs the benchmark against `channel`, with the SQL floor on `pool` when there is one.
pub async fn run(
    channel: Channel,
    pool: Option<PgPool>,
    args: &BenchArgs,
) -> anyhow::Result<Results> {
    anyhow::ensure!(
        args.clients > 0 && args.batch_clients > 0,
        "clients must be at least 1"
    );
    anyhow::ensure!(args.accounts >= 2, "--accounts must be at least 2");
    let client = LedgerServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let (tenant, accounts) = setup(client.clone(), args.accounts).await?;
    let accounts = Arc::new(accounts);
    eprintln!(
        "bench: tenant {tenant}, {} accounts, {} clients, {:?} per phase",
        accounts.len(),
        args.clients,
        args.duration
    );

    single_transfers_over_grpc(&client, &tenant, &accounts, args.clients, args.warmup).await?;
    let grpc = single_transfers_over_grpc(&client, &tenant, &accounts, args.clients, args.duration)
        .await?;
    grpc.report("gRPC single transfers", "transfers");
    let sql = match &pool {
        Some(pool) => {
            let phase = single_transfers_over_sql(
                pool,
                tenant.clone(),
                &accounts,
                args.clients,
                args.duration,
            )
            .await?;
            phase.report("SQL floor, same write", "transfers");
            Some(phase)
        }
        None => {
            eprintln!("bench: no database to measure the SQL floor on (set DATABASE_URL)");
            None
        }
    };
    let batch = batches_over_grpc(&client, &tenant, &accounts, args).await?;
    batch.report("gRPC batches", "transfers");
    Ok(Results {
        clients: args.clients,
        grpc,
        sql,
        batch,
    })
}

async fn setup(
    mut client: LedgerServiceClient<Channel>,
    accounts: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let slug = format!("bench-{}", Uuid::now_v7().simple());
    let tenant = client
        .create_tenant(pb::CreateTenantRequest {
            slug: slug.clone(),
            name: "Benchmark".into(),
            idempotency_key: Uuid::new_v4().to_string(),
        })
        .await?
        .into_inner()
        .tenant
        .ok_or_else(|| anyhow::anyhow!("no tenant in the answer"))?
        .id;
    let mut ids = Vec::with_capacity(accounts);
    for index in 0..accounts {
        let account = client
            .create_account(pb::CreateAccountRequest {
                tenant_id: tenant.clone(),
                asset_code: "BENCH".into(),
                asset_scale: 0,
                owner_ref: format!("bench-user-{index}"),
                kind: "wallet".into(),
                // No limit: the benchmark measures writes, not refusals.
                balance_limit: pb::BalanceLimit::None.into(),
                metadata: Default::default(),
                idempotency_key: Uuid::new_v4().to_string(),
            })
            .await?
            .into_inner()
            .account
            .ok_or_else(|| anyhow::anyhow!("no account in the answer"))?;
        ids.push(account.id);
    }
    Ok((tenant, ids))
}

fn random_pair(accounts: &[String]) -> (String, String) {
    let mut rng = rand::rng();
    let debit = rng.random_range(0..accounts.len());
    let mut credit = rng.random_range(0..accounts.len() - 1);
    if credit >= debit {
        credit += 1;
    }
    (accounts[debit].clone(), accounts[credit].clone())
}

/// A transfer of a random amount between two random accounts.
fn random_transfer(accounts: &[String]) -> pb::TransferSpec {
    let (debit, credit) = random_pair(accounts);
    pb::TransferSpec {
        debit_account_id: debit,
        credit_account_id: credit,
        amount: rand::rng().random_range(1..1_000),
        code: "bench".into(),
        ..Default::default()
    }
}

fn transfer_request(tenant: &str, transfer: pb::TransferSpec) -> pb::CreateTransferRequest {
    pb::CreateTransferRequest {
        tenant_id: tenant.to_owned(),
        transfer: Some(transfer),
        idempotency_key: Uuid::new_v4().to_string(),
    }
}

async fn single_transfers_over_grpc(
    client: &LedgerServiceClient<Channel>,
    tenant: &str,
    accounts: &Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let (client, tenant, accounts) = (client.clone(), tenant.to_owned(), accounts.clone());
    drive(clients, duration, move |_| {
        let mut client = client.clone();
        let request = transfer_request(&tenant, random_transfer(&accounts));
        async move {
            client.create_transfer(request).await?;
            Ok(1)
        }
    })
    .await
}

/// The floor: what CreateTransfer's handler does below gRPC — the same idempotency key and the
/// same `app::Ledger::post` use case it calls — called directly on a pool.
async fn single_transfers_over_sql(
    pool: &PgPool,
    tenant: String,
    accounts: &Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let tenant_id: Uuid = tenant.parse()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let ledger = Arc::new(Ledger::new(
        pool.clone(),
        LedgerSettings::parse(&[])?,
        shutdown.clone(),
    ));
    let _stop = shutdown.drop_guard();
    let accounts = accounts.clone();
    drive(clients, duration, move |_| {
        let ledger = ledger.clone();
        let transfer = random_transfer(&accounts);
        let request = transfer_request(&tenant, transfer.clone());
        async move {
            let spec = TransferSpec {
                debit_account_id: transfer.debit_account_id.parse()?,
                credit_account_id: transfer.credit_account_id.parse()?,
                amount: transfer.amount,
                pending: false,
                timeout: None,
                code: transfer.code.clone(),
                metadata: transfer.metadata.clone(),
            };
            let key = RequestKey::new(
                tenant_id.to_string(),
                request.idempotency_key.clone(),
                "LedgerService/CreateTransfer",
                &request,
            );
            ledger
                .post(
                    &key,
                    tenant_id,
                    vec![Operation::Transfer(spec)],
                    Linking::Linked,
                    Located::Single(Some("transfer")),
                )
                .await?;
            Ok(1)
        }
    })
    .await
}

async fn batches_over_grpc(
    client: &LedgerServiceClient<Channel>,
    tenant: &str,
    accounts: &Arc<Vec<String>>,
    args: &BenchArgs,
) -> anyhow::Result<Phase> {
    // Each batch client moves money among its own share of the accounts, so concurrent batches
    // do not wait on each other's row locks (as independent workloads would not).
    let shares: Vec<Arc<Vec<String>>> = accounts
        .chunks(accounts.len().div_ceil(args.batch_clients).max(2))
        .filter(|share| share.len() >= 2)
        .map(|share| Arc::new(share.to_vec()))
        .collect();
    let (client, tenant) = (client.clone(), tenant.to_owned());
    let size = args.batch_size as usize;
    drive(shares.len(), args.duration, move |index| {
        let mut client = client.clone();
        let accounts = shares[index].clone();
        let transfers = (0..size).map(|_| random_transfer(&accounts)).collect();
        let request = pb::CreateTransfersRequest {
            tenant_id: tenant.clone(),
            transfers,
            mode: pb::BatchMode::Linked.into(),
            idempotency_key: Uuid::new_v4().to_string(),
        };
        async move {
            let results = client.create_transfers(request).await?.into_inner().results;
            Ok(results.len() as u64)
        }
    })
    .await
}
