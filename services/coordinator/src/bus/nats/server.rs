//! A `nats-server -js` of its own, for tests and `phoenix bench bus`: on a free loopback port,
//! its store in a fresh temporary directory, stopped (and the directory removed) when dropped.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where `nats-server` is looked for: `PHOENIX_NATS_SERVER`, then `PATH`, then `/usr/sbin`
/// (where the Debian package puts it).
pub fn binary() -> anyhow::Result<PathBuf> {
    find(
        std::env::var_os("PHOENIX_NATS_SERVER"),
        &std::env::var_os("PATH").unwrap_or_default(),
        Path::new("/usr/sbin"),
    )
}

fn find(given: Option<OsString>, path: &OsStr, fallback: &Path) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        let given = PathBuf::from(given);
        anyhow::ensure!(
            given.is_file(),
            "PHOENIX_NATS_SERVER={} is not a file",
            given.display()
        );
        return Ok(given);
    }
    std::env::split_paths(path)
        .chain([fallback.to_path_buf()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "nats-server was not found on PATH nor in {}: install it \
                 (`apt-get install nats-server` on Debian; .ci/run does) or point \
                 PHOENIX_NATS_SERVER at the binary",
                fallback.display()
            )
        })
}

/// A running `nats-server -js`.
#[derive(Debug)]
pub struct LocalNatsServer {
    child: std::process::Child,
    store: PathBuf,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
}

impl LocalNatsServer {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = binary()?;
        let store = std::env::temp_dir().join(format!("phoenix-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&store)?;
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let child = std::process::Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("could not start {}: {e}", binary.display()))?;
        let mut server = Self {
            child,
            store,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("nats-server exited at start: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("nats-server did not listen on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LocalNatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let nowhere = Path::new("/nonexistent-phoenix");
        let error = find(None, OsStr::new("/nonexistent-phoenix/bin"), nowhere)
            .unwrap_err()
            .to_string();
        assert!(error.contains("apt-get install nats-server"), "{error}");
        let error = find(
            Some("/nonexistent-phoenix/nats".into()),
            OsStr::new(""),
            nowhere,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("PHOENIX_NATS_SERVER"), "{error}");
    }
}
