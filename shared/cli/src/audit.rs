//! `phoenix audit <service>`: the service's auditor on its database, and for a service whose
//! invariants span contexts (the coordinator) the comparison with its peers over gRPC.

use std::sync::Arc;

use phoenix_runtime::{AuditReport, Database, RuntimeConfig};

/// Longest a statement of an audit may run: hours, not a call's seconds.
const AUDIT_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The service to audit (one that has an auditor).
    #[arg(value_parser = audited())]
    service: String,
    /// Where the peers are when their `PHOENIX_<SERVICE>_URL` is unset: `phoenix up`'s ports
    /// from this one on, on localhost.
    #[arg(long, env = "PHOENIX_BASE_PORT", default_value_t = 50051)]
    base_port: u16,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

/// The services with an auditor: clap refuses any other name and lists these.
fn audited() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        phoenix_registry::specs()
            .into_iter()
            .filter(|spec| spec.audit.is_some() || spec.peer_audit.is_some())
            .map(|spec| spec.name),
    )
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let spec = (phoenix_registry::find(&args.service)?.spec)();
    anyhow::ensure!(
        spec.audit.is_some() || spec.peer_audit.is_some(),
        "{} has no auditor",
        spec.name
    );
    let database = Database::open_for(&args.runtime, &[spec.name]).await?;
    // An audit reads every row: the statement timeout that bounds a call does not bound it.
    let mut config = args.runtime.clone();
    config.max_deadline = AUDIT_STATEMENT_TIMEOUT;
    let result = async {
        let pool = database.connect(spec.name, &config).await?;
        if let Some(audit) = spec.peer_audit {
            let mut peers = args.runtime.clone();
            for (index, name) in phoenix_registry::names().into_iter().enumerate() {
                let port = phoenix_registry::port(args.base_port, index)?;
                peers
                    .peers
                    .set_url(name, format!("http://127.0.0.1:{port}"));
            }
            return audit(pool, Arc::new(peers)).await;
        }
        match spec.audit {
            Some(audit) => audit(pool).await,
            None => Ok(AuditReport::default()),
        }
    }
    .await;
    database.close().await;
    print(&result?)
}

/// Prints the report; an error (a non-zero exit) when it found a violation.
pub fn print(report: &AuditReport) -> anyhow::Result<()> {
    for line in &report.lines {
        println!("{line}");
    }
    anyhow::ensure!(
        report.violations == 0,
        "{} violation(s) found{}",
        report.violations,
        report
            .scope
            .as_deref()
            .map(|scope| format!(" in {scope}"))
            .unwrap_or_default()
    );
    match &report.scope {
        Some(scope) => println!("no violation ({scope})"),
        None => println!("no violation"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_with_a_violation_is_an_error_so_the_command_exits_non_zero() {
        let clean = AuditReport {
            lines: vec!["checked 2 ended saga(s)".into()],
            violations: 0,
            scope: Some("2 ended sagas".into()),
        };
        assert!(print(&clean).is_ok());
        let dirty = AuditReport {
            violations: 1,
            ..clean
        };
        let error = print(&dirty).expect_err("a violation fails the command");
        assert_eq!(error.to_string(), "1 violation(s) found in 2 ended sagas");
    }
}
