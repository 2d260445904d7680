//! The embedded PostgreSQL 16 (with pgvector) that Phoenix starts when `DATABASE_URL` is unset.
//!
//! Server binaries come from `PHOENIX_PG_BIN`; else from an installed PostgreSQL whose extension
//! folder has pgvector; else from the `pgserver` wheel on PyPI, which ships PostgreSQL 16 and
//! pgvector as plain binaries in its `pginstall/` folder: pip downloads it once into the cache
//! folder and Python's zipfile unpacks it (nothing of the package is imported or run).
//!
//! PostgreSQL refuses to run as root, so when Phoenix is root the server runs as an unprivileged
//! user (`PHOENIX_PG_USER`, default `nobody`) that owns the data folder.
//!
//! The server is a child of a dedicated thread that lives as long as the server: the child gets
//! SIGINT (fast shutdown) when that thread dies, so a crashed or killed Phoenix never leaves an
//! orphaned server holding the data folder.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::EmbeddedConfig;

/// The pgserver release whose `pginstall/` folder is used (PostgreSQL 16.2, pgvector).
const PGSERVER_VERSION: &str = "0.1.4";

/// How the embedded server is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is flushed: for data that must survive a power cut.
    Durable,
    /// No fsync: for throwaway test servers, several times faster.
    Ephemeral,
}

/// A running embedded server. Stop it with [`EmbeddedPostgres::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    port: u16,
    pid: i32,
    data_dir: PathBuf,
    /// Signalled when the server process has exited; `None` once it was awaited.
    exited: Mutex<Option<mpsc::Receiver<()>>>,
    /// Throwaway servers delete their folder when they stop.
    throwaway: bool,
    /// The data folder was initialized by this start, for a durable server: its WAL is to be
    /// made ready before the first database is used ([`prepare_database`]).
    new_durable: bool,
}

impl EmbeddedPostgres {
    /// Finds binaries, initializes `data_dir` if it is new, and starts the server on a free
    /// loopback port. Blocks until the server accepts connections.
    pub fn start(
        config: &EmbeddedConfig,
        data_dir: &Path,
        durability: Durability,
    ) -> anyhow::Result<Self> {
        let bin = find_binaries(config)?;
        let owner = ServerUser::for_current_process(&config.pg_user)?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("PHOENIX_DATA_DIR: cannot create {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        if let Some(user) = &owner {
            user.take_ownership(&data_dir)?;
            user.check_reachable(&data_dir)?;
            user.check_reachable(&bin)?;
        }
        let log_path = data_dir.with_extension("log");
        let new = !data_dir.join("PG_VERSION").exists();
        if new {
            tracing::info!(data_dir = %data_dir.display(), "initializing a new PostgreSQL data folder");
            let mut initdb = Command::new(bin.join("initdb"));
            initdb
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-D",
                ])
                .arg(&data_dir);
            if durability == Durability::Ephemeral {
                initdb.arg("--no-sync");
            }
            run_as(&mut initdb, owner.as_ref());
            let output = initdb
                .output()
                .with_context(|| format!("cannot run {}", bin.join("initdb").display()))?;
            if !output.status.success() {
                bail!(
                    "initdb failed for {}: {}",
                    data_dir.display(),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }

        let port = free_port()?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data_dir)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=300",
            ])
            .args(
                config
                    .pg_settings
                    .iter()
                    .flat_map(|setting| ["-c", setting]),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if durability == Durability::Ephemeral {
            postgres.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        run_as(&mut postgres, owner.as_ref());
        // Its own process group: Ctrl-C on `phoenix up` must not reach the server directly, or it
        // would stop while the services still drain their calls. Phoenix stops it last.
        postgres.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            postgres.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }

        let (started_tx, started_rx) = mpsc::channel();
        let (exited_tx, exited_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("embedded-postgres".to_owned())
            .spawn(move || {
                // This thread is the server's parent for the parent-death signal: it must outlive
                // the server, so it only returns once the server has exited.
                match postgres.spawn() {
                    Ok(mut child) => {
                        let _ = started_tx.send(Ok(child.id()));
                        let _ = child.wait();
                        let _ = exited_tx.send(());
                    }
                    Err(error) => {
                        let _ = started_tx.send(Err(error));
                    }
                }
            })?;
        let pid = started_rx
            .recv()?
            .with_context(|| format!("cannot start {}", bin.join("postgres").display()))?;
        let server = Self {
            port,
            pid: i32::try_from(pid)?,
            data_dir: data_dir.clone(),
            exited: Mutex::new(None),
            throwaway: false,
            new_durable: new && durability == Durability::Durable,
        };

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if exited_rx.try_recv().is_ok() {
                bail!(
                    "PostgreSQL exited during start:\n{}",
                    log_tail(&log_path, log_start)
                );
            }
            // The port was free a moment ago, not reserved: make sure the server answering on it
            // is the one we started on our data folder.
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
                && postmaster_is(&data_dir, server.pid, port)
                && server.accepts_queries(&bin)
            {
                *server
                    .exited
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(exited_rx);
                break;
            }
            if Instant::now() > deadline {
                *server
                    .exited
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(exited_rx);
                bail!(
                    "PostgreSQL did not accept connections within 60 s:\n{}",
                    log_tail(&log_path, log_start)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!(port, data_dir = %data_dir.display(), bin = %bin.display(), "embedded PostgreSQL is up");
        Ok(server)
    }

    /// A server for one test run: a new folder under the temp dir, fsync off, deleted when the
    /// server stops. Folders left by runs that died are deleted here.
    pub fn start_throwaway(config: &EmbeddedConfig) -> anyhow::Result<Self> {
        let root = std::env::temp_dir();
        remove_dead_throwaways(&root);
        let data_dir = root.join(format!("{THROWAWAY_PREFIX}{}", std::process::id()));
        let _ = fs::remove_dir_all(&data_dir);
        let mut server = Self::start(config, &data_dir, Durability::Ephemeral)?;
        server.throwaway = true;
        Ok(server)
    }

    fn accepts_queries(&self, bin: &Path) -> bool {
        // pg_isready distinguishes "starting up" from "accepting connections".
        Command::new(bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .status()
            .map(|status| status.success())
            .unwrap_or(true)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// URL of a database on this server, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Fast shutdown: open transactions roll back, the data is consistent on disk.
    pub fn stop(self) {
        self.shutdown();
    }

    fn shutdown(&self) {
        let Some(exited) = self
            .exited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        // A server that already exited was reaped: its pid may belong to someone else now.
        if exited.try_recv().is_ok() {
            return;
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's, not yet reaped
        // (the thread that reaps it signals `exited` first).
        unsafe {
            libc::kill(self.pid, libc::SIGINT);
        }
        if exited.recv_timeout(Duration::from_secs(30)).is_err() {
            tracing::warn!(
                pid = self.pid,
                "PostgreSQL did not stop within 30 s; killing it"
            );
            // SAFETY: as above.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
            let _ = exited.recv_timeout(Duration::from_secs(10));
        }
        tracing::info!(data_dir = %self.data_dir.display(), "embedded PostgreSQL stopped");
        if self.throwaway {
            let _ = fs::remove_dir_all(&self.data_dir);
            let _ = fs::remove_file(self.data_dir.with_extension("log"));
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Creates `database` (if missing) with the pgvector extension, which the goals context needs.
pub async fn prepare_database(server: &EmbeddedPostgres, database: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&server.url("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::raw_sql(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut admin)
            .await?;
    }
    if server.new_durable && !exists {
        prepare_wal(&mut admin).await?;
    }
    admin.close().await?;
    let url = server.url(database);
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS vector")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(url)
}

/// WAL segments a new data folder gets ready before its first use: 1 GB, about what one
/// `phoenix bench ledger` writes.
const PREPARED_WAL_SEGMENTS: u32 = 64;

/// Makes a new cluster's WAL ready, once. A new cluster has one WAL segment, and each further
/// one is created, zero-filled (16 MB written and synced), by the commit that first needs it,
/// while every other commit waits: on a new data folder the ledger's p99 latency had those
/// stalls (30–66 ms against 22 ms on a used one). A used cluster recycles its old segments
/// instead. So a new one writes [`PREPARED_WAL_SEGMENTS`] segments now, then checkpoints, and
/// keeps them for reuse (`min_wal_size` among the default settings): about a second, once.
async fn prepare_wal(admin: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let started = Instant::now();
    sqlx::raw_sql(&format!(
        "DO $$ BEGIN
             FOR i IN 1..{PREPARED_WAL_SEGMENTS} LOOP
                 PERFORM pg_logical_emit_message(false, 'phoenix', 'wal');
                 PERFORM pg_switch_wal();
             END LOOP;
         END $$;
         CHECKPOINT;"
    ))
    .execute(&mut *admin)
    .await?;
    tracing::info!(
        segments = PREPARED_WAL_SEGMENTS,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "WAL of the new data folder made ready"
    );
    Ok(())
}

/// The URL of `database` on a server that another Phoenix process (`phoenix up`, say) already
/// runs in `data_dir`, when there is one: its `postmaster.pid` says it is ready and its port
/// answers. PostgreSQL allows one server per data folder, so an operator's command
/// (`phoenix audit coordinator` next to `phoenix up`) joins that server instead of failing on
/// its lock file.
pub fn running_server_url(data_dir: &Path, database: &str) -> Option<String> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let pid = lines.first()?.trim().parse::<i32>().ok()?;
    let port = lines.get(3)?.trim().parse::<u16>().ok()?;
    // The eighth line is the server's status; anything but "ready" is starting or stopping.
    if lines.get(7).map(|l| l.trim()) != Some("ready") || pid <= 0 {
        return None;
    }
    // SAFETY: kill with signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !alive {
        return None;
    }
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).ok()?;
    Some(format!("postgres://postgres@127.0.0.1:{port}/{database}"))
}

/// Whether `postmaster.pid` in `data_dir` names this process and port (its first and fourth
/// lines, as PostgreSQL writes them).
fn postmaster_is(data_dir: &Path, pid: i32, port: u16) -> bool {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().and_then(|l| l.trim().parse::<i32>().ok()) == Some(pid)
        && lines.get(3).and_then(|l| l.trim().parse::<u16>().ok()) == Some(port)
}

const THROWAWAY_PREFIX: &str = "phoenix-test-pg-";

/// Throwaway folders (and their logs) whose process is gone: its server died with it.
fn remove_dead_throwaways(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(THROWAWAY_PREFIX))
            .and_then(|rest| rest.split('.').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The folder with `postgres`, `initdb` and `pg_isready`, in the documented order of preference.
pub fn find_binaries(config: &EmbeddedConfig) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &config.pg_bin {
        anyhow::ensure!(
            bin.join("postgres").is_file() && bin.join("initdb").is_file(),
            "PHOENIX_PG_BIN: {} has no postgres and initdb binaries",
            bin.display()
        );
        return Ok(bin.clone());
    }
    if let Some(bin) = installed_with_pgvector() {
        return Ok(bin);
    }
    pgserver_binaries(&cache_dir(config)?)
}

/// An installed PostgreSQL server whose extension folder has pgvector (Debian layout or a
/// self-contained prefix).
fn installed_with_pgvector() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    candidates.extend(
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths),
    );
    candidates.into_iter().find(|bin| {
        if !bin.join("postgres").is_file() || !bin.join("initdb").is_file() {
            return false;
        }
        let major = bin
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        [
            bin.join("../share/extension/vector.control"),
            bin.join("../share/postgresql/extension/vector.control"),
            PathBuf::from(format!(
                "/usr/share/postgresql/{major}/extension/vector.control"
            )),
        ]
        .iter()
        .any(|control| control.is_file())
    })
}

fn cache_dir(config: &EmbeddedConfig) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &config.cache_dir {
        return Ok(dir.clone());
    }
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root's home is usually closed to the unprivileged server user.
        return Ok(PathBuf::from("/var/cache/phoenix"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .context(
            "PHOENIX_CACHE_DIR: neither XDG_CACHE_HOME nor HOME is set; set PHOENIX_CACHE_DIR",
        )?;
    Ok(base.join("phoenix"))
}

/// The `pginstall/bin` folder of the pgserver wheel, downloaded and unpacked on first use.
fn pgserver_binaries(cache: &Path) -> anyhow::Result<PathBuf> {
    // The wheel's layout is kept whole: its binaries find their vendored libpq through an RPATH
    // relative to themselves ($ORIGIN/../../../pgserver.libs).
    let install = cache.join(format!("pgserver-{PGSERVER_VERSION}"));
    let bin = install.join("pgserver/pginstall/bin");
    if bin.join("postgres").is_file() {
        return Ok(bin);
    }
    fs::create_dir_all(cache)
        .with_context(|| format!("PHOENIX_CACHE_DIR: cannot create {}", cache.display()))?;
    let staging = cache.join(format!(".download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    tracing::info!(cache = %cache.display(), "downloading PostgreSQL 16 with pgvector (PyPI package pgserver {PGSERVER_VERSION}), once");
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .context("no PostgreSQL with pgvector found, and no python3 to download one: install Python with pip, or set PHOENIX_PG_BIN or DATABASE_URL")?;
    let download = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
        ])
        .args([
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
        ])
        .arg(format!("pgserver=={PGSERVER_VERSION}"))
        .arg("-d")
        .arg(&staging)
        .output()?;
    if !download.status.success() {
        bail!(
            "pip could not download pgserver {PGSERVER_VERSION}: {}",
            String::from_utf8_lossy(&download.stderr)
        );
    }
    let wheel = fs::read_dir(&staging)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip reported success but left no wheel")?;
    let unpacked = staging.join("unpacked");
    let unzip = Command::new(python)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .output()?;
    if !unzip.status.success() {
        bail!(
            "cannot unpack {}: {}",
            wheel.display(),
            String::from_utf8_lossy(&unzip.stderr)
        );
    }
    // zipfile drops the executable bits.
    for entry in fs::read_dir(unpacked.join("pgserver/pginstall/bin"))? {
        let path = entry?.path();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    match fs::rename(&unpacked, &install) {
        Ok(()) => {}
        // Another process unpacked it first; theirs is as good as ours.
        Err(_) if bin.join("postgres").is_file() => {}
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot move PostgreSQL into {}", install.display()));
        }
    }
    let _ = fs::remove_dir_all(&staging);
    Ok(bin)
}

/// The unprivileged account the server runs as when Phoenix runs as root.
#[derive(Debug)]
struct ServerUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl ServerUser {
    fn for_current_process(name: &str) -> anyhow::Result<Option<Self>> {
        // SAFETY: geteuid cannot fail and has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let c_name = CString::new(name).context("PHOENIX_PG_USER: contains a NUL byte")?;
        // SAFETY: getpwnam returns null or a pointer to a static record, read at once, before
        // any other getpw* call on this thread.
        let record = unsafe { libc::getpwnam(c_name.as_ptr()) };
        if record.is_null() {
            bail!(
                "PHOENIX_PG_USER: Phoenix runs as root, so PostgreSQL must run as another user, and user {name:?} does not exist"
            );
        }
        // SAFETY: checked non-null above.
        let (uid, gid) = unsafe { ((*record).pw_uid, (*record).pw_gid) };
        anyhow::ensure!(
            uid != 0,
            "PHOENIX_PG_USER: {name:?} is root; PostgreSQL refuses to run as root"
        );
        Ok(Some(Self {
            name: name.to_owned(),
            uid,
            gid,
        }))
    }

    fn take_ownership(&self, dir: &Path) -> anyhow::Result<()> {
        fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
            if path.is_dir() && !path.is_symlink() {
                for entry in fs::read_dir(path)? {
                    chown_tree(&entry?.path(), uid, gid)?;
                }
            }
            Ok(())
        }
        if fs::metadata(dir)?.uid() != self.uid {
            chown_tree(dir, self.uid, self.gid)
                .with_context(|| format!("cannot hand {} to user {}", dir.display(), self.name))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    /// Every folder above `path` must let the server user pass.
    fn check_reachable(&self, path: &Path) -> anyhow::Result<()> {
        for dir in path.ancestors().skip(1) {
            let meta = fs::metadata(dir)?;
            let mode = meta.mode();
            let passable = mode & 0o001 != 0
                || (meta.uid() == self.uid && mode & 0o100 != 0)
                || (meta.gid() == self.gid && mode & 0o010 != 0);
            if !passable {
                bail!(
                    "PostgreSQL runs as {:?} because Phoenix runs as root, and that user cannot reach {}: \
                     run `chmod o+x {}` or point PHOENIX_DATA_DIR / PHOENIX_CACHE_DIR elsewhere",
                    self.name,
                    path.display(),
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

fn run_as(command: &mut Command, user: Option<&ServerUser>) {
    if let Some(user) = user {
        command
            .uid(user.uid)
            .gid(user.gid)
            .env("HOME", "/tmp")
            .env("USER", &user.name);
    }
}
