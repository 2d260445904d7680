//! `phoenix test`: every test of the workspace against one throwaway PostgreSQL (and, for the
//! bus's NATS backend, a real `nats-server`, installed here when the machine has none).

use anyhow::Context;
use phoenix_runtime::RuntimeConfig;
use phoenix_runtime::embedded::EmbeddedPostgres;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Extra arguments for `cargo test`, e.g. `-p phoenix-directory` or `-- a_test_name`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_args: Vec<String>,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

/// One server for the whole run, shared by every test binary through the test kit.
pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    let server = EmbeddedPostgres::start_throwaway(&args.runtime.embedded)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The whole workspace unless the caller picked packages.
    let picked = args
        .cargo_args
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package") || a.starts_with("-p"));
    let mut command = std::process::Command::new(cargo);
    if let Some(nats_server) = provide_nats_server()? {
        command.env("PHOENIX_NATS_SERVER", nats_server);
    }
    command.arg("test");
    if !picked {
        command.arg("--workspace");
    }
    let status = command
        .args(&args.cargo_args)
        .env("PHOENIX_TEST_DATABASE_URL", server.url("postgres"))
        .status()
        .context("cannot run cargo test")?;
    server.stop();
    anyhow::ensure!(status.success(), "tests failed ({status})");
    Ok(())
}

/// The coordinator's NATS bus tests start a real `nats-server` (Debian package `nats-server`).
/// When none is found (see [`phoenix_coordinator::bus::nats::server::binary`]): as root,
/// `apt-get install` it; otherwise download the package and unpack it under `target/`, and
/// answer where the binary is. A machine where neither works gets a clear error up front, not
/// failing tests later.
fn provide_nats_server() -> anyhow::Result<Option<std::path::PathBuf>> {
    use std::process::Command;
    if phoenix_coordinator::bus::nats::server::binary().is_ok() {
        return Ok(None);
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let how = "install it (`apt-get install nats-server`) or set PHOENIX_NATS_SERVER to the binary";
    if is_root {
        eprintln!("nats-server not found: installing the Debian package nats-server");
        let installed = Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server",
            ])
            .status()
            .context("cannot run apt-get")?;
        anyhow::ensure!(
            installed.success(),
            "apt-get could not install nats-server: {how}"
        );
        return Ok(None);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    let folder = std::path::Path::new(&target)
        .join("tools")
        .join("nats-server");
    let binary = folder.join("usr/sbin/nats-server");
    if !binary.is_file() {
        eprintln!("nats-server not found: unpacking the Debian package under {folder:?}");
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {folder:?}"))?;
        let unpacked = Command::new("sh")
            .current_dir(&folder)
            .args([
                "-c",
                "apt-get download nats-server && dpkg-deb -x nats-server_*.deb .",
            ])
            .status()
            .context("cannot run apt-get download")?;
        anyhow::ensure!(
            unpacked.success() && binary.is_file(),
            "nats-server could not be downloaded: {how}"
        );
    }
    Ok(Some(std::fs::canonicalize(&binary)?))
}
