//! Faults injected on purpose: a service that answers UNAVAILABLE, or stalls past the caller's
//! deadline, for a chosen fraction of its calls. It is how Phoenix proves that its callers (the
//! coordinator's sagas first) survive the failures a network and a busy peer produce, in a
//! running deployment and not only in a test double (`phoenix chaos sagas` turns it on in the
//! participants).
//!
//! Off by default: both ratios are 0. Health and reflection are never faulted (probes must keep
//! telling the truth while a service misbehaves on purpose). Every injected fault is counted in
//! `phoenix_faults_injected_total{service,kind}` and logged, and the service warns at start that
//! faults are on.
//!
//! - `unavailable`: the call is refused before its handler runs, UNAVAILABLE with the reason
//!   `FAULT_INJECTED` and a RetryInfo, as an overloaded or restarting peer would answer;
//! - `stall`: the call is held for `PHOENIX_FAULT_STALL` (unset: until its deadline passes, so
//!   the caller gets DEADLINE_EXCEEDED). With the phase `after` (the default) the handler runs
//!   first and its effect is committed, only the answer is late: the caller cannot tell whether
//!   the call happened, the hardest case for it. With `before` the call waits before its handler.

use std::collections::HashSet;
use std::time::Duration;

use clap::{Args, ValueEnum};
use rand::Rng;

use crate::config::positive_duration;
use crate::error::Error;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics;

/// Reason of the UNAVAILABLE an injected fault answers.
pub const FAULT_INJECTED: &str = "FAULT_INJECTED";

/// Delay the RetryInfo of an injected UNAVAILABLE suggests.
const RETRY_AFTER: Duration = Duration::from_millis(20);

/// Settings of the fault layer. Both ratios 0 (the default) turn it off.
#[derive(Debug, Clone, Args)]
pub struct FaultConfig {
    /// Fraction of calls refused with UNAVAILABLE `FAULT_INJECTED` (0 to 1).
    #[arg(long, env = "PHOENIX_FAULT_UNAVAILABLE_RATIO", default_value_t = 0.0, value_parser = ratio)]
    pub fault_unavailable_ratio: f64,

    /// Fraction of calls stalled (0 to 1; with the UNAVAILABLE ratio, at most 1 in all).
    #[arg(long, env = "PHOENIX_FAULT_STALL_RATIO", default_value_t = 0.0, value_parser = ratio)]
    pub fault_stall_ratio: f64,

    /// How long a stalled call is held. Unset: until its deadline passes.
    #[arg(long, env = "PHOENIX_FAULT_STALL", value_parser = positive_duration)]
    pub fault_stall: Option<Duration>,

    /// Whether a stalled call is held before its handler runs or after (its effect committed,
    /// only the answer late).
    #[arg(long, env = "PHOENIX_FAULT_STALL_PHASE", value_enum, default_value_t = StallPhase::After)]
    pub fault_stall_phase: StallPhase,

    /// Only these RPCs are faulted, comma separated, each `package.Service/Method` or a whole
    /// `package.Service`. Unset: every RPC of the service (health and reflection never).
    #[arg(long, env = "PHOENIX_FAULT_METHODS", value_delimiter = ',')]
    pub fault_methods: Vec<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            fault_unavailable_ratio: 0.0,
            fault_stall_ratio: 0.0,
            fault_stall: None,
            fault_stall_phase: StallPhase::After,
            fault_methods: Vec::new(),
        }
    }
}

/// When a stalled call is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StallPhase {
    /// Before the handler: the call has no effect.
    Before,
    /// After the handler: the effect is committed, the answer is late.
    After,
}

/// A ratio between 0 and 1.
fn ratio(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("expected a fraction of calls between 0 and 1, such as 0.05".to_owned()),
    }
}

/// What the layer does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Unavailable,
    Stall {
        /// `None`: until the deadline.
        hold: Option<Duration>,
        phase: StallPhase,
    },
}

impl Fault {
    fn kind(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Stall { .. } => "stall",
        }
    }

    /// The answer of an injected UNAVAILABLE.
    pub fn unavailable_error() -> Error {
        Error::unavailable(
            FAULT_INJECTED,
            "an injected fault refused this call (PHOENIX_FAULT_UNAVAILABLE_RATIO); retry with backoff",
            Some(RETRY_AFTER),
        )
    }

    /// Holds the call as the stall says: for its hold, or forever (the caller's deadline ends it).
    pub async fn hold(hold: Option<Duration>) {
        match hold {
            Some(hold) => tokio::time::sleep(hold).await,
            None => std::future::pending::<()>().await,
        }
    }
}

/// The fault layer of one service, checked at start.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    service: &'static str,
    unavailable: f64,
    stall: f64,
    hold: Option<Duration>,
    phase: StallPhase,
    /// `package.Service/Method` of the faulted RPCs of this service.
    methods: HashSet<String>,
}

impl FaultPlan {
    /// The plan of `service`, whose RPCs are `served` (`package.Service/Method`, health and
    /// reflection excluded), or `None` when no call of it is to be faulted. `all_methods` are
    /// every RPC of Phoenix's contracts: a filter naming none of them is a typo, refused here.
    pub fn from_config(
        config: &FaultConfig,
        service: &'static str,
        served: &HashSet<String>,
        all_methods: &HashSet<String>,
    ) -> anyhow::Result<Option<Self>> {
        let total = config.fault_unavailable_ratio + config.fault_stall_ratio;
        anyhow::ensure!(
            total <= 1.0,
            "PHOENIX_FAULT_UNAVAILABLE_RATIO ({}) + PHOENIX_FAULT_STALL_RATIO ({}) must not exceed 1",
            config.fault_unavailable_ratio,
            config.fault_stall_ratio
        );
        let mut methods = HashSet::new();
        for entry in &config.fault_methods {
            let entry = entry.trim().trim_start_matches('/');
            anyhow::ensure!(
                !crate::middleware::EXEMPT_SERVICES
                    .iter()
                    .any(|exempt| entry == *exempt || entry.starts_with(&format!("{exempt}/"))),
                "PHOENIX_FAULT_METHODS: {entry:?} is health or reflection, which are never faulted"
            );
            let matches = |method: &&String| {
                method.as_str() == entry
                    || method
                        .strip_prefix(entry)
                        .is_some_and(|rest| rest.starts_with('/'))
            };
            anyhow::ensure!(
                all_methods.iter().any(|m| matches(&m)),
                "PHOENIX_FAULT_METHODS: {entry:?} is no RPC or service of Phoenix's contracts; \
                 expected package.Service/Method or package.Service, e.g. phoenix.ledger.v1.LedgerService/Transfer"
            );
            methods.extend(served.iter().filter(matches).cloned());
        }
        if config.fault_methods.is_empty() {
            methods = served.clone();
        }
        if total == 0.0 || methods.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            service,
            unavailable: config.fault_unavailable_ratio,
            stall: config.fault_stall_ratio,
            hold: config.fault_stall,
            phase: config.fault_stall_phase,
            methods,
        }))
    }

    /// One line for the start-up warning.
    pub fn describe(&self) -> String {
        let hold = self
            .hold
            .map_or_else(|| "until the deadline".to_owned(), |d| format!("{d:?}"));
        format!(
            "unavailable={} stall={} (held {hold}, {:?} the handler) on {} RPC(s)",
            self.unavailable,
            self.stall,
            self.phase,
            self.methods.len()
        )
    }

    /// Draws the fate of one call to `method` (`package.Service/Method`).
    pub fn draw(&self, method: &str) -> Option<Fault> {
        if !self.methods.contains(method) {
            return None;
        }
        let draw: f64 = rand::rng().random();
        let fault = if draw < self.unavailable {
            Fault::Unavailable
        } else if draw < self.unavailable + self.stall {
            Fault::Stall {
                hold: self.hold,
                phase: self.phase,
            }
        } else {
            return None;
        };
        injected()
            .get_or_create(&FaultLabels {
                service: self.service.to_owned(),
                kind: fault.kind().to_owned(),
            })
            .inc();
        tracing::info!(fault = fault.kind(), method, "fault injected");
        Some(fault)
    }
}

/// Labels of `phoenix_faults_injected_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    service: String,
    kind: String,
}

fn injected() -> &'static Family<FaultLabels, Counter> {
    static INJECTED: std::sync::OnceLock<Family<FaultLabels, Counter>> = std::sync::OnceLock::new();
    INJECTED.get_or_init(|| {
        metrics::counter_family(
            "faults_injected",
            "Calls the fault layer refused or stalled on purpose (PHOENIX_FAULT_*), by kind",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(names: &[&str]) -> HashSet<String> {
        names.iter().map(|m| (*m).to_owned()).collect()
    }

    fn config(unavailable: f64, stall: f64, filter: &[&str]) -> FaultConfig {
        FaultConfig {
            fault_unavailable_ratio: unavailable,
            fault_stall_ratio: stall,
            fault_methods: filter.iter().map(|m| (*m).to_owned()).collect(),
            ..FaultConfig::default()
        }
    }

    const LEDGER: &[&str] = &[
        "phoenix.ledger.v1.LedgerService/Transfer",
        "phoenix.ledger.v1.LedgerService/GetBalance",
    ];
    const ALL: &[&str] = &[
        "phoenix.ledger.v1.LedgerService/Transfer",
        "phoenix.ledger.v1.LedgerService/GetBalance",
        "phoenix.directory.v1.DirectoryService/GetUser",
    ];

    fn plan(config: &FaultConfig) -> anyhow::Result<Option<FaultPlan>> {
        FaultPlan::from_config(config, "ledger", &methods(LEDGER), &methods(ALL))
    }

    #[test]
    fn ratios_are_fractions() {
        assert_eq!(ratio("0.25"), Ok(0.25));
        assert_eq!(ratio("1"), Ok(1.0));
        assert!(ratio("1.5").is_err());
        assert!(ratio("-0.1").is_err());
        assert!(ratio("NaN").is_err());
        assert!(ratio("half").is_err());
    }

    #[test]
    fn off_by_default_and_when_the_filter_names_another_service() {
        assert!(plan(&FaultConfig::default()).expect("valid").is_none());
        let other = config(0.5, 0.0, &["phoenix.directory.v1.DirectoryService"]);
        assert!(plan(&other).expect("valid").is_none());
    }

    #[test]
    fn ratios_adding_past_one_are_refused_with_both_variables_named() {
        let error = plan(&config(0.7, 0.5, &[]))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("PHOENIX_FAULT_UNAVAILABLE_RATIO")
                && error.contains("PHOENIX_FAULT_STALL_RATIO"),
            "{error}"
        );
    }

    #[test]
    fn a_filter_naming_no_rpc_or_health_is_refused() {
        let typo = plan(&config(
            0.5,
            0.0,
            &["phoenix.ledger.v1.LedgerService/Transfr"],
        ))
        .expect_err("refused")
        .to_string();
        assert!(
            typo.contains("PHOENIX_FAULT_METHODS") && typo.contains("Transfr"),
            "{typo}"
        );
        let prefix = plan(&config(0.5, 0.0, &["phoenix.ledger.v1.Ledger"]))
            .expect_err("a prefix that is not a whole service name")
            .to_string();
        assert!(prefix.contains("no RPC or service"), "{prefix}");
        let health = plan(&config(0.5, 0.0, &["grpc.health.v1.Health/Check"]))
            .expect_err("refused")
            .to_string();
        assert!(health.contains("never faulted"), "{health}");
    }

    #[test]
    fn only_the_filtered_methods_are_faulted() {
        let plan = plan(&config(
            1.0,
            0.0,
            &["phoenix.ledger.v1.LedgerService/Transfer"],
        ))
        .expect("valid")
        .expect("on");
        assert_eq!(
            plan.draw("phoenix.ledger.v1.LedgerService/Transfer"),
            Some(Fault::Unavailable)
        );
        assert_eq!(
            plan.draw("phoenix.ledger.v1.LedgerService/GetBalance"),
            None
        );
        assert_eq!(plan.draw("grpc.health.v1.Health/Check"), None);
    }

    #[test]
    fn the_draws_follow_the_ratios() {
        let plan = plan(&config(0.3, 0.2, &[])).expect("valid").expect("on");
        let (mut unavailable, mut stalled) = (0, 0);
        for _ in 0..4000 {
            match plan.draw("phoenix.ledger.v1.LedgerService/Transfer") {
                Some(Fault::Unavailable) => unavailable += 1,
                Some(Fault::Stall { hold, phase }) => {
                    assert_eq!((hold, phase), (None, StallPhase::After));
                    stalled += 1;
                }
                None => {}
            }
        }
        // Expected 1200 and 800; a binomial's standard deviation here is under 30.
        assert!((1050..=1350).contains(&unavailable), "{unavailable}");
        assert!((650..=950).contains(&stalled), "{stalled}");
    }
}
