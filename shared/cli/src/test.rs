//! `phoenix test`: every test of the workspace against one throwaway PostgreSQL.

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
