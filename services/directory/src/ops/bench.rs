//! `phoenix bench directory`: GetUser from N concurrent clients (each on its own connection)
//! over a table of `--users` users, BatchGetUsers of 100 ids from as many clients, and the
//! reference client's cached resolve. Prints each phase, then one machine-readable line.
//!
//! The users are written straight through SQL (one statement per 10,000), as `bench-<run>-<n>`;
//! each run adds its own, so a data directory used twice holds both runs' users.

use std::time::{Duration, Instant};

use clap::Args;
use phoenix_directory_client::{ClientSettings, DirectoryClient, Outage};
use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_runtime::bench::{LoadArgs, Phase, channels, drive, pick};
use phoenix_runtime::client::ClientBuilder;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Users written before measuring.
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Clients, phase length, warm-up (of GetUser calls).
    #[command(flatten)]
    pub load: LoadArgs,
    /// Cached resolves timed (after one resolve of each of 10,000 ids fills the cache).
    #[arg(long, default_value_t = 1_000_000)]
    pub resolves: usize,
    /// A running directory (e.g. http://127.0.0.1:50051) instead of one started here; loading
    /// the users then needs DATABASE_URL.
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Results {
    pub users: i64,
    pub get_user: Phase,
    pub batch100: Phase,
    pub cached_resolve_ns: f64,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        format!(
            "directory-bench users={} getuser_tps={:.0} getuser_p99_ms={:.2} batch100_p99_ms={:.2} cached_resolve_ns={:.0}",
            self.users,
            self.get_user.per_second(),
            self.get_user.p99_ms,
            self.batch100.p99_ms,
            self.cached_resolve_ns
        )
    }
}

/// Writes `count` users through SQL and answers their ids.
async fn load_users(pool: &PgPool, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let run = Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    const CHUNK: usize = 10_000;
    let mut loaded = 0;
    while loaded < count {
        let size = CHUNK.min(count - loaded);
        sqlx::query(
            "INSERT INTO users (id, email, display_name, time_zone, username, conversion_score)
             SELECT gen_random_uuid(), 'bench-' || $1 || '-' || n || '@example.com',
                    'Bench User ' || n, 'Europe/Madrid', 'b' || $1 || '_' || n, (n % 10001)::smallint
             FROM generate_series($2::bigint, $3::bigint) AS n",
        )
        .bind(run)
        .bind(i64::try_from(loaded)?)
        .bind(i64::try_from(loaded + size - 1)?)
        .execute(pool)
        .await?;
        loaded += size;
    }
    sqlx::query("ANALYZE users").execute(pool).await?;
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE email LIKE 'bench-' || $1 || '-%'")
            .bind(run)
            .fetch_all(pool)
            .await?,
    )
}

pub async fn run(url: &str, pool: PgPool, args: &BenchArgs) -> anyhow::Result<Results> {
    anyhow::ensure!(args.users >= 100, "--users must be at least 100");
    eprintln!("bench: writing {} users", args.users);
    let ids = std::sync::Arc::new(load_users(&pool, args.users).await?);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await?;
    let connections = std::sync::Arc::new(
        channels(url, args.load.clients)
            .await?
            .into_iter()
            .map(DirectoryServiceClient::new)
            .collect::<Vec<_>>(),
    );
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));

    let get_user = {
        let (ids, connections, counter) = (ids.clone(), connections.clone(), counter.clone());
        move |client: usize| {
            let (ids, connections, counter) = (ids.clone(), connections.clone(), counter.clone());
            async move {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = ids[pick(n, ids.len())].to_string();
                let mut grpc = connections[client].clone();
                grpc.get_user(pb::GetUserRequest { id }).await?;
                anyhow::Ok(1)
            }
        }
    };
    drive(args.load.clients, args.load.warmup, get_user.clone()).await?;
    let get_user = drive(args.load.clients, args.load.duration, get_user).await?;
    get_user.report("GetUser", "calls");

    let batch = {
        let (ids, connections, counter) = (ids.clone(), connections.clone(), counter.clone());
        move |client: usize| {
            let (ids, connections, counter) = (ids.clone(), connections.clone(), counter.clone());
            async move {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ids = (0..100u64)
                    .map(|i| ids[pick(n * 131 + i, ids.len())].to_string())
                    .collect();
                let mut grpc = connections[client].clone();
                grpc.batch_get_users(pb::BatchGetUsersRequest { ids })
                    .await?;
                anyhow::Ok(1)
            }
        }
    };
    let batch100 = drive(args.load.clients, args.load.duration, batch).await?;
    batch100.report("BatchGetUsers(100)", "calls");

    let cached_resolve_ns = cached_resolve(url, &ids, args.resolves).await?;
    eprintln!("bench: cached resolve {cached_resolve_ns:.0} ns");
    Ok(Results {
        users,
        get_user,
        batch100,
        cached_resolve_ns,
    })
}

/// Nanoseconds per resolve of an id the reference client has fresh in its cache.
async fn cached_resolve(url: &str, ids: &[Uuid], resolves: usize) -> anyhow::Result<f64> {
    let channel = ClientBuilder::new(url).connect_lazy()?;
    let settings = ClientSettings {
        ttl: Duration::from_secs(3600),
        ..ClientSettings::default()
    };
    let resolver = DirectoryClient::new(channel, settings);
    let warm: Vec<Uuid> = ids.iter().take(10_000).copied().collect();
    let lookups = warm.iter().map(|id| resolver.user(*id, Outage::Strict));
    for found in futures_util::future::join_all(lookups).await {
        anyhow::ensure!(found?.is_some(), "a bench user did not resolve");
    }
    let started = Instant::now();
    for n in 0..resolves {
        let id = warm[n % warm.len()];
        std::hint::black_box(resolver.user(id, Outage::Strict).await?);
    }
    Ok(started.elapsed().as_nanos() as f64 / resolves.max(1) as f64)
}
