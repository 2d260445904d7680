//! The cluster a chaos run drives: one PostgreSQL, the coordinator's participants served in this
//! process (with or without injected faults), and the coordinator in a process of its own, so it
//! can be killed with SIGKILL and started again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use phoenix_runtime::fault::FaultConfig;
use phoenix_runtime::{RunningService, RuntimeConfig, ServiceSpec};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;

/// The service killed and restarted.
pub const COORDINATOR: &str = "coordinator";

/// How long a started coordinator may take to report SERVING.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The participants, in this process, on addresses fixed for the whole run.
pub struct Participants {
    url: String,
    config: RuntimeConfig,
    addrs: Vec<(ServiceSpec, SocketAddr)>,
    running: Vec<RunningService>,
}

impl Participants {
    /// Every registered service but the coordinator, on `url`'s database, each on a port of
    /// its own; the configuration (`PHOENIX_<SERVICE>_URL`) knows every one, the coordinator's
    /// `coordinator_addr` included.
    pub async fn start(
        url: &str,
        mut config: RuntimeConfig,
        coordinator_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let mut listeners = Vec::new();
        for spec in phoenix_registry::specs() {
            if spec.name == COORDINATOR {
                continue;
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            listeners.push((spec, listener));
        }
        config
            .peers
            .set_url(COORDINATOR, format!("http://{coordinator_addr}"));
        let mut addrs = Vec::new();
        for (spec, listener) in &listeners {
            let addr = listener.local_addr()?;
            config.peers.set_url(spec.name, format!("http://{addr}"));
            addrs.push((*spec, addr));
        }
        let mut participants = Self {
            url: url.to_owned(),
            config,
            addrs,
            running: Vec::new(),
        };
        participants
            .serve(listeners, &FaultConfig::default())
            .await?;
        Ok(participants)
    }

    /// The configuration the services run with: every peer's URL.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Stops the participants and serves them again on the same addresses with `faults`.
    pub async fn restart(&mut self, faults: &FaultConfig) -> anyhow::Result<()> {
        self.stop().await;
        let mut listeners = Vec::new();
        for (spec, addr) in &self.addrs {
            // The port was ours a moment ago; the kernel gives it back unless someone raced us.
            let listener = bind_again(*addr).await?;
            listeners.push((*spec, listener));
        }
        self.serve(listeners, faults).await
    }

    async fn serve(
        &mut self,
        listeners: Vec<(ServiceSpec, tokio::net::TcpListener)>,
        faults: &FaultConfig,
    ) -> anyhow::Result<()> {
        let mut config = self.config.clone();
        config.faults = faults.clone();
        let config = Arc::new(config);
        for (spec, listener) in listeners {
            let pool = phoenix_runtime::server::connect_pool(&self.url, spec.name, &config).await?;
            self.running.push(
                phoenix_runtime::server::start(
                    &spec,
                    config.clone(),
                    pool,
                    listener,
                    CancellationToken::new(),
                )
                .await?,
            );
        }
        Ok(())
    }

    /// Stops every participant.
    pub async fn stop(&mut self) {
        for service in self.running.drain(..) {
            let name = service.name;
            if let Err(error) = service.shutdown().await {
                eprintln!("chaos: {name} stopped with an error: {error:#}");
            }
        }
    }
}

async fn bind_again(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!(
        "cannot listen on {addr} again: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// The coordinator as a child process (`phoenix serve coordinator`), on a fixed address.
pub struct CoordinatorProcess {
    addr: SocketAddr,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<tokio::process::Child>,
    /// Times it was started.
    pub starts: u32,
}

impl CoordinatorProcess {
    /// A coordinator on `addr` against `database_url`, finding its peers through `config`, its
    /// own settings from `settings` (`PHOENIX_COORDINATOR_*` and the like), logging to `log`.
    pub fn new(
        addr: SocketAddr,
        database_url: &str,
        config: &RuntimeConfig,
        settings: &[(String, String)],
        log: PathBuf,
    ) -> Self {
        let mut env = vec![
            ("DATABASE_URL".to_owned(), database_url.to_owned()),
            // Not a database of its own from the caller's shell: the run checks this one.
            (
                phoenix_runtime::config::database_variable("coordinator"),
                database_url.to_owned(),
            ),
            ("PHOENIX_GRPC_ADDR".to_owned(), addr.to_string()),
            ("PHOENIX_METRICS_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("PHOENIX_LOG_FORMAT".to_owned(), "json".to_owned()),
        ];
        for spec in phoenix_registry::specs() {
            if let Some(url) = config.peers.url(spec.name) {
                env.push((
                    format!("PHOENIX_{}_URL", spec.name.to_uppercase()),
                    url.to_owned(),
                ));
            }
        }
        env.extend(settings.iter().cloned());
        Self {
            addr,
            env,
            log,
            child: None,
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the process and waits until its health says SERVING.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command
            .args(["serve", COORDINATOR])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // The coordinator is the one crashing here, not the one faulting.
        for variable in [
            "PHOENIX_FAULT_UNAVAILABLE_RATIO",
            "PHOENIX_FAULT_STALL_RATIO",
            "PHOENIX_FAULT_STALL",
            "PHOENIX_FAULT_STALL_PHASE",
            "PHOENIX_FAULT_METHODS",
        ] {
            command.env_remove(variable);
        }
        let child = command.spawn().context("cannot start the coordinator")?;
        self.child = Some(child);
        self.starts += 1;
        self.wait_serving().await
    }

    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "the coordinator exited at start ({status}); its log is {}",
                    self.log.display()
                );
            }
            if serving(&self.url()).await {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the coordinator did not report SERVING within {START_LIMIT:?}; its log is {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown, no drain, no last write.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill().context("cannot kill the coordinator")?;
            let status = child.wait().await?;
            anyhow::ensure!(
                !status.success(),
                "the coordinator exited cleanly instead of being killed"
            );
        }
        Ok(())
    }
}

/// Whether the server at `url` reports SERVING.
pub async fn serving(url: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Channel::from_shared(url.to_owned()) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
    else {
        return false;
    };
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(1));
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(request)
        .await
        .is_ok_and(|answer| answer.into_inner().status == ServingStatus::Serving as i32)
}
