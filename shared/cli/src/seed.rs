//! `phoenix seed <service>`: a service's demo data, through its API, idempotently.

use phoenix_runtime::RuntimeConfig;

use crate::reached::Reached;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The service to seed.
    #[arg(value_parser = ["ledger", "narrative"])]
    service: String,
    /// A running service to seed instead of one started here on the embedded database.
    #[arg(long)]
    target: Option<String>,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    if args.service == "narrative" {
        return narrative(args).await;
    }
    let reached = Reached::start(phoenix_ledger::spec(), args.target, args.runtime).await?;
    let result = phoenix_ledger::seed::run(reached.channel.clone()).await;
    reached.close().await;
    match result? {
        phoenix_ledger::seed::Seeded::Created {
            tenant_id,
            accounts,
            transfers,
        } => println!(
            "seeded tenant {:?} ({tenant_id}): {accounts} accounts, {transfers} transfers, a pending transfer, a policy, 3 inventory items with a reservation, 2 holdings",
            phoenix_ledger::seed::DEMO_TENANT
        ),
        phoenix_ledger::seed::Seeded::AlreadyThere { tenant_id } => println!(
            "tenant {:?} ({tenant_id}) is already seeded; nothing to do",
            phoenix_ledger::seed::DEMO_TENANT
        ),
    }
    Ok(())
}

async fn narrative(args: SeedArgs) -> anyhow::Result<()> {
    let reached = Reached::start(phoenix_narrative::spec(), args.target, args.runtime).await?;
    let result = phoenix_narrative::ops::seed::run(reached.channel.clone()).await;
    reached.close().await;
    let what = match result? {
        phoenix_narrative::ops::seed::Seeded::Created => "seeded",
        phoenix_narrative::ops::seed::Seeded::Replaced => "replaced",
    };
    println!(
        "{what} the demo story: 4 fragments (one VIP-only, one behind composite requirements), 3 decisions, a 3-part experience, a reaction reward"
    );
    Ok(())
}
