//! The reconciliation (seed 001's nightly jobs): every saga that ended is compared with the
//! participants' state over gRPC, so an effect that a crash, a bug or a hand-made change left
//! behind is found, not trusted away.
//!
//! - A COMPLETED purchase has its transfer posted, its reservation committed, and its user
//!   holds at least the units all their completed purchases of the item bought.
//! - A COMPENSATED purchase has its pending transfer voided (never posted, never left pending)
//!   and its reservation released (never committed, never left open).
//! - A STUCK saga is listed with the step and the answer that stopped it: an operator resumes
//!   it with `RetrySaga`.
//!
//! Sagas still RUNNING or COMPENSATING are not judged: their participants' state is in motion.
//! `phoenix audit coordinator` runs it once over every saga and exits non-zero on any finding
//! (a stuck saga included); inside the coordinator, [`schedule`] runs it every
//! `PHOENIX_COORDINATOR_RECONCILE_INTERVAL` over the sagas that ended in the last two
//! intervals, records each run and its findings (`reconciliation_runs`,
//! `reconciliation_findings`) and sets `phoenix_reconciliation_inconsistencies`; of several
//! coordinators on one database, one makes each period's run ([`scheduled_tick`]).

mod purchase;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_runtime::client::PeerChannel;
use phoenix_runtime::{AuditReport, RuntimeConfig, ServiceContext};
use sqlx::PgPool;
use uuid::Uuid;

use crate::saga::{EngineConfig, SagaEngine, SagaState};

/// One inconsistency between a saga and a participant's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The saga; `None` when the finding is about several (a user's holdings of an item).
    pub saga_id: Option<Uuid>,
    pub saga_type: String,
    /// A stable name of the check, e.g. `TRANSFER_NOT_POSTED`.
    pub check: &'static str,
    pub detail: String,
}

/// A saga parked for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckSaga {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub user_id: String,
    /// The gRPC code of the answer that stopped it (`FAILED_PRECONDITION`: a participant
    /// refused; `UNAVAILABLE`: its budget ran out on transient failures).
    pub code: String,
    /// The step and the answer that stopped it.
    pub failure: String,
}

/// What one reconciliation found.
#[derive(Debug, Clone, Default)]
pub struct Reconciliation {
    /// Sagas compared with the participants.
    pub checked: usize,
    /// Checked sagas per state (COMPLETED, COMPENSATED, STUCK).
    pub by_state: BTreeMap<&'static str, usize>,
    /// Sagas still running or compensating, not judged.
    pub active: i64,
    pub stuck: Vec<StuckSaga>,
    pub findings: Vec<Finding>,
}

impl Reconciliation {
    /// Findings and stuck sagas: what an operator must look at.
    pub fn violations(&self) -> usize {
        self.findings.len() + self.stuck.len()
    }

    /// What `phoenix audit coordinator` prints.
    pub fn report(&self) -> AuditReport {
        let mut lines = vec![format!(
            "checked {} ended saga(s): {}; {} still active (not judged)",
            self.checked,
            self.by_state
                .iter()
                .map(|(state, count)| format!("{state}={count}"))
                .collect::<Vec<_>>()
                .join(" "),
            self.active
        )];
        for finding in &self.findings {
            let saga = finding
                .saga_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string());
            lines.push(format!(
                "INCONSISTENT {} saga {saga} ({}): {}",
                finding.check, finding.saga_type, finding.detail
            ));
        }
        for stuck in &self.stuck {
            lines.push(format!(
                "STUCK saga {} ({}, user {}): {}; resume it with `phoenix sagas retry {}`",
                stuck.saga_id, stuck.saga_type, stuck.user_id, stuck.failure, stuck.saga_id
            ));
        }
        AuditReport {
            lines,
            violations: self.violations(),
            scope: Some(format!("{} ended sagas", self.checked)),
        }
    }
}

/// The participants the reconciliation asks.
#[derive(Debug, Clone)]
pub struct Participants {
    pub(crate) ledger: LedgerServiceClient<PeerChannel>,
    pub(crate) stock: StockServiceClient<PeerChannel>,
}

impl Participants {
    /// Channels to the participants the service's configuration names.
    pub fn connect(context: &ServiceContext) -> anyhow::Result<Self> {
        let ledger = context.peer("ledger")?;
        Ok(Self {
            ledger: LedgerServiceClient::new(ledger.clone()),
            stock: StockServiceClient::new(ledger),
        })
    }
}

/// Compares every saga that ended at or after `since` (every one when `None`) with the
/// participants' state.
pub async fn reconcile(
    pool: &PgPool,
    participants: &Participants,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Reconciliation> {
    // Only reads: an engine without definitions or background work replays the logs.
    let engine = SagaEngine::new(pool.clone(), None, EngineConfig::default());
    let mut run = Reconciliation {
        active: store::active_sagas(pool).await?,
        ..Reconciliation::default()
    };
    let mut purchases = purchase::Check::new(participants.clone());
    for saga in store::ended_sagas(pool, since).await? {
        let outcome = engine.outcome(saga.saga_id).await?;
        if outcome.state.is_active() {
            // It moved on since the listing (a RetrySaga): judged next time.
            continue;
        }
        run.checked += 1;
        *run.by_state.entry(outcome.state.as_str()).or_default() += 1;
        if outcome.state == SagaState::Stuck {
            run.stuck.push(StuckSaga {
                saga_id: saga.saga_id,
                saga_type: saga.saga_type.clone(),
                user_id: saga.user_id.clone(),
                code: outcome
                    .failure
                    .as_ref()
                    .map(|(_, failure)| failure.code.clone())
                    .unwrap_or_default(),
                failure: outcome.failure.as_ref().map_or_else(
                    || "no failure recorded".to_owned(),
                    |(step, failure)| {
                        format!(
                            "step {step} answered {} {}: {}",
                            failure.code, failure.reason, failure.message
                        )
                    },
                ),
            });
        }
        if saga.saga_type == purchase::SAGA_TYPE {
            purchases.saga(&saga, &outcome, &mut run.findings).await?;
        }
    }
    purchases.finish(&mut run.findings).await?;
    Ok(run)
}

/// The plans of the purchases that ended, with the state they ended in.
pub async fn ended_purchases(
    pool: &PgPool,
) -> anyhow::Result<Vec<(Uuid, SagaState, crate::purchase::participants::PurchasePlan)>> {
    let mut purchases = Vec::new();
    for saga in store::ended_sagas(pool, None).await? {
        if saga.saga_type != purchase::SAGA_TYPE {
            continue;
        }
        let state = SagaState::parse(&saga.state).ok_or_else(|| {
            anyhow::anyhow!("saga {} has the state {:?}", saga.saga_id, saga.state)
        })?;
        let plan = serde_json::from_value(saga.input)
            .map_err(|e| anyhow::anyhow!("saga {}: not a purchase plan: {e}", saga.saga_id))?;
        purchases.push((saga.saga_id, state, plan));
    }
    Ok(purchases)
}

/// A saga that ended (or is stuck), with its input and its steps' outputs.
#[derive(Debug, Clone)]
pub struct EndedRun {
    pub saga_id: Uuid,
    pub state: SagaState,
    pub input: serde_json::Value,
    /// Outputs of the steps that succeeded, by step name.
    pub outputs: BTreeMap<String, serde_json::Value>,
}

/// Every saga of `saga_type` that ended or is stuck, with its steps' outputs (from the log).
pub async fn ended_runs(pool: &PgPool, saga_type: &str) -> anyhow::Result<Vec<EndedRun>> {
    let engine = SagaEngine::new(pool.clone(), None, EngineConfig::default());
    let mut runs = Vec::new();
    for saga in store::ended_sagas(pool, None).await? {
        if saga.saga_type != saga_type {
            continue;
        }
        let outcome = engine.outcome(saga.saga_id).await?;
        runs.push(EndedRun {
            saga_id: saga.saga_id,
            state: outcome.state,
            input: saga.input,
            outputs: outcome.outputs,
        });
    }
    Ok(runs)
}

/// `phoenix audit coordinator`: every ended saga against the participants the configuration
/// names.
pub fn audit(
    pool: PgPool,
    config: Arc<RuntimeConfig>,
) -> futures_util::future::BoxFuture<'static, anyhow::Result<AuditReport>> {
    Box::pin(async move {
        let context = ServiceContext {
            pool: pool.clone(),
            config,
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let participants = Participants::connect(&context)?;
        Ok(reconcile(&pool, &participants, None).await?.report())
    })
}

/// The coordinator's own settings of the scheduled reconciliation.
#[derive(Debug, Clone, clap::Parser)]
#[command(no_binary_name = true)]
pub struct ReconcileSettings {
    /// How often the coordinator reconciles the sagas that ended in the last two intervals;
    /// `0s` turns the schedule off (`phoenix audit coordinator` still runs it by hand).
    #[arg(long, env = "PHOENIX_COORDINATOR_RECONCILE_INTERVAL", default_value = "24h", value_parser = phoenix_runtime::config::duration)]
    pub reconcile_interval: Duration,
}

impl ReconcileSettings {
    /// From the `--reconcile-*` service arguments, then the environment, then the defaults;
    /// the other service arguments belong to other settings.
    pub fn parse(service_args: &[String]) -> anyhow::Result<Self> {
        let own = service_args
            .iter()
            .filter(|a| a.starts_with("--reconcile-"));
        <Self as clap::Parser>::try_parse_from(own).map_err(|e| {
            anyhow::anyhow!("PHOENIX_COORDINATOR_RECONCILE_INTERVAL (--reconcile-interval): {e}")
        })
    }
}

/// Runs the reconciliation on the service's schedule, recording every run.
pub fn schedule(context: &ServiceContext) -> anyhow::Result<()> {
    let settings = ReconcileSettings::parse(&context.config.service_args)?;
    if settings.reconcile_interval.is_zero() {
        tracing::info!("the scheduled reconciliation is off");
        return Ok(());
    }
    if context.config.peers.url("ledger").is_none() {
        tracing::warn!("the scheduled reconciliation is off: PHOENIX_LEDGER_URL is needed");
        return Ok(());
    }
    let participants = Participants::connect(context)?;
    let pool = context.pool.clone();
    // The period is the job's interval as run (PHOENIX_JOB_INTERVALS may override it).
    let interval = context
        .config
        .jobs
        .interval_of("reconciliation", settings.reconcile_interval);
    context.singleton("reconciliation", interval, move || {
        let pool = pool.clone();
        let participants = participants.clone();
        async move {
            scheduled_tick(&pool, &participants, interval).await?;
            Ok(())
        }
    });
    Ok(())
}

/// What the schedule runs at each tick, on one replica at a time (a singleton job): a
/// [`scheduled_run`], unless another replica made this period's already
/// ([`store::ran_this_period`]), so N replicas reconcile about once per `interval`. Answers
/// whether it ran.
pub async fn scheduled_tick(
    pool: &PgPool,
    participants: &Participants,
    interval: Duration,
) -> anyhow::Result<bool> {
    if store::ran_this_period(pool, interval).await? {
        tracing::debug!("another coordinator made this period's reconciliation");
        return Ok(false);
    }
    scheduled_run(pool, participants, interval).await?;
    Ok(true)
}

/// One scheduled run: reconciles, records, sets the metrics, logs each finding at error level.
pub async fn scheduled_run(
    pool: &PgPool,
    participants: &Participants,
    interval: Duration,
) -> anyhow::Result<()> {
    let started = Utc::now();
    let since = chrono::Duration::from_std(interval * 2)
        .ok()
        .and_then(|window| started.checked_sub_signed(window));
    let outcome = reconcile(pool, participants, since).await;
    let metrics = metrics();
    match &outcome {
        Ok(run) => {
            store::record_run(pool, started, since, Ok(run)).await?;
            metrics
                .inconsistencies
                .set(i64::try_from(run.violations()).unwrap_or(i64::MAX));
            let result = if run.violations() == 0 {
                "clean"
            } else {
                "inconsistent"
            };
            metrics
                .runs
                .get_or_create(&ResultLabels {
                    result: result.into(),
                })
                .inc();
            for line in run.report().lines.iter().skip(1) {
                tracing::error!(finding = %line, "reconciliation found an inconsistency");
            }
            tracing::info!(
                checked = run.checked,
                violations = run.violations(),
                "reconciliation finished"
            );
            Ok(())
        }
        Err(error) => {
            let text = format!("{error:#}");
            store::record_run(pool, started, since, Err(&text)).await?;
            metrics
                .runs
                .get_or_create(&ResultLabels {
                    result: "failed".into(),
                })
                .inc();
            Err(anyhow::anyhow!("reconciliation could not finish: {text}"))
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

struct ReconcileMetrics {
    inconsistencies: prometheus_client::metrics::gauge::Gauge,
    runs: prometheus_client::metrics::family::Family<
        ResultLabels,
        prometheus_client::metrics::counter::Counter,
    >,
}

fn metrics() -> &'static ReconcileMetrics {
    static METRICS: std::sync::OnceLock<ReconcileMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let inconsistencies = prometheus_client::metrics::gauge::Gauge::default();
        phoenix_runtime::metrics::global().register(
            "reconciliation_inconsistencies",
            "Inconsistencies and stuck sagas the last scheduled reconciliation found",
            inconsistencies.clone(),
        );
        ReconcileMetrics {
            inconsistencies,
            runs: phoenix_runtime::metrics::counter_family(
                "reconciliation_runs",
                "Scheduled reconciliation runs, by result (clean, inconsistent, failed)",
            ),
        }
    })
}
