//! `phoenix bench conversations`: `--contacts` contacts (each with a context entry), then
//! `--clients` concurrent clients (each on its own connection) making a mix of calls for
//! `--duration`: 4 in 10 AppendMessage, 4 GetContext, 1 SetContext, 1 TakeReadyBuffer followed
//! by AckBuffer when a buffer was taken. Then the floor: the same statements straight through
//! SQL on the service's own pool (the service idle), from as many tasks (the store's own statements, without
//! gRPC, validation or the events a take and an acknowledgement append). Prints each phase,
//! then one machine-readable line.
//!
//! The contacts are written straight through SQL (`57310…`); a run on a database that has them
//! reuses them. Appends use a debounce of 0, so every buffer is ready at once and the takes
//! find work.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use phoenix_proto::conversations::v1 as pb;
use phoenix_proto::conversations::v1::conversations_service_client::ConversationsServiceClient;
use phoenix_runtime::bench::{Phase, drive};
use sqlx::PgPool;
use tonic::transport::Channel;

use crate::domain::{BufferPolicy, CacheKind, Phone};
use crate::store;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Contacts written before measuring.
    #[arg(long, default_value_t = 10_000, env = "PHOENIX_BENCH_CONTACTS")]
    pub contacts: usize,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 32, env = "PHOENIX_BENCH_CLIENTS")]
    pub clients: usize,
    /// Length of each measured phase.
    #[arg(long, default_value = "15s", env = "PHOENIX_BENCH_DURATION", value_parser = phoenix_runtime::config::positive_duration)]
    pub duration: Duration,
    /// Unmeasured calls first (connections open, statements prepared).
    #[arg(long, default_value = "3s", env = "PHOENIX_BENCH_WARMUP", value_parser = phoenix_runtime::config::positive_duration)]
    pub warmup: Duration,
    /// A running conversations service (e.g. http://127.0.0.1:50056) instead of one started
    /// here; loading the contacts and the floor then need DATABASE_URL.
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Results {
    pub contacts: usize,
    pub clients: usize,
    pub grpc: Phase,
    pub sql: Phase,
    pub get_context_p99_ms: f64,
    pub append_p99_ms: f64,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        format!(
            "conversations-bench contacts={} clients={} ops_per_s={:.0} sql_ops_per_s={:.0} ratio={:.2} get_context_p99_ms={:.2} append_p99_ms={:.2}",
            self.contacts,
            self.clients,
            self.grpc.per_second(),
            self.sql.per_second(),
            self.grpc.per_second() / self.sql.per_second().max(f64::EPSILON),
            self.get_context_p99_ms,
            self.append_p99_ms
        )
    }
}

fn phone(n: u64) -> String {
    (573_100_000_000 + n).to_string()
}

/// Writes the contacts and their context entries through SQL (once per database).
async fn load(pool: &PgPool, contacts: usize) -> anyhow::Result<()> {
    let last = i64::try_from(contacts)? - 1;
    sqlx::query(
        "INSERT INTO contacts (phone, name, chat_id, created_at, updated_at)
         SELECT (573100000000 + n)::text, 'Bench ' || n, (573100000000 + n)::text || '@s.whatsapp.net', now(), now()
         FROM generate_series(0, $1::bigint) AS n
         ON CONFLICT (phone) DO NOTHING",
    )
    .bind(last)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO cache_entries (phone, kind, value, ttl, written_at, expires_at)
         SELECT (573100000000 + n)::text, 'context', repeat('contexto ', 50), interval '1 day', now(), now() + interval '1 day'
         FROM generate_series(0, $1::bigint) AS n
         ON CONFLICT (phone, kind) DO UPDATE SET expires_at = EXCLUDED.expires_at",
    )
    .bind(last)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

/// Latencies of the two timed kinds, one slot per client (no contention between clients).
struct Timings {
    get_context: Vec<Mutex<Vec<Duration>>>,
    append: Vec<Mutex<Vec<Duration>>>,
}

impl Timings {
    fn new(clients: usize) -> Self {
        let slots = || (0..clients).map(|_| Mutex::new(Vec::new())).collect();
        Self {
            get_context: slots(),
            append: slots(),
        }
    }

    fn record(slots: &[Mutex<Vec<Duration>>], client: usize, took: Duration) {
        if let Ok(mut slot) = slots[client].lock() {
            slot.push(took);
        }
    }

    fn p99_ms(slots: &[Mutex<Vec<Duration>>]) -> f64 {
        let mut all: Vec<Duration> = slots
            .iter()
            .filter_map(|s| s.lock().ok())
            .flat_map(|s| s.clone())
            .collect();
        all.sort();
        all.get(((all.len() as f64 * 0.99) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
    }

    fn clear(&self) {
        for slot in self.get_context.iter().chain(&self.append) {
            if let Ok(mut slot) = slot.lock() {
                slot.clear();
            }
        }
    }
}

/// The operation of the mix for call `n`.
#[derive(Debug, Clone, Copy)]
enum Op {
    Append,
    GetContext,
    SetContext,
    TakeAndAck,
}

fn op(n: u64) -> Op {
    match n % 10 {
        0..=3 => Op::Append,
        4..=7 => Op::GetContext,
        8 => Op::SetContext,
        _ => Op::TakeAndAck,
    }
}

/// A contact for call `n` (a multiplicative hash spreads consecutive calls).
fn contact_of(n: u64, contacts: usize) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % contacts.max(1) as u64
}

async fn grpc_call(
    client: &mut ConversationsServiceClient<Channel>,
    n: u64,
    contacts: usize,
    timings: &Timings,
    index: usize,
) -> anyhow::Result<u64> {
    let phone = phone(contact_of(n, contacts));
    let started = Instant::now();
    match op(n) {
        Op::Append => {
            client
                .append_message(pb::AppendMessageRequest {
                    phone,
                    body: format!("mensaje {n}"),
                    debounce: Some(prost_types::Duration::default()),
                    ..Default::default()
                })
                .await?;
            Timings::record(&timings.append, index, started.elapsed());
        }
        Op::GetContext => {
            client
                .get_context(pb::GetContextRequest {
                    phone,
                    refresh: false,
                })
                .await?;
            Timings::record(&timings.get_context, index, started.elapsed());
        }
        Op::SetContext => {
            client
                .set_context(pb::SetContextRequest {
                    phone,
                    context: format!("contexto {n}"),
                    ttl: None,
                })
                .await?;
        }
        Op::TakeAndAck => {
            let taken = client
                .take_ready_buffer(pb::TakeReadyBufferRequest {
                    worker: format!("bench-{index}"),
                    lease: None,
                })
                .await?
                .into_inner();
            if let Some(buffer) = taken.buffer {
                client
                    .ack_buffer(pb::AckBufferRequest {
                        phone: buffer.phone,
                        lease_id: buffer.lease_id,
                    })
                    .await?;
            }
        }
    }
    Ok(1)
}

async fn sql_call(
    pool: &PgPool,
    n: u64,
    contacts: usize,
    timings: &Timings,
    index: usize,
) -> anyhow::Result<u64> {
    let phone = Phone::stored(phone(contact_of(n, contacts)));
    let started = Instant::now();
    match op(n) {
        Op::Append => {
            let policy = BufferPolicy {
                debounce: chrono::Duration::zero(),
                ..BufferPolicy::default()
            };
            store::buffers::append(pool, &phone, &format!("mensaje {n}"), None, &policy).await?;
            Timings::record(&timings.append, index, started.elapsed());
        }
        Op::GetContext => {
            store::caches::get(pool, &phone, CacheKind::Context, false).await?;
            Timings::record(&timings.get_context, index, started.elapsed());
        }
        Op::SetContext => {
            store::caches::set(
                pool,
                &phone,
                CacheKind::Context,
                &format!("contexto {n}"),
                chrono::Duration::hours(1),
            )
            .await?;
        }
        Op::TakeAndAck => {
            let mut transaction = pool.begin().await?;
            let leased = store::buffers::take(
                &mut transaction,
                &format!("floor-{index}"),
                crate::domain::DEFAULT_LEASE,
            )
            .await?;
            let leased = match leased {
                Some(leased) => {
                    store::buffers::messages(&mut *transaction, &leased.phone, leased.taken_up_to)
                        .await?;
                    transaction.commit().await?;
                    leased
                }
                None => return Ok(1),
            };
            let mut transaction = pool.begin().await?;
            if store::buffers::lock_lease(&mut transaction, &leased.phone)
                .await?
                .is_some()
            {
                store::buffers::acknowledge(
                    &mut transaction,
                    &leased.phone,
                    leased.lease_id,
                    leased.taken_up_to,
                )
                .await?;
            }
            transaction.commit().await?;
        }
    }
    Ok(1)
}

/// Runs the benchmark against the service at `url`, on `pool` (the service's schema).
pub async fn run(url: &str, pool: PgPool, args: &BenchArgs) -> anyhow::Result<Results> {
    anyhow::ensure!(
        args.contacts >= 1 && args.clients >= 1,
        "--contacts and --clients must be positive"
    );
    eprintln!("bench: writing {} contacts", args.contacts);
    load(&pool, args.contacts).await?;
    let connections: Vec<_> = phoenix_runtime::bench::channels(url, args.clients)
        .await?
        .into_iter()
        .map(ConversationsServiceClient::new)
        .collect();
    let connections = Arc::new(connections);
    let counter = Arc::new(AtomicU64::new(1));
    let timings = Arc::new(Timings::new(args.clients));
    let contacts = args.contacts;

    let grpc = {
        let (connections, counter, timings) =
            (connections.clone(), counter.clone(), timings.clone());
        move |index: usize| {
            let (connections, counter, timings) =
                (connections.clone(), counter.clone(), timings.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let mut client = connections[index].clone();
                grpc_call(&mut client, n, contacts, &timings, index).await
            }
        }
    };
    drive(args.clients, args.warmup, grpc.clone()).await?;
    timings.clear();
    let grpc = drive(args.clients, args.duration, grpc).await?;
    grpc.report("mix over gRPC", "ops");
    let get_context_p99_ms = Timings::p99_ms(&timings.get_context);
    let append_p99_ms = Timings::p99_ms(&timings.append);
    eprintln!(
        "bench: GetContext p99 {get_context_p99_ms:.2} ms, AppendMessage p99 {append_p99_ms:.2} ms"
    );

    // The service's own pool (same size and settings); the service is idle from here on.
    let sql = {
        let (pool, counter, timings) = (pool.clone(), counter.clone(), timings.clone());
        move |index: usize| {
            let (pool, counter, timings) = (pool.clone(), counter.clone(), timings.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                sql_call(&pool, n, contacts, &timings, index).await
            }
        }
    };
    drive(args.clients, args.warmup, sql.clone()).await?;
    let sql = drive(args.clients, args.duration, sql).await?;
    sql.report("the same statements through SQL", "ops");
    Ok(Results {
        contacts,
        clients: args.clients,
        grpc,
        sql,
        get_context_p99_ms,
        append_p99_ms,
    })
}
