//! `phoenix bench missions`: with N boards loaded, heartbeats over gRPC from concurrent clients
//! against the same rows written straight through SQL, GetBoard latency, and the batch day
//! close of every board. Prints what it measures, then one machine-readable line.
//!
//! The service must run on a manual clock (the local one does; a `--target` must run with
//! PHOENIX_MISSIONS_CLOCK=manual): the day close is measured by moving the clock a day on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clap::Args;
use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::clock_service_client::ClockServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_runtime::bench::{Phase, drive};
use rand::Rng;
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::board::{BoardKey, SlotKey};
use crate::domain::rules::{self, RandomIds, RuleSettings};
use crate::store::sql::SqlBoards;
use phoenix_runtime::convert::timestamp;

/// The instant the benchmark's boards start at (a Monday noon UTC).
const START: &str = "2026-06-01T12:00:00Z";
/// Boards written per transaction while loading.
const LOAD_BATCH: usize = 1_000;
/// Users spread over these zones, so the day close crosses several local midnights.
const TIME_ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Europe__Madrid,
    Tz::America__New_York,
    Tz::Asia__Kolkata,
    Tz::America__Sao_Paulo,
];

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Boards to load (each with an active run in its main slot).
    #[arg(long, default_value_t = 100_000)]
    pub boards: usize,
    /// Concurrent clients of the heartbeat and GetBoard phases.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Length of each measured phase.
    #[arg(long, default_value = "10s", value_parser = phoenix_runtime::config::positive_duration)]
    pub duration: Duration,
    /// A running missions service on a manual clock (e.g. http://127.0.0.1:50053) instead of
    /// one started here; loading and the SQL phase then need DATABASE_URL.
    #[arg(long)]
    pub target: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Results {
    pub boards: usize,
    pub clients: usize,
    pub heartbeat_grpc: Phase,
    pub heartbeat_sql: Phase,
    pub get_board: Phase,
    pub day_close_seconds: f64,
}

impl Results {
    /// The line the issue asks for.
    pub fn line(&self) -> String {
        let sql = self.heartbeat_sql.per_second();
        format!(
            "missions-bench boards={} clients={} heartbeat_grpc_tps={:.0} heartbeat_sql_tps={:.0} ratio={:.2} getboard_p99_ms={:.2} day_close_s={:.1}",
            self.boards,
            self.clients,
            self.heartbeat_grpc.per_second(),
            sql,
            if sql > 0.0 {
                self.heartbeat_grpc.per_second() / sql
            } else {
                0.0
            },
            self.get_board.p99_ms,
            self.day_close_seconds,
        )
    }
}

/// A loaded board: who, and the run its heartbeats go to.
#[derive(Debug, Clone)]
struct Loaded {
    user_id: Uuid,
    run_id: Uuid,
}

/// Runs the benchmark against the service at `url`, loading and measuring the SQL floor on
/// `pool`. Each client has its own connection, as separate callers would.
pub async fn run(url: &str, pool: PgPool, args: &BenchArgs) -> anyhow::Result<Results> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.boards > 0, "--boards must be at least 1");
    let start: DateTime<Utc> = START.parse()?;
    let mut channels = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        channels.push(Channel::from_shared(url.to_owned())?.connect().await?);
    }
    let channel = channels[0].clone();
    let mut clock = ClockServiceClient::new(channel.clone());
    clock
        .set_time(pb::SetTimeRequest {
            now: Some(timestamp(start)),
        })
        .await
        .map_err(|e| anyhow::anyhow!("the service must run on a manual clock: {e}"))?;
    let season = format!("bench-{}", &Uuid::now_v7().simple().to_string()[..12]);
    let missions: Arc<Vec<_>> = Arc::new(
        channels
            .into_iter()
            .map(MissionsServiceClient::new)
            .collect(),
    );

    let started = Instant::now();
    let boards = Arc::new(load(&pool, &season, args.boards, start).await?);
    eprintln!(
        "bench: loaded {} boards of season {season} in {:.1} s",
        boards.len(),
        started.elapsed().as_secs_f64()
    );

    // Each board takes one heartbeat a day: the gRPC phase takes boards from the front, the SQL
    // phase from where it stopped, so neither answers a replay.
    let next = Arc::new(AtomicUsize::new(0));
    let heartbeat_grpc = heartbeats_over_grpc(&missions, &season, &boards, &next, args).await?;
    heartbeat_grpc.report("heartbeats over gRPC", "calls");
    let heartbeat_sql = heartbeats_over_sql(&pool, &season, &boards, &next, args, start).await?;
    heartbeat_sql.report("heartbeats, same rows in SQL", "calls");
    let get_board = get_boards(&missions, &season, &boards, args).await?;
    get_board.report("GetBoard", "calls");

    // Every board's first local day has ended a day and a half later, in every zone.
    clock
        .set_time(pb::SetTimeRequest {
            now: Some(timestamp(start + chrono::Duration::hours(36))),
        })
        .await?;
    let closing = Instant::now();
    let closed = missions[0]
        .clone()
        .close_due_days(pb::CloseDueDaysRequest { batch_size: 1_000 })
        .await?
        .into_inner();
    let day_close_seconds = closing.elapsed().as_secs_f64();
    eprintln!(
        "bench: day close: {} boards, {} days ({} petals lost) in {day_close_seconds:.1} s",
        closed.boards, closed.days, closed.petals_lost
    );
    Ok(Results {
        boards: boards.len(),
        clients: args.clients,
        heartbeat_grpc,
        heartbeat_sql,
        get_board,
        day_close_seconds,
    })
}

/// Builds the boards with the rules (a new board, its main slot activated) and writes them in
/// batches through the SQL repository, as the backfill does.
async fn load(
    pool: &PgPool,
    season: &str,
    count: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Loaded>> {
    crate::store::catalog::ensure_default(pool).await?;
    let catalog = crate::store::catalog::load(pool).await?;
    let settings = RuleSettings::default();
    let sql = SqlBoards::new(pool.clone());
    let mut loaded = Vec::with_capacity(count);
    for chunk_start in (0..count).step_by(LOAD_BATCH) {
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        for index in chunk_start..(chunk_start + LOAD_BATCH).min(count) {
            let key = BoardKey {
                user_id: Uuid::now_v7(),
                season_id: season.to_owned(),
            };
            let zone = TIME_ZONES[index % TIME_ZONES.len()];
            let mut board = rules::new_board(&key, zone, &catalog, &settings, &mut RandomIds, now)?;
            let run_id = rules::activate(
                &mut board,
                SlotKey::Main,
                &catalog,
                &settings,
                &mut RandomIds,
                now,
            )?;
            loaded.push(Loaded {
                user_id: key.user_id,
                run_id,
            });
            batch.push(board);
        }
        sql.insert_many(batch).await?;
        if loaded.len() % (count / 10).max(LOAD_BATCH) < LOAD_BATCH {
            eprintln!("bench: loaded {}/{count} boards", loaded.len());
        }
    }
    Ok(loaded)
}

async fn heartbeats_over_grpc(
    missions: &Arc<Vec<MissionsServiceClient<Channel>>>,
    season: &str,
    boards: &Arc<Vec<Loaded>>,
    next: &Arc<AtomicUsize>,
    args: &BenchArgs,
) -> anyhow::Result<Phase> {
    let (missions, season, boards, next) = (
        missions.clone(),
        season.to_owned(),
        boards.clone(),
        next.clone(),
    );
    drive(args.clients, args.duration, move |client| {
        let mut missions = missions[client].clone();
        let board = boards.get(next.fetch_add(1, Ordering::Relaxed)).cloned();
        let season = season.clone();
        async move {
            let Some(board) = board else { return Ok(0) };
            let answer = missions
                .heartbeat(pb::HeartbeatRequest {
                    user_id: board.user_id.to_string(),
                    season_id: season,
                    run_id: board.run_id.to_string(),
                })
                .await?
                .into_inner();
            anyhow::ensure!(!answer.replayed, "a board was heartbeaten twice");
            Ok(1)
        }
    })
    .await
}

/// The floor: the rows a heartbeat writes — the heartbeat, the run's and board's update times,
/// the snapshot with the heartbeat appended — in one transaction under the snapshot row lock,
/// with no gRPC, no rules and no diffing.
async fn heartbeats_over_sql(
    pool: &PgPool,
    season: &str,
    boards: &Arc<Vec<Loaded>>,
    next: &Arc<AtomicUsize>,
    args: &BenchArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<Phase> {
    let (pool, season, boards, next) = (
        pool.clone(),
        season.to_owned(),
        boards.clone(),
        next.clone(),
    );
    drive(args.clients, args.duration, move |_| {
        let pool = pool.clone();
        let board = boards.get(next.fetch_add(1, Ordering::Relaxed)).cloned();
        let season = season.clone();
        async move {
            let Some(board) = board else { return Ok(0) };
            let heartbeat_id = Uuid::now_v7();
            // A few microseconds apart, as real heartbeats are.
            let at = now + chrono::Duration::microseconds(rand::rng().random_range(0..1_000_000));
            let mut tx = pool.begin().await?;
            let (board_id, zone): (Uuid, String) = sqlx::query_as(
                "SELECT board_id, state->>'timeZone' FROM missions_v2_state \
                 WHERE user_id = $1 AND season_id = $2 FOR UPDATE",
            )
            .bind(board.user_id)
            .bind(&season)
            .fetch_one(&mut *tx)
            .await?;
            let date = rules::local_date(zone.parse().unwrap_or(Tz::UTC), at);
            let entry = serde_json::json!({
                "heartbeatId": heartbeat_id, "date": date, "petalsBefore": 3,
                "petalsAfter": 3, "createdAt": at,
            });
            sqlx::query(
                "INSERT INTO missions_v2_heartbeat_log \
                 (heartbeat_id, run_id, position, heartbeat_date, petals_before, petals_after, created_at) \
                 VALUES ($1, $2, 0, $3, 3, 3, $4)",
            )
            .bind(heartbeat_id)
            .bind(board.run_id)
            .bind(date)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE missions_v2_slot_runs SET updated_at = $2 WHERE run_id = $1")
                .bind(board.run_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE missions_v2_boards SET updated_at = $2 WHERE board_id = $1")
                .bind(board_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE missions_v2_state SET \
                 state = jsonb_set(jsonb_set(state, '{runs,0,heartbeats}', (state #> '{runs,0,heartbeats}') || $3::jsonb), '{updatedAt}', to_jsonb($4::timestamptz)), \
                 version = version + 1, updated_at = $4 \
                 WHERE user_id = $1 AND season_id = $2",
            )
            .bind(board.user_id)
            .bind(&season)
            .bind(sqlx::types::Json(&entry))
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(1)
        }
    })
    .await
}

async fn get_boards(
    missions: &Arc<Vec<MissionsServiceClient<Channel>>>,
    season: &str,
    boards: &Arc<Vec<Loaded>>,
    args: &BenchArgs,
) -> anyhow::Result<Phase> {
    let (missions, season, boards) = (missions.clone(), season.to_owned(), boards.clone());
    drive(args.clients, args.duration, move |client| {
        let mut missions = missions[client].clone();
        let board = boards[rand::rng().random_range(0..boards.len())].clone();
        let season = season.clone();
        async move {
            missions
                .get_board(pb::GetBoardRequest {
                    user_id: board.user_id.to_string(),
                    season_id: season,
                })
                .await?;
            Ok(1)
        }
    })
    .await
}
