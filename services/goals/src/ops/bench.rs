//! `phoenix bench goals`: SearchSimilar over a seeded Gaussian mixture.
//!
//! It registers a model of `--dims` dimensions (its own per run), drops the model's index,
//! loads `--vectors` vectors (100 clusters, spread over 1,000 users) straight through SQL,
//! builds the HNSW index (timed: `build_s`), then measures SearchSimilar (k = 10) over gRPC
//! from `--clients` clients, each on its own connection; the **SQL floor**, the same search
//! statement (the same transaction with `hnsw.ef_search`, the same query) through the store
//! on a pool of the service's size, from as many clients; and recall@10 of 200 held-out
//! queries against an exact search done here in memory, unfiltered and filtered by user.
//! Prints each phase on standard error, then one line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use phoenix_proto::goals::v1 as pb;
use phoenix_proto::goals::v1::goals_service_client::GoalsServiceClient;
use phoenix_runtime::bench::{Phase, drive};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::embedding::{Model, NewEmbedding, Search, ef_search};
use crate::store::embeddings::{self as store, Plan};

const K: i32 = 10;
const CLUSTERS: usize = 100;
const USERS: usize = 1000;
const QUERIES: usize = 200;
/// Rows per load statement.
const LOAD_BATCH: usize = 1000;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Vectors loaded before measuring.
    #[arg(long, default_value_t = 100_000)]
    pub vectors: usize,
    /// Dimensions of every vector (1 to 2,000; 1,536 is OpenAI's small model).
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// The searches' ef_search (0: the service's default, max(40, 2k)).
    #[arg(long, default_value_t = 100)]
    pub ef_search: i32,
    /// Length of each measured phase.
    #[arg(long, default_value = "10s", value_parser = phoenix_runtime::config::positive_duration)]
    pub duration: Duration,
    /// Unmeasured searches first (connections open, statements prepared, pages cached).
    #[arg(long, default_value = "3s", value_parser = phoenix_runtime::config::positive_duration)]
    pub warmup: Duration,
    /// Seed of the mixture.
    #[arg(long, default_value_t = 16)]
    pub seed: u64,
    /// A running goals service instead of one started here; loading then needs DATABASE_URL.
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Results {
    pub vectors: usize,
    pub dims: usize,
    pub build_s: f64,
    pub grpc: Phase,
    pub sql: Phase,
    pub recall: f64,
    pub filtered_recall: f64,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        format!(
            "goals-bench vectors={} dims={} build_s={:.1} qps={:.0} sql_qps={:.0} ratio={:.2} p99_ms={:.2} recall_at_10={:.3} filtered_recall_at_10={:.3}",
            self.vectors,
            self.dims,
            self.build_s,
            self.grpc.per_second(),
            self.sql.per_second(),
            self.grpc.per_second() / self.sql.per_second().max(f64::EPSILON),
            self.grpc.p99_ms,
            self.recall,
            self.filtered_recall
        )
    }
}

/// The seeded data: vectors with their user, and held-out queries with theirs.
struct Mixture {
    vectors: Vec<Vec<f32>>,
    users: Vec<Uuid>,
    owner: Vec<usize>,
    queries: Vec<Vec<f32>>,
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f32 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

impl Mixture {
    fn new(args: &BenchArgs) -> Self {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let centers: Vec<Vec<f32>> = (0..CLUSTERS)
            .map(|_| (0..args.dims).map(|_| normal(&mut rng)).collect())
            .collect();
        let draw = |rng: &mut StdRng| {
            let center = &centers[rng.random_range(0..CLUSTERS)];
            unit(center.iter().map(|c| c + 0.6 * normal(rng)).collect())
        };
        let vectors: Vec<Vec<f32>> = (0..args.vectors).map(|_| draw(&mut rng)).collect();
        let queries = (0..QUERIES).map(|_| draw(&mut rng)).collect();
        let users = (0..USERS).map(|_| Uuid::from_u128(rng.random())).collect();
        let owner = (0..args.vectors).map(|i| i % USERS).collect();
        Self {
            vectors,
            users,
            owner,
            queries,
        }
    }

    /// The exact k nearest (cosine; every vector is a unit one) among those `keep` allows.
    fn exact(&self, query: &[f32], keep: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut scored: Vec<(f32, usize)> = (0..self.vectors.len())
            .filter(|i| keep(*i))
            .map(|i| {
                let dot: f32 = self.vectors[i].iter().zip(query).map(|(a, b)| a * b).sum();
                (-dot, i)
            })
            .collect();
        let k = (K as usize).min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        scored.truncate(k);
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

async fn load(pool: &PgPool, model: &Model, mixture: &Mixture) -> anyhow::Result<()> {
    let mut connection = pool.acquire().await?;
    for start in (0..mixture.vectors.len()).step_by(LOAD_BATCH) {
        let end = (start + LOAD_BATCH).min(mixture.vectors.len());
        let rows: Vec<NewEmbedding> = (start..end)
            .map(|i| NewEmbedding {
                model: model.name.clone(),
                entity_type: "bench".into(),
                entity_id: i.to_string(),
                chunk: 0,
                user_id: mixture.users[mixture.owner[i]],
                content: format!("vector {i}"),
                vector: mixture.vectors[i].clone(),
                metadata: serde_json::Map::new(),
            })
            .collect();
        store::upsert(&mut connection, model, &rows, chrono::Utc::now()).await?;
        if end.is_multiple_of(20_000) {
            eprintln!("bench: loaded {end} vectors");
        }
    }
    Ok(())
}

/// Builds the model's index and answers how long it took.
async fn build(pool: &PgPool, model: &Model) -> anyhow::Result<f64> {
    let mut connection = pool.acquire().await?;
    // The graph of 100,000 vectors does not fit PostgreSQL's default 64 MB: building it
    // in memory is what makes the build minutes rather than hours.
    sqlx::query("SET maintenance_work_mem = '2GB'")
        .execute(&mut *connection)
        .await?;
    let started = Instant::now();
    store::create_index(&mut connection, model).await?;
    let seconds = started.elapsed().as_secs_f64();
    sqlx::query("RESET maintenance_work_mem")
        .execute(&mut *connection)
        .await?;
    sqlx::query("ANALYZE embeddings")
        .execute(&mut *connection)
        .await?;
    Ok(seconds)
}

fn request(model: &str, query: &[f32], user: Option<Uuid>, ef: i32) -> pb::SearchSimilarRequest {
    pb::SearchSimilarRequest {
        model: model.into(),
        vector: query.to_vec(),
        k: K,
        user_id: user.map(|u| u.to_string()).unwrap_or_default(),
        entity_type: String::new(),
        ef_search: ef,
    }
}

/// recall@10 of the queries over gRPC, unfiltered or each filtered by its user.
async fn recall(
    client: &mut GoalsServiceClient<Channel>,
    model: &str,
    mixture: &Mixture,
    ef: i32,
    filtered: bool,
) -> anyhow::Result<f64> {
    let (mut hits, mut wanted) = (0usize, 0usize);
    for (q, query) in mixture.queries.iter().enumerate() {
        let user = q % USERS;
        let exact = if filtered {
            mixture.exact(query, |i| mixture.owner[i] == user)
        } else {
            mixture.exact(query, |_| true)
        };
        let asked = request(model, query, filtered.then(|| mixture.users[user]), ef);
        let found = client.search_similar(asked).await?.into_inner().results;
        let found: Vec<usize> = found
            .iter()
            .filter_map(|r| r.entity_id.parse().ok())
            .collect();
        hits += exact.iter().filter(|i| found.contains(i)).count();
        wanted += exact.len();
    }
    Ok(hits as f64 / wanted.max(1) as f64)
}

async fn clients(url: &str, count: usize) -> anyhow::Result<Vec<GoalsServiceClient<Channel>>> {
    Ok(phoenix_runtime::bench::channels(url, count)
        .await?
        .into_iter()
        .map(|channel| GoalsServiceClient::new(channel).max_decoding_message_size(64 << 20))
        .collect())
}

pub async fn run(url: &str, pool: PgPool, args: &BenchArgs) -> anyhow::Result<Results> {
    anyhow::ensure!(
        (1..=2000).contains(&args.dims),
        "--dims must be 1 to 2000 (pgvector's HNSW limit)"
    );
    anyhow::ensure!(args.vectors >= 1000, "--vectors must be at least 1000");
    let mut connections = clients(url, args.clients.max(1)).await?;
    let name = format!(
        "bench-{}-{}",
        args.dims,
        &Uuid::new_v4().simple().to_string()[..8]
    );
    connections[0]
        .register_embedding_model(pb::RegisterEmbeddingModelRequest {
            model: Some(pb::EmbeddingModel {
                name: name.clone(),
                dimensions: i32::try_from(args.dims)?,
                create_time: None,
            }),
        })
        .await?;
    let model = store::model_named(&pool, &name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("model {name} was registered but is not there"))?;
    eprintln!(
        "bench: generating {} vectors of {} dimensions",
        args.vectors, args.dims
    );
    let mixture = Arc::new(Mixture::new(args));
    store::drop_index(&mut *pool.acquire().await?, &model).await?;
    load(&pool, &model, &mixture).await?;
    let build_s = build(&pool, &model).await?;
    eprintln!("bench: HNSW index built in {build_s:.1} s");

    let recall_at_10 = recall(&mut connections[0], &name, &mixture, args.ef_search, false).await?;
    let filtered = recall(&mut connections[0], &name, &mixture, args.ef_search, true).await?;
    eprintln!("bench: recall@10 {recall_at_10:.3}, filtered by user {filtered:.3}");

    let connections = Arc::new(connections);
    let counter = Arc::new(AtomicU64::new(0));
    let grpc = {
        let (mixture, connections, counter, name) = (
            mixture.clone(),
            connections.clone(),
            counter.clone(),
            name.clone(),
        );
        let ef = args.ef_search;
        move |client: usize| {
            let (mixture, connections, counter, name) = (
                mixture.clone(),
                connections.clone(),
                counter.clone(),
                name.clone(),
            );
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                let query = &mixture.queries[n % QUERIES];
                let mut grpc = connections[client].clone();
                grpc.search_similar(request(&name, query, None, ef)).await?;
                anyhow::Ok(1)
            }
        }
    };
    drive(args.clients, args.warmup, grpc.clone()).await?;
    let grpc = drive(args.clients, args.duration, grpc).await?;
    grpc.report("SearchSimilar (gRPC)", "searches");

    let floor = {
        let (mixture, counter, pool, model) = (
            mixture.clone(),
            counter.clone(),
            pool.clone(),
            model.clone(),
        );
        let ef = ef_search(args.ef_search, K);
        move |_client: usize| {
            let (mixture, counter, pool, model) = (
                mixture.clone(),
                counter.clone(),
                pool.clone(),
                model.clone(),
            );
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                let search = Search {
                    model: model.name.clone(),
                    vector: mixture.queries[n % QUERIES].clone(),
                    k: K,
                    user_id: None,
                    entity_type: None,
                    ef_search: ef,
                };
                store::search(&pool, &model, &search, Plan::Index { iterative: false }).await?;
                anyhow::Ok(1)
            }
        }
    };
    drive(args.clients, args.warmup, floor.clone()).await?;
    let sql = drive(args.clients, args.duration, floor).await?;
    sql.report("the same search through SQL", "searches");
    Ok(Results {
        vectors: args.vectors,
        dims: args.dims,
        build_s,
        grpc,
        sql,
        recall: recall_at_10,
        filtered_recall: filtered,
    })
}
