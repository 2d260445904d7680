//! The `phoenix` command on several databases: `migrate` and `up` put each service where its
//! `PHOENIX_<SERVICE>_DATABASE_URL` says, the others on `DATABASE_URL`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phoenix_testkit::TestDatabase;

/// `phoenix <args>` with `DATABASE_URL` = `shared`, `own` as each named service's own URL,
/// and nothing else from the caller's environment that could choose a database.
fn phoenix(args: &[&str], shared: &TestDatabase, own: &[(&str, &TestDatabase)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phoenix"));
    command
        .args(args)
        .env("DATABASE_URL", &shared.url)
        .env("PHOENIX_METRICS_ADDR", "127.0.0.1:0")
        .env("PHOENIX_LOG", "warn");
    for service in phoenix_registry::names() {
        command.env_remove(phoenix_runtime::config::database_variable(service));
    }
    for (service, database) in own {
        command.env(
            phoenix_runtime::config::database_variable(service),
            &database.url,
        );
    }
    command
}

/// The Phoenix schemas present in `database`, sorted.
async fn schemas_in(database: &TestDatabase) -> Vec<String> {
    database.schemas(&phoenix_registry::names()).await
}

fn all_but(excluded: &[&str]) -> Vec<String> {
    let mut rest: Vec<String> = phoenix_registry::names()
        .into_iter()
        .filter(|s| !excluded.contains(s))
        .map(|s| (*s).to_owned())
        .collect();
    rest.sort();
    rest
}

#[tokio::test]
async fn migrate_all_puts_each_schema_on_its_services_database() {
    let shared = TestDatabase::create().await;
    let own = TestDatabase::create().await;
    let output = phoenix(
        &["migrate", "all", "up"],
        &shared,
        &[("ledger", &own), ("conversations", &own)],
    )
    .output()
    .expect("run phoenix migrate");
    assert!(
        output.status.success(),
        "phoenix migrate all up failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(schemas_in(&own).await, ["conversations", "ledger"]);
    assert_eq!(
        schemas_in(&shared).await,
        all_but(&["ledger", "conversations"])
    );
}

#[tokio::test]
async fn a_bad_service_url_stops_the_command_naming_the_variable() {
    let shared = TestDatabase::create().await;
    let output = phoenix(&["migrate", "all", "status"], &shared, &[])
        .env(
            "PHOENIX_NARRATIVE_DATABASE_URL",
            "mysql://root:hunter2@db/narrative",
        )
        .output()
        .expect("run phoenix migrate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: PHOENIX_NARRATIVE_DATABASE_URL (--narrative-database-url) has an invalid value: not a PostgreSQL URL"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password is not echoed: {stderr}"
    );
    assert!(schemas_in(&shared).await.is_empty(), "nothing was migrated");
}

/// The first of `count` consecutive ports free now, below the kernel's ephemeral range (32768
/// on), which outgoing connections take their ports from. A port found by binding port 0 comes
/// from that range, and one of the run's own connections (a database's, a peer's) could take it
/// before `phoenix up` binds it: "Address already in use". Below the range only a program that
/// binds a fixed port can clash; the start depends on the process id, so two runs rarely
/// look at the same ports.
fn free_ports(count: u16) -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let offset = std::process::id() % SPAN;
    (0..SPAN)
        .step_by(usize::from(count))
        .map(|step| (FIRST + (offset + step) % (SPAN - u32::from(count))) as u16)
        .find(|&base| {
            // Held together while checked, then all released.
            let bound: Vec<_> = (base..base + count)
                .map_while(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
                .collect();
            bound.len() == usize::from(count)
        })
        .expect("consecutive free ports between 20000 and 32000")
}

#[tokio::test]
async fn up_serves_on_two_servers_and_stops_on_sigterm() {
    let shared = TestDatabase::create().await;
    let own = TestDatabase::create().await;
    let base = free_ports(7);
    let mut child = phoenix(
        &["up", "--base-port", &base.to_string()],
        &shared,
        &[("goals", &own), ("coordinator", &own)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start phoenix up");
    // Read stdout to its end (a closed pipe would fail phoenix's later prints), telling when
    // the services are up.
    let stdout = child.stdout.take().expect("stdout");
    let (up_tx, up_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut up_tx = Some(up_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Phoenix is up")
                && let Some(tx) = up_tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    // Its logs too, so that a full pipe never blocks it; kept for the failure messages.
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut logs);
        logs
    });
    let started = Instant::now();
    let up = tokio::time::timeout(Duration::from_secs(60), up_rx).await;
    if !matches!(up, Ok(Ok(()))) {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "phoenix up did not come up within {:?}: {}",
            started.elapsed(),
            logs.join().unwrap_or_default()
        );
    }
    assert_eq!(schemas_in(&own).await, ["coordinator", "goals"]);
    assert_eq!(
        schemas_in(&shared).await,
        all_but(&["goals", "coordinator"])
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait for phoenix up");
    assert!(
        exit.success(),
        "phoenix up stopped with an error ({exit}): {}",
        logs.join().unwrap_or_default()
    );
}
