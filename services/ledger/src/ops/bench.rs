//! `phoenix bench ledger`: single transfers over gRPC from N concurrent clients and from one;
//! the floor, the cheapest correct way to make the same durable double-entry write in plain SQL
//! (a transfer row, two entries and two balance updates in one transaction, on copies of the
//! ledger's tables, with no idempotency, events or policies); the use case the handler calls,
//! without gRPC (`app_tps`), so each layer's cost shows; and batches of linked transfers.
//! Prints throughput and latency, then one machine-readable line.

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
use crate::metrics::PostingPhase;

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
    /// Single transfers over gRPC from one client: a lone call's latency.
    pub grpc_one_client: Phase,
    pub sql: Option<Phase>,
    pub app: Option<Phase>,
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
            "ledger-bench clients={} grpc_tps={:.0} sql_tps={:.0} app_tps={:.0} ratio={:.2} p50_ms={:.2} p99_ms={:.2} batch_tps={:.0} batch_ratio={:.1} one_client_p50_ms={:.2}",
            self.clients,
            self.grpc.per_second(),
            sql_tps,
            self.app.map_or(0.0, |p| p.per_second()),
            ratio,
            self.grpc.p50_ms,
            self.grpc.p99_ms,
            self.batch.per_second(),
            self.batch.per_second() / self.grpc.per_second().max(f64::EPSILON),
            self.grpc_one_client.p50_ms,
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
    let counters = PostingCounters::now();
    let grpc = single_transfers_over_grpc(&client, &tenant, &accounts, args.clients, args.duration)
        .await?;
    grpc.report("gRPC single transfers", "transfers");
    counters.report();
    let counters = PostingCounters::now();
    let grpc_one_client =
        single_transfers_over_grpc(&client, &tenant, &accounts, 1, args.duration).await?;
    grpc_one_client.report("gRPC single transfers, 1 client", "transfers");
    counters.report();
    let (sql, app) = match &pool {
        Some(pool) => {
            let floor =
                floor_transfers(pool, &tenant, &accounts, args.clients, args.duration).await?;
            floor.report("SQL floor, plain write", "transfers");
            let counters = PostingCounters::now();
            let app = single_transfers_through_the_use_case(
                pool,
                tenant.clone(),
                &accounts,
                args.clients,
                args.duration,
            )
            .await?;
            app.report("use case, no gRPC", "transfers");
            counters.report();
            (Some(floor), Some(app))
        }
        None => {
            eprintln!("bench: no database to measure the SQL floor on (set DATABASE_URL)");
            (None, None)
        }
    };
    let counters = PostingCounters::now();
    let batch = batches_over_grpc(&client, &tenant, &accounts, args).await?;
    batch.report("gRPC batches", "transfers");
    counters.report();
    Ok(Results {
        clients: args.clients,
        grpc,
        grpc_one_client,
        sql,
        app,
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

/// The coalescing and posting counters at the start of a phase, to print the phase's mean
/// group size and where its posting transactions spent their time. They count in this process
/// only: with `--target`, the service's are in its own metrics.
struct PostingCounters {
    groups: u64,
    calls: u64,
    transactions: u64,
    seconds: [f64; PostingPhase::ALL.len()],
}

impl PostingCounters {
    fn now() -> Self {
        let metrics = crate::metrics::get();
        Self {
            groups: metrics.coalesced_groups.get(),
            calls: metrics.coalesced_calls.get(),
            transactions: metrics.posting_transactions.get(),
            seconds: PostingPhase::ALL.map(crate::metrics::posting_seconds),
        }
    }

    fn report(&self) {
        let now = Self::now();
        let groups = now.groups - self.groups;
        if groups > 0 {
            eprintln!(
                "bench:   {} calls coalesced in {groups} groups ({:.1} calls a group)",
                now.calls - self.calls,
                (now.calls - self.calls) as f64 / groups as f64
            );
        }
        let transactions = now.transactions - self.transactions;
        if transactions > 0 {
            let phases: Vec<String> = PostingPhase::ALL
                .iter()
                .enumerate()
                .map(|(i, phase)| {
                    let ms = (now.seconds[i] - self.seconds[i]) * 1e3 / transactions as f64;
                    format!("{} {ms:.2}", phase.as_str())
                })
                .collect();
            eprintln!(
                "bench:   {transactions} posting transactions, ms each: {}",
                phases.join(", ")
            );
        }
    }
}

/// The schema of the floor's copies of the ledger's tables.
const FLOOR_SCHEMA: &str = "ledger_bench_floor";

/// The floor: the same transfers as durable double-entry writes in plain SQL, on copies of the
/// ledger's accounts, transfers and entries (same columns, checks and indexes; no triggers,
/// events, idempotency keys or policies), on a plain pool of the service pool's size, one
/// transaction each: both balances updated in one statement (locked in id order, so
/// concurrent writers never deadlock), the transfer row and the two entries with the versions
/// and balances that update returned. The copies are dropped afterwards, so the audit sees
/// the ledger's tables only.
async fn floor_transfers(
    pool: &PgPool,
    tenant: &str,
    accounts: &Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let tenant_id: Uuid = tenant.parse()?;
    // The same server, settings and number of connections, but no check before use or on
    // release beyond sqlx's own: what the cheapest correct writer would run on.
    let pool = &sqlx::postgres::PgPoolOptions::new()
        .max_connections(pool.options().get_max_connections())
        .test_before_acquire(false)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    let mut setup = pool.acquire().await?;
    for statement in [
        format!("DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE"),
        format!("CREATE SCHEMA {FLOOR_SCHEMA}"),
        format!(
            "CREATE TABLE {FLOOR_SCHEMA}.accounts
                 (LIKE ledger.accounts INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ),
        format!(
            "CREATE TABLE {FLOOR_SCHEMA}.transfers
                 (LIKE ledger.transfers INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ),
        format!(
            "CREATE TABLE {FLOOR_SCHEMA}.entries
                 (LIKE ledger.entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ),
    ] {
        sqlx::query(&statement).execute(&mut *setup).await?;
    }
    sqlx::query(&format!(
        "INSERT INTO {FLOOR_SCHEMA}.accounts SELECT * FROM ledger.accounts WHERE tenant_id = $1"
    ))
    .bind(tenant_id)
    .execute(&mut *setup)
    .await?;
    sqlx::query(&format!("ANALYZE {FLOOR_SCHEMA}.accounts"))
        .execute(&mut *setup)
        .await?;
    drop(setup);
    let write: Arc<str> = format!(
        "WITH a AS (
             UPDATE {FLOOR_SCHEMA}.accounts AS a
             SET debits_posted = a.debits_posted + CASE WHEN a.id = $2 THEN $4 ELSE 0 END,
                 credits_posted = a.credits_posted + CASE WHEN a.id = $3 THEN $4 ELSE 0 END,
                 entry_version = a.entry_version + 1
             WHERE a.tenant_id = $1 AND a.id = ANY(ARRAY[$2, $3]::uuid[])
             RETURNING a.id, a.entry_version, a.credits_posted - a.debits_posted AS balance),
         t AS (INSERT INTO {FLOOR_SCHEMA}.transfers (tenant_id, id, batch_id, kind,
                   debit_account_id, credit_account_id, asset_code, amount, code, metadata,
                   created_at)
               VALUES ($1, $5, $5, 'POSTED', $2, $3, 'BENCH', $4, 'bench', '{{}}', now()))
         INSERT INTO {FLOOR_SCHEMA}.entries (tenant_id, account_id, version, transfer_id,
             asset_code, amount, balance, created_at)
         SELECT $1, a.id, a.entry_version, $5, 'BENCH',
                CASE WHEN a.id = $2 THEN -$4 ELSE $4 END, a.balance, now()
         FROM a"
    )
    .into();
    let (pool_for_calls, accounts) = (pool.clone(), accounts.clone());
    let phase = drive(clients, duration, move |_| {
        let (pool, write) = (pool_for_calls.clone(), write.clone());
        let transfer = random_transfer(&accounts);
        async move {
            let debit: Uuid = transfer.debit_account_id.parse()?;
            let credit: Uuid = transfer.credit_account_id.parse()?;
            let mut transaction = pool.begin().await?;
            sqlx::query(&write)
                .bind(tenant_id)
                .bind(debit)
                .bind(credit)
                .bind(transfer.amount)
                .bind(Uuid::now_v7())
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            Ok(1)
        }
    })
    .await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE"))
        .execute(pool)
        .await?;
    pool.close().await;
    phase
}

/// What CreateTransfer's handler does below gRPC — the same idempotency key and the same
/// `app::Ledger::post` use case it calls, coalescing as the service is set to — called
/// directly on a pool.
async fn single_transfers_through_the_use_case(
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
