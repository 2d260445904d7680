//! `phoenix bench bus`: a coordinator started here on one database (the embedded PostgreSQL, or
//! DATABASE_URL) for each backend in turn — its bus on PostgreSQL, then on NATS JetStream
//! served by a `nats-server -js` started here from PATH — and the bus benchmark against it.

use std::sync::Arc;

use phoenix_coordinator::bus::bench::{BusBenchArgs, BusResults};
use phoenix_coordinator::bus::nats::Backend;
use phoenix_coordinator::bus::nats::server::LocalNatsServer;
use phoenix_runtime::{Database, RuntimeConfig};

pub async fn run(args: BusBenchArgs, config: RuntimeConfig) -> anyhow::Result<Vec<BusResults>> {
    // Before anything starts: a missing nats-server is an error, not a skipped backend.
    if args.backends.contains(&Backend::Nats) {
        phoenix_coordinator::bus::nats::server::binary()?;
    }
    let database = Database::open_for(&config, &["coordinator"]).await?;
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for backend in args.backends.clone() {
        match one(&database, &config, backend, &args).await {
            Ok(result) => {
                println!("{}", result.line());
                results.push(result);
            }
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    database.close().await;
    outcome.map(|()| results)
}

async fn one(
    database: &Database,
    config: &RuntimeConfig,
    backend: Backend,
    args: &BusBenchArgs,
) -> anyhow::Result<BusResults> {
    let mut config = config.clone();
    let nats = match backend {
        Backend::Postgres => None,
        Backend::Nats => Some(LocalNatsServer::start().await?),
    };
    if let Some(nats) = &nats {
        config.service_args.extend([
            "--bus-backend=nats".to_owned(),
            format!("--bus-nats-url={}", nats.url),
        ]);
    }
    let spec = phoenix_coordinator::spec();
    let config = Arc::new(config);
    let pool = database.connect(spec.name, &config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let coordinator = phoenix_runtime::server::start(
        &spec,
        config,
        pool,
        listener,
        tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    let url = format!("http://{}", coordinator.addr);
    let result = phoenix_coordinator::bus::bench::run(&url, backend, args).await;
    if let Err(error) = coordinator.shutdown().await {
        eprintln!("warning: the coordinator stopped with an error: {error:#}");
    }
    drop(nats);
    result
}
