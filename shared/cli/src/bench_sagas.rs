//! `phoenix bench sagas`: the directory, ledger, narrative and coordinator started here, in this
//! process, on their databases (the embedded PostgreSQL, DATABASE_URL or their own URLs), each in its own schema
//! and on its own port, with the coordinator pointed at the others; then the coordinator's
//! purchase benchmark.

use std::sync::Arc;

use phoenix_coordinator::purchase::bench::{BenchArgs, Endpoints, Results};
use phoenix_runtime::{Database, RunningService, RuntimeConfig, ServiceSpec};

pub async fn run(args: BenchArgs, config: RuntimeConfig) -> anyhow::Result<Results> {
    let names = ["directory", "ledger", "narrative", "coordinator"];
    let database = Database::open_for(&config, &names).await?;
    let mut running = Vec::new();
    let result = async {
        let endpoints = start_all(&database, config, &mut running).await?;
        phoenix_coordinator::purchase::bench::run(&endpoints, &args).await
    }
    .await;
    // The coordinator first: its sagas stop before their participants do.
    while let Some(service) = running.pop() {
        if let Err(error) = service.shutdown().await {
            eprintln!("warning: a local service stopped with an error: {error:#}");
        }
    }
    database.close().await;
    result
}

/// Starts the participants, then the coordinator with their addresses.
async fn start_all(
    database: &Database,
    mut config: RuntimeConfig,
    running: &mut Vec<RunningService>,
) -> anyhow::Result<Endpoints> {
    let participants = [
        phoenix_directory::spec(),
        phoenix_ledger::spec(),
        phoenix_narrative::spec(),
    ];
    let shared = Arc::new(config.clone());
    for spec in participants {
        let service = start(&spec, shared.clone(), database).await?;
        config
            .peers
            .set_url(spec.name, format!("http://{}", service.addr));
        running.push(service);
    }
    let url = |name: &str| config.peers.url(name).unwrap_or_default().to_owned();
    let (directory, ledger, narrative) = (url("directory"), url("ledger"), url("narrative"));
    let coordinator = start(&phoenix_coordinator::spec(), Arc::new(config), database).await?;
    let endpoints = Endpoints {
        coordinator: format!("http://{}", coordinator.addr),
        ledger,
        narrative,
        directory,
    };
    running.push(coordinator);
    Ok(endpoints)
}

async fn start(
    spec: &ServiceSpec,
    config: Arc<RuntimeConfig>,
    database: &Database,
) -> anyhow::Result<RunningService> {
    let pool = database.connect(spec.name, &config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    phoenix_runtime::server::start(
        spec,
        config,
        pool,
        listener,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
}
