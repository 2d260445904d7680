//! `phoenix audit <service>`: the service's auditor on its database.

use phoenix_runtime::{Database, RuntimeConfig};

/// Longest a statement of an audit may run: hours, not a call's seconds.
const AUDIT_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The service to audit (one that has an auditor).
    #[arg(value_parser = audited())]
    service: String,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

/// The services with an auditor: clap refuses any other name and lists these.
fn audited() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        phoenix_registry::specs()
            .into_iter()
            .filter(|spec| spec.audit.is_some())
            .map(|spec| spec.name),
    )
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let spec = (phoenix_registry::find(&args.service)?.spec)();
    let audit = spec
        .audit
        .ok_or_else(|| anyhow::anyhow!("{} has no auditor", spec.name))?;
    let database = Database::open(&args.runtime).await?;
    // An audit reads every row: the statement timeout that bounds a call does not bound it.
    let mut config = args.runtime.clone();
    config.max_deadline = AUDIT_STATEMENT_TIMEOUT;
    let result = async {
        let pool = phoenix_runtime::server::connect_pool(&database.url, spec.name, &config).await?;
        audit(pool).await
    }
    .await;
    database.close().await;
    let report = result?;
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
