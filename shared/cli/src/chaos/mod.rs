//! `phoenix chaos sagas`: the coordinator survives what its design says it survives. The
//! participants run in this process with injected faults (the runtime's fault layer: a
//! fraction of their calls answer UNAVAILABLE or stall past the deadline); the coordinator runs
//! as a process of its own, under Purchase load, and is killed with SIGKILL at random moments
//! and started again, several times. Then the run waits until no saga is running, turns the
//! faults off and reconciles: it passes only when every saga is COMPLETED or COMPENSATED (or
//! STUCK because a participant refused its compensation, each listed), the reconciliation
//! finds nothing, and the ledger adds up exactly (see [`verify`]).

mod cluster;
mod load;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use phoenix_runtime::config::{duration, positive_duration};
use phoenix_runtime::fault::FaultConfig;
use phoenix_runtime::{RuntimeConfig, embedded};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use cluster::{COORDINATOR, CoordinatorProcess, Participants};

#[derive(Debug, clap::Subcommand)]
pub enum ChaosTarget {
    /// Purchase sagas under participant faults and coordinator SIGKILLs, then reconciliation.
    Sagas {
        #[command(flatten)]
        args: SagasArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct SagasArgs {
    /// Times the coordinator is killed with SIGKILL (and started again).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub kills: u32,
    /// Concurrent clients buying; each has its own users.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// Users (buyers), shared out among the clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub users: u32,
    /// Shop items.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub items: u32,
    /// Story fragments (each with one decision granting besitos and an item) the clients call
    /// TakeDecision on, half of their calls; 0: Purchase only.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub decisions: u32,
    /// Units of each item in stock: when they run out, purchases compensate.
    #[arg(long, default_value_t = 60)]
    pub stock: i64,
    /// Each user's funds: when they run out, purchases compensate.
    #[arg(long, default_value_t = 200)]
    pub funds: i64,
    /// Price of one unit.
    #[arg(long, default_value_t = 10)]
    pub price: i64,
    /// Shortest time the coordinator runs before it is killed.
    #[arg(long, default_value = "500ms", value_parser = positive_duration)]
    pub min_uptime: Duration,
    /// Longest time the coordinator runs before it is killed.
    #[arg(long, default_value = "4s", value_parser = positive_duration)]
    pub max_uptime: Duration,
    /// Longest pause between a kill and the restart (drawn from zero to this).
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub max_downtime: Duration,
    /// Fraction of the participants' calls answered UNAVAILABLE `FAULT_INJECTED`.
    #[arg(long, default_value_t = 0.05)]
    pub unavailable_ratio: f64,
    /// Fraction of the participants' calls stalled past their deadline (the effect committed,
    /// the answer lost).
    #[arg(long, default_value_t = 0.02)]
    pub stall_ratio: f64,
    /// How long after the last restart the load goes on.
    #[arg(long, default_value = "3s", value_parser = duration)]
    pub settle: Duration,
    /// How long the sagas have, after the load, to end.
    #[arg(long, default_value = "180s", value_parser = positive_duration)]
    pub quiescence_timeout: Duration,
}

pub async fn run(target: ChaosTarget) -> anyhow::Result<()> {
    let ChaosTarget::Sagas { args, runtime } = target;
    anyhow::ensure!(
        args.min_uptime <= args.max_uptime,
        "--min-uptime ({:?}) must not exceed --max-uptime ({:?})",
        args.min_uptime,
        args.max_uptime
    );
    anyhow::ensure!(
        args.stock > 0 && args.funds > 0 && args.price > 0,
        "--stock, --funds and --price must be above 0"
    );
    let faults = FaultConfig {
        fault_unavailable_ratio: args.unavailable_ratio,
        fault_stall_ratio: args.stall_ratio,
        ..FaultConfig::default()
    };
    // A fresh server of its own unless DATABASE_URL names one: the run judges every saga, from
    // every service's tables, on that one database.
    if let Some(service) = phoenix_registry::names()
        .into_iter()
        .find(|name| runtime.databases.url(name).is_some())
    {
        anyhow::bail!(
            "phoenix chaos runs every service on one database (DATABASE_URL or a fresh server): unset {}",
            phoenix_runtime::config::database_variable(service)
        );
    }
    let (url, server) = match &runtime.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let settings = runtime.embedded.clone();
            let server = tokio::task::spawn_blocking(move || {
                embedded::EmbeddedPostgres::start_throwaway(&settings)
            })
            .await??;
            let url =
                embedded::prepare_database(&server, phoenix_runtime::EMBEDDED_DATABASE).await?;
            (url, Some(server))
        }
    };
    let result = drive(&args, runtime, faults, &url).await;
    if let Some(server) = server {
        let _ = tokio::task::spawn_blocking(move || server.stop()).await;
    }
    result
}

async fn drive(
    args: &SagasArgs,
    mut runtime: RuntimeConfig,
    faults: FaultConfig,
    url: &str,
) -> anyhow::Result<()> {
    runtime.database_url = Some(url.to_owned());
    let coordinator_addr = free_addr().await?;
    let mut participants = Participants::start(url, runtime, coordinator_addr).await?;
    let peers = participants.config().peers.clone();
    let channel = |name: &str| -> anyhow::Result<tonic::transport::Channel> {
        let url = peers
            .url(name)
            .with_context(|| format!("no {name} in this cluster"))?;
        Ok(tonic::transport::Channel::from_shared(url.to_owned())?.connect_lazy())
    };
    let mut shop = load::open_shop(
        channel("ledger")?,
        channel("directory")?,
        args.items as usize,
        args.users as usize,
        args.stock,
        args.funds,
        args.price,
    )
    .await
    .context("opening the shop")?;
    load::write_story(channel("narrative")?, &mut shop, args.decisions as usize)
        .await
        .context("writing the story")?;
    let shop = Arc::new(shop);
    let log = std::env::temp_dir().join(format!(
        "phoenix-chaos-coordinator-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let mut coordinator = CoordinatorProcess::new(
        coordinator_addr,
        url,
        participants.config(),
        &[],
        log.clone(),
    );
    eprintln!("chaos: coordinator log at {}", log.display());
    participants.restart(&faults).await?;
    eprintln!(
        "chaos: shop open ({} users, {} items, {} decisions); participants faulting (unavailable {}, stall {})",
        shop.users.len(),
        shop.items.len(),
        shop.decisions.len(),
        faults.fault_unavailable_ratio,
        faults.fault_stall_ratio
    );
    coordinator.start().await?;
    let pool =
        phoenix_runtime::server::connect_pool(url, COORDINATOR, participants.config()).await?;

    let stop = CancellationToken::new();
    let give_up = CancellationToken::new();
    let load = tokio::spawn(load::run(
        coordinator.url(),
        shop.clone(),
        args.clients as usize,
        stop.clone(),
        give_up.clone(),
    ));

    let mut survived = 0;
    for kill in 1..=args.kills {
        let uptime = draw(args.min_uptime, args.max_uptime);
        tokio::time::sleep(uptime).await;
        coordinator.kill().await?;
        let in_flight = phoenix_coordinator::reconcile::store::active_sagas(&pool).await?;
        let downtime = draw(Duration::ZERO, args.max_downtime);
        eprintln!(
            "chaos: kill {kill}/{}: SIGKILL after {uptime:?} up, {in_flight} saga(s) in flight; down for {downtime:?}",
            args.kills
        );
        tokio::time::sleep(downtime).await;
        coordinator.start().await?;
        survived += 1;
    }
    tokio::time::sleep(args.settle).await;
    stop.cancel();
    eprintln!("chaos: load stopped; waiting for every saga to end");

    // Each client finishes the purchase in hand: it asks again with its key until the saga
    // has ended. Then the sagas nobody asks about any more (their client gave up) must end too.
    let mut load = load;
    let answers = match tokio::time::timeout(args.quiescence_timeout, &mut load).await {
        Ok(answers) => answers??,
        Err(_) => {
            give_up.cancel();
            load.await??
        }
    };
    wait_quiet(&pool, args.quiescence_timeout).await?;

    // The verdict is read without faults: the reconciliation is not what is under test.
    participants.restart(&FaultConfig::default()).await?;
    let context = phoenix_runtime::ServiceContext {
        pool: pool.clone(),
        config: Arc::new(participants.config().clone()),
        shutdown: CancellationToken::new(),
    };
    let reconciliation = phoenix_coordinator::reconcile::reconcile(
        &pool,
        &phoenix_coordinator::reconcile::Participants::connect(&context)?,
        None,
    )
    .await?;
    let verdict = verify::ledger_adds_up(&pool, channel("ledger")?, &shop, &answers).await?;
    coordinator.kill().await?;
    participants.stop().await;

    report(args, survived, &answers, &reconciliation, &verdict)
}

/// Prints the counts and every failure; an error when the run failed.
fn report(
    args: &SagasArgs,
    survived: u32,
    answers: &load::Answers,
    reconciliation: &phoenix_coordinator::reconcile::Reconciliation,
    verdict: &verify::Verdict,
) -> anyhow::Result<()> {
    let mut failures = verdict.failures.clone();
    for line in reconciliation.report().lines.iter().skip(1) {
        println!("{line}");
    }
    failures.extend(
        reconciliation
            .findings
            .iter()
            .map(|f| format!("reconciliation: {} {}", f.check, f.detail)),
    );
    // A stuck saga passes only when a participant refused its compensation for good.
    failures.extend(
        reconciliation
            .stuck
            .iter()
            .filter(|s| {
                matches!(
                    s.code.as_str(),
                    "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "ABORTED" | "RESOURCE_EXHAUSTED" | ""
                )
            })
            .map(|s| {
                format!(
                    "saga {} stuck on a transient failure: {}",
                    s.saga_id, s.failure
                )
            }),
    );
    if !answers.unanswered.is_empty() {
        failures.push(format!(
            "{} purchase(s) never got a final answer, e.g. key {}",
            answers.unanswered.len(),
            answers.unanswered[0]
        ));
    }
    if !answers.refused.is_empty() {
        failures.push(format!(
            "{} purchase(s) refused before any saga, e.g. {}",
            answers.refused.len(),
            answers.refused[0]
        ));
    }
    let count = |state: &str| verdict.by_state.get(state).copied().unwrap_or(0);
    for failure in &failures {
        println!("FAIL {failure}");
    }
    let passed = failures.is_empty() && survived == args.kills;
    let decided = |state: &str| verdict.decisions_by_state.get(state).copied().unwrap_or(0);
    let purchases = verdict.by_state.values().sum::<usize>();
    let decisions = verdict.decisions_by_state.values().sum::<usize>();
    println!(
        "chaos-sagas kills={survived}/{} sagas={} completed={} compensated={} stuck={} purchases={purchases} decisions={decisions} decisions_unmet={} faults_injected={} client_retries={} failures={} result={}",
        args.kills,
        purchases + decisions,
        count("COMPLETED") + decided("COMPLETED"),
        count("COMPENSATED") + decided("COMPENSATED"),
        count("STUCK") + decided("STUCK"),
        answers.unmet,
        faults_injected(),
        answers.retries,
        failures.len(),
        if passed { "PASS" } else { "FAIL" }
    );
    anyhow::ensure!(
        passed,
        "the chaos run failed: {} failure(s)",
        failures.len()
    );
    Ok(())
}

/// Calls the participants' fault layer refused or stalled (they run in this process, so their
/// counter is in this process's metrics).
fn faults_injected() -> u64 {
    phoenix_runtime::metrics::global()
        .render()
        .lines()
        .filter(|line| line.starts_with("phoenix_faults_injected_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until no saga is RUNNING or COMPENSATING.
async fn wait_quiet(pool: &sqlx::PgPool, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let active = phoenix_coordinator::reconcile::store::active_sagas(pool).await?;
        if active == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{active} saga(s) still running or compensating {limit:?} after the load stopped"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn draw(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    rand::rng().random_range(low..=high)
}

/// A port free now, for the coordinator (its address must stay the same across restarts).
async fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?)
}
