//! `phoenix audit <service>`: the service's auditor on its database.

use phoenix_runtime::{Database, RuntimeConfig};

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
    let result = async {
        let pool =
            phoenix_runtime::server::connect_pool(&database.url, spec.name, &args.runtime).await?;
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
