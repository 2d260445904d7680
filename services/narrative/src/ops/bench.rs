//! `phoenix bench narrative`: GetFragment personalised for a user, and ApplyDecision, from N
//! concurrent clients (each on its own connection) over `--fragments` fragments and
//! `--users` users' progress; then the same decision rows written straight through SQL.
//! Prints each phase, then one machine-readable line.
//!
//! Fragments (each with one decision) and the users' progress (each user has one fragment
//! unlocked and visited) are written through SQL, in statements of 10,000 rows. Each run adds
//! its own, so a data directory used twice holds both runs' rows.
//!
//! The floor is the cheapest correct way to make the same durable write: per decision one
//! statement (one transaction, one commit) that moves the user's stream version on, inserts
//! the decision, marks the fragment completed for the user, counts the completion, records
//! an idempotency key and appends the event — the rows ApplyDecision writes, without gRPC,
//! validation, requirement checks or a replay lookup.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use phoenix_proto::narrative::v1 as pb;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_runtime::bench::{LoadArgs, Phase, channels, drive, pick};
use prost::Message;
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Fragments written before measuring, each with one decision.
    #[arg(long, default_value_t = 10_000)]
    pub fragments: usize,
    /// Users whose progress is written before measuring.
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Clients, phase length, warm-up (of GetFragment calls).
    #[command(flatten)]
    pub load: LoadArgs,
    /// A running narrative (e.g. http://127.0.0.1:50057) instead of one started here; loading
    /// and the SQL phase then need DATABASE_URL.
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Results {
    pub fragments: i64,
    pub users: i64,
    pub get: Phase,
    pub decide: Phase,
    pub decide_sql: Phase,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        format!(
            "narrative-bench fragments={} users={} get_tps={:.0} get_p99_ms={:.2} decide_tps={:.0} decide_p99_ms={:.2} decide_sql_tps={:.0} ratio={:.2}",
            self.fragments,
            self.users,
            self.get.per_second(),
            self.get.p99_ms,
            self.decide.per_second(),
            self.decide.p99_ms,
            self.decide_sql.per_second(),
            self.decide.per_second() / self.decide_sql.per_second().max(f64::EPSILON)
        )
    }
}

/// What was loaded: fragment ids with their decision, and user ids.
struct Loaded {
    fragments: Vec<(Uuid, Uuid)>,
    users: Vec<Uuid>,
}

const CHUNK: usize = 10_000;

/// Writes the fragments (each with one decision rewarding 1 besito) and the users' progress
/// (one fragment unlocked and visited each, and the user's state).
async fn load(pool: &PgPool, fragments: usize, users: usize) -> anyhow::Result<Loaded> {
    let run = Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    let mut loaded = 0;
    while loaded < fragments {
        let size = CHUNK.min(fragments - loaded);
        sqlx::query(
            "WITH f AS (
                 INSERT INTO fragments (id, title, content, preview, rewards, created_at, updated_at)
                 SELECT gen_random_uuid(), 'bench-' || $1 || '-' || n, repeat('Once upon a time. ', 40),
                        'Once upon a time.', '{\"besitos\": 2}', now(), now()
                 FROM generate_series($2::bigint, $3::bigint) AS n
                 RETURNING id)
             INSERT INTO decisions (id, fragment_id, label, rewards, position)
             SELECT gen_random_uuid(), f.id, 'Go on', '{\"besitos\": 1}', 0 FROM f",
        )
        .bind(run)
        .bind(i64::try_from(loaded)?)
        .bind(i64::try_from(loaded + size - 1)?)
        .execute(pool)
        .await?;
        loaded += size;
    }
    let fragment_rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT f.id, d.id FROM fragments f JOIN decisions d ON d.fragment_id = f.id
         WHERE f.title LIKE 'bench-' || $1 || '-%'",
    )
    .bind(run)
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = fragment_rows.iter().map(|(f, _)| *f).collect();
    let mut all_users = Vec::with_capacity(users);
    while all_users.len() < users {
        let size = CHUNK.min(users - all_users.len());
        let batch: Vec<Uuid> = (0..size).map(|_| Uuid::now_v7()).collect();
        let unlocked: Vec<Uuid> = (0..size)
            .map(|i| ids[pick((all_users.len() + i) as u64, ids.len())])
            .collect();
        sqlx::query(
            "WITH s AS (
                 INSERT INTO user_states (user_id, version, last_activity_at)
                 SELECT u, 0, now() FROM UNNEST($1::uuid[]) AS u)
             INSERT INTO fragment_progress (user_id, fragment_id, unlocked_at, visit_count,
                 time_spent_ms, first_visit_at, last_visit_at, last_activity_at)
             SELECT u, f, now(), 1, 5000, now(), now(), now()
             FROM UNNEST($1::uuid[], $2::uuid[]) AS p(u, f)",
        )
        .bind(&batch)
        .bind(&unlocked)
        .execute(pool)
        .await?;
        all_users.extend(batch);
    }
    for table in ["fragments", "decisions", "user_states", "fragment_progress"] {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(pool)
            .await?;
    }
    Ok(Loaded {
        fragments: fragment_rows,
        users: all_users,
    })
}

/// Call `n`'s user and fragment: user `n mod users`, and for that user's `r`-th call (the
/// `r`-th round over the users) the `r`-th fragment after one picked for the user, so no two
/// calls name the same pair while there are fewer rounds than fragments.
fn decision_of(loaded: &Loaded, n: u64) -> (Uuid, Uuid, Uuid) {
    let users = loaded.users.len().max(1) as u64;
    let index = usize::try_from(n % users).unwrap_or(0);
    let round = usize::try_from(n / users).unwrap_or(0);
    let start = pick(n % users, loaded.fragments.len());
    let (fragment, decision) = loaded.fragments[(start + round) % loaded.fragments.len()];
    (loaded.users[index], fragment, decision)
}

pub async fn run(url: &str, pool: PgPool, args: &BenchArgs) -> anyhow::Result<Results> {
    anyhow::ensure!(
        args.fragments >= 1 && args.users >= 2,
        "--fragments must be at least 1 and --users at least 2"
    );
    eprintln!(
        "bench: writing {} fragments and {} users' progress",
        args.fragments, args.users
    );
    let loaded = Arc::new(load(&pool, args.fragments, args.users).await?);
    let clients: Arc<Vec<NarrativeServiceClient<Channel>>> = Arc::new(
        channels(url, args.load.clients)
            .await?
            .into_iter()
            .map(NarrativeServiceClient::new)
            .collect(),
    );
    let counter = Arc::new(AtomicU64::new(1));

    let get = {
        let (loaded, clients, counter) = (loaded.clone(), clients.clone(), counter.clone());
        move |client: usize| {
            let (loaded, clients, counter) = (loaded.clone(), clients.clone(), counter.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let user = loaded.users[pick(n, loaded.users.len())];
                let (fragment, _) = loaded.fragments[pick(n * 31, loaded.fragments.len())];
                let mut grpc = clients[client].clone();
                grpc.get_fragment(pb::GetFragmentRequest {
                    fragment_id: fragment.to_string(),
                    user_id: user.to_string(),
                    include_content: false,
                })
                .await?;
                anyhow::Ok(1)
            }
        }
    };
    drive(args.load.clients, args.load.warmup, get.clone()).await?;
    let get = drive(args.load.clients, args.load.duration, get).await?;
    get.report("GetFragment (personalised)", "calls");

    // Every decision names a (user, fragment) pair no other call names: the users are split
    // in two halves, the first for gRPC, the second for the SQL floor.
    let half = Arc::new(Loaded {
        fragments: loaded.fragments.clone(),
        users: loaded.users[..loaded.users.len() / 2].to_vec(),
    });
    let other_half = Arc::new(Loaded {
        fragments: loaded.fragments.clone(),
        users: loaded.users[loaded.users.len() / 2..].to_vec(),
    });
    let decisions = Arc::new(AtomicU64::new(0));
    let decide = {
        let (loaded, clients, decisions) = (half.clone(), clients.clone(), decisions.clone());
        move |client: usize| {
            let (loaded, clients, decisions) = (loaded.clone(), clients.clone(), decisions.clone());
            async move {
                let n = decisions.fetch_add(1, Ordering::Relaxed);
                let (user, fragment, decision) = decision_of(&loaded, n);
                let mut grpc = clients[client].clone();
                grpc.apply_decision(pb::ApplyDecisionRequest {
                    user_id: user.to_string(),
                    fragment_id: fragment.to_string(),
                    decision_id: decision.to_string(),
                    idempotency_key: format!("bench-{user}-{fragment}"),
                })
                .await?;
                anyhow::Ok(1)
            }
        }
    };
    let decide = drive(args.load.clients, args.load.duration, decide).await?;
    decide.report("ApplyDecision", "decisions");

    let floor = {
        let (loaded, pool, decisions) = (
            other_half.clone(),
            pool.clone(),
            Arc::new(AtomicU64::new(0)),
        );
        move |_client: usize| {
            let (loaded, pool, decisions) = (loaded.clone(), pool.clone(), decisions.clone());
            async move {
                let n = decisions.fetch_add(1, Ordering::Relaxed);
                let (user, fragment, decision) = decision_of(&loaded, n);
                write_decision(&pool, user, fragment, decision).await?;
                anyhow::Ok(1)
            }
        }
    };
    let decide_sql = drive(args.load.clients, args.load.duration, floor).await?;
    decide_sql.report("decision through SQL (floor)", "decisions");

    let fragments: i64 = sqlx::query_scalar("SELECT count(*) FROM fragments")
        .fetch_one(&pool)
        .await?;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM user_states")
        .fetch_one(&pool)
        .await?;
    Ok(Results {
        fragments,
        users,
        get,
        decide,
        decide_sql,
    })
}

/// The floor's one statement: the rows ApplyDecision writes for one decision.
async fn write_decision(
    pool: &PgPool,
    user: Uuid,
    fragment: Uuid,
    decision: Uuid,
) -> anyhow::Result<()> {
    let payload = pb::DecisionTaken {
        decision: Some(pb::TakenDecision {
            user_id: user.to_string(),
            fragment_id: fragment.to_string(),
            decision_id: decision.to_string(),
            take_time: None,
        }),
        rewards: Some(pb::Rewards {
            besitos: 3,
            ..Default::default()
        }),
        next_fragment_id: String::new(),
    }
    .encode_to_vec();
    sqlx::query(
        "WITH s AS (
             INSERT INTO user_states (user_id, version, last_activity_at) VALUES ($1, 1, now())
             ON CONFLICT (user_id) DO UPDATE
                 SET version = user_states.version + 1, last_activity_at = now()
             RETURNING version),
         d AS (
             INSERT INTO user_decisions (user_id, fragment_id, decision_id, rewards, level, taken_at)
             VALUES ($1, $2, $3, '{\"besitos\": 3}', 0, now())),
         p AS (
             INSERT INTO fragment_progress (user_id, fragment_id, completed, last_activity_at)
             VALUES ($1, $2, true, now())
             ON CONFLICT (user_id, fragment_id) DO UPDATE
                 SET completed = true, last_activity_at = now()),
         f AS (UPDATE fragments SET completion_count = completion_count + 1 WHERE id = $2),
         k AS (
             INSERT INTO request_keys (scope, idempotency_key, method, fingerprint, outcome,
                                       created_at, expires_at)
             VALUES ('', $4, 'ApplyDecision', '\\x00', '{}', now(), now() + interval '7 days'))
         INSERT INTO events (tenant_id, event_id, aggregate_type, aggregate_id, aggregate_version,
                             event_type, payload, occurred_at)
         SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'narrative_user',
                $1::text, s.version, 'phoenix.narrative.v1.DecisionTaken', $5, now()
         FROM s",
    )
    .bind(user)
    .bind(fragment)
    .bind(decision)
    .bind(format!("floor-{user}-{fragment}"))
    .bind(payload)
    .execute(pool)
    .await?;
    Ok(())
}
