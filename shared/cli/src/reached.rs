//! The service a command talks to.

use std::sync::Arc;

use anyhow::Context;
use phoenix_runtime::config::DatabaseSource;
use phoenix_runtime::{Database, RuntimeConfig, ServiceSpec};

/// A service a command talks to: one already running (`--target`), or one started here, in
/// this process, on its database (its PHOENIX_<SERVICE>_DATABASE_URL, DATABASE_URL or the embedded one). Either way, a pool on the
/// service's schema when a database is known, for what a command does below the API.
pub struct Reached {
    /// Where the service listens.
    pub url: String,
    pub channel: tonic::transport::Channel,
    pub pool: Option<sqlx::PgPool>,
    pub local: Option<(phoenix_runtime::RunningService, Database)>,
}

impl Reached {
    pub async fn start(
        spec: ServiceSpec,
        target: Option<String>,
        config: RuntimeConfig,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        if let Some(url) = target {
            let channel = tonic::transport::Channel::from_shared(url.clone())
                .with_context(|| format!("--target {url:?} is not a URL"))?
                .connect()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            let pool = match config.database_of(spec.name) {
                DatabaseSource::Own { url, .. } | DatabaseSource::Shared { url } => {
                    config.check_database_urls([spec.name])?;
                    Some(phoenix_runtime::server::connect_pool(url, spec.name, &config).await?)
                }
                DatabaseSource::Embedded => None,
            };
            return Ok(Self {
                url,
                channel,
                pool,
                local: None,
            });
        }
        let database = Database::open_for(&config, &[spec.name]).await?;
        let started = async {
            let pool = database.connect(spec.name, &config).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let running = phoenix_runtime::server::start(
                &spec,
                config.clone(),
                pool.clone(),
                listener,
                tokio_util::sync::CancellationToken::new(),
            )
            .await?;
            let url = format!("http://{}", running.addr);
            let channel = tonic::transport::Channel::from_shared(url.clone())?
                .connect()
                .await?;
            anyhow::Ok((url, channel, pool, running))
        }
        .await;
        match started {
            Ok((url, channel, pool, running)) => Ok(Self {
                url,
                channel,
                pool: Some(pool),
                local: Some((running, database)),
            }),
            Err(error) => {
                database.close().await;
                Err(error)
            }
        }
    }

    /// Stops what was started here.
    pub async fn close(self) {
        if let Some((running, database)) = self.local {
            if let Err(error) = running.shutdown().await {
                eprintln!("warning: the local service stopped with an error: {error:#}");
            }
            database.close().await;
        }
    }
}
