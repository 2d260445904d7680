//! The SQL repository: each board is one `missions_v2_state` row (the JSONB snapshot reads are
//! served from) and its rows in the relational tables, written together in one transaction.
//!
//! Writes are diffs: the saved board (read under the row lock) and the new one are both turned
//! into table rows, and only rows that are new, changed or gone are sent. Every table's rows of
//! every board in the write go as UNNEST arrays in one statement (one CTE per table), so saving
//! one board after a heartbeat, or a thousand after a batch day close, is the same one or two
//! statements. Append-only records (heartbeats, day closes, claims, communications) are inserted
//! without ON CONFLICT, so their UNIQUE constraints stay a real backstop against counting a day
//! or a claim twice; mutable rows (board, slots, runs, progress, effects, boss run) are upserted.
//!
//! Concurrency: a write holds the snapshot row `FOR UPDATE` from the read to the commit, so
//! updates of one board are serialized; a board that does not exist yet is serialized by a
//! transaction advisory lock on its key instead (there is no row to lock). The batch day close
//! takes due rows `FOR UPDATE SKIP LOCKED`, so it never waits for a user's request and parallel
//! closers split the work.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use phoenix_runtime::Error;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::types::Json;
use sqlx::{Arguments, Connection, PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::{DueBoards, Saved};
use crate::domain::board::{
    Board, BoardKey, ClaimSource, CommunicationKind, DayOutcome, ProgressUnit, Reward, RewardItem,
    RunStatus, SlotKey, SlotState,
};
use crate::domain::rules;
use crate::metrics;

/// Boards in PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlBoards {
    pool: PgPool,
}

impl SqlBoards {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The board as its snapshot holds it.
    pub async fn load(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        let board: Option<Json<Board>> = sqlx::query_scalar(
            "SELECT state FROM missions_v2_state WHERE user_id = $1 AND season_id = $2",
        )
        .bind(key.user_id)
        .bind(&key.season_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(board.map(|Json(board)| board))
    }

    /// The board rebuilt from the relational tables alone (never the snapshot): what the
    /// relational model says, for the audit, `compare` and the cut-over checks.
    pub async fn load_relational(&self, key: &BoardKey) -> Result<Option<Board>, Error> {
        let board: Option<Json<Board>> = sqlx::query_scalar(
            "SELECT document FROM missions_v2_board_documents WHERE user_id = $1 AND season_id = $2",
        )
        .bind(key.user_id)
        .bind(&key.season_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(board.map(|Json(board)| board))
    }

    /// The keys of every board of `user_id`, by season.
    pub async fn keys_of_user(&self, user_id: Uuid) -> Result<Vec<BoardKey>, Error> {
        let keys: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT user_id, season_id FROM missions_v2_state WHERE user_id = $1 ORDER BY season_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().map(board_key).collect())
    }

    /// The keys of every board (of `season` only, when given), by user then season.
    pub async fn keys(&self, season: Option<&str>) -> Result<Vec<BoardKey>, Error> {
        let keys: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT user_id, season_id FROM missions_v2_state
             WHERE $1::text IS NULL OR season_id = $1
             ORDER BY user_id, season_id",
        )
        .bind(season)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().map(board_key).collect())
    }

    /// Runs `change` on the board under its lock and saves what it decided: the snapshot and
    /// the relational rows in one transaction, or nothing at all when `change` errs or keeps.
    pub async fn update<T, F>(&self, key: &BoardKey, change: F) -> Result<T, Error>
    where
        F: FnOnce(Option<Board>) -> Result<Saved<T>, Error> + Send,
        T: Send,
    {
        let mut transaction = self.pool.begin().await?;
        let saved = lock(&mut transaction, key).await?;
        match change(saved.clone())? {
            Saved::Keep(answer) => {
                transaction.commit().await?;
                Ok(answer)
            }
            Saved::Write(board, answer) => {
                save(&mut transaction, &mut [(saved, board)]).await?;
                transaction.commit().await?;
                Ok(answer)
            }
        }
    }

    /// The batch day close: up to `limit` boards due at `now` (oldest due first, leaving out
    /// `skip` and boards someone else holds), each given to `change`; those it answers `Some`
    /// for are saved in one transaction (see `save_each`). A board `change` leaves as it was
    /// keeps its `due_at` (`rules::next_due` of an unchanged board is unchanged) and is picked
    /// again; so is a board the database refused.
    pub async fn update_due<T, F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        skip: &[BoardKey],
        mut change: F,
    ) -> Result<DueBoards<T>, Error>
    where
        F: FnMut(&mut Board) -> Option<T> + Send,
        T: Send,
    {
        let mut transaction = self.pool.begin().await?;
        let due: Vec<Json<Board>> = sqlx::query_scalar(
            "SELECT state FROM missions_v2_state
             WHERE due_at <= $1
               AND (user_id, season_id) NOT IN (SELECT * FROM UNNEST($3::uuid[], $4::text[]))
             ORDER BY due_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(limit)
        .bind(column(skip, |key| key.user_id))
        .bind(
            skip.iter()
                .map(|key| key.season_id.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *transaction)
        .await?;
        let mut changes = Vec::with_capacity(due.len());
        let mut answers = Vec::with_capacity(due.len());
        for Json(saved) in due {
            let mut board = saved.clone();
            if let Some(answer) = change(&mut board) {
                changes.push((Some(saved), board));
                answers.push(answer);
            }
        }
        let outcomes = save_each(&mut transaction, &mut changes).await?;
        let mut result = DueBoards {
            saved: Vec::with_capacity(changes.len()),
            refused: Vec::new(),
        };
        for (((_, board), answer), outcome) in changes.iter().zip(answers).zip(outcomes) {
            match outcome {
                Ok(()) => result.saved.push(answer),
                Err(error) => {
                    tracing::error!(
                        user_id = %board.user_id,
                        season_id = %board.season_id,
                        %error,
                        "the database refused a board's day close; the board stays due"
                    );
                    metrics::day_close_refused();
                    result.refused.push(board.key());
                }
            }
        }
        transaction.commit().await?;
        Ok(result)
    }

    /// Overwrites the board (whatever its saved state), returning the saved one.
    pub async fn put(&self, board: &Board) -> Result<Option<Board>, Error> {
        self.update(&board.key(), |saved| Ok(Saved::Write(board.clone(), saved)))
            .await
    }

    /// Writes the board unless a board with its key exists; true when it wrote.
    pub async fn insert_if_absent(&self, board: &Board) -> Result<bool, Error> {
        self.update(&board.key(), |saved| {
            Ok(match saved {
                Some(_) => Saved::Keep(false),
                None => Saved::Write(board.clone(), true),
            })
        })
        .await
    }

    /// Writes boards whose keys are new in one transaction, the way a bulk load does (the
    /// benchmark's 100,000 boards): one statement per table for all of them, without reading
    /// what is saved (use `insert_if_absent` when a key may exist).
    pub async fn insert_many(&self, boards: Vec<Board>) -> Result<(), Error> {
        let mut transaction = self.pool.begin().await?;
        let mut changes: Vec<_> = boards.into_iter().map(|b| (None, b)).collect();
        save(&mut transaction, &mut changes).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records that two views of a board disagreed (`kind` names how; `detail` says where).
    pub async fn record_divergence(
        &self,
        key: &BoardKey,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO missions_v2_divergences (user_id, season_id, kind, detail)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(key.user_id)
        .bind(&key.season_id)
        .bind(kind)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A transaction for the jobs that read or rewrite every board (analytics refresh, audit): they
/// take as long as the data does, not as long as a request may.
pub(crate) async fn maintenance_transaction(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, Postgres>, Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL statement_timeout = '15min'")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

fn board_key((user_id, season_id): (Uuid, String)) -> BoardKey {
    BoardKey { user_id, season_id }
}

/// The saved board, locked until the transaction ends. When there is none yet, concurrent
/// creators of the same key are serialized on an advisory lock and the second one reads again,
/// so it sees the board the first one created instead of creating another.
async fn lock(connection: &mut PgConnection, key: &BoardKey) -> Result<Option<Board>, Error> {
    if let Some(board) = locked(connection, key).await? {
        return Ok(Some(board));
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "missions_v2_state/{}/{}",
            key.user_id, key.season_id
        ))
        .execute(&mut *connection)
        .await?;
    locked(connection, key).await
}

async fn locked(connection: &mut PgConnection, key: &BoardKey) -> Result<Option<Board>, Error> {
    let board: Option<Json<Board>> = sqlx::query_scalar(
        "SELECT state FROM missions_v2_state WHERE user_id = $1 AND season_id = $2 FOR UPDATE",
    )
    .bind(key.user_id)
    .bind(&key.season_id)
    .fetch_optional(connection)
    .await?;
    Ok(board.map(|Json(board)| board))
}

/// Saves a batch's boards over their saved versions in one statement when the database takes
/// them all, which is the rule. When it refuses the statement, some board broke a constraint (a
/// damaged board, a rule bug) and the error does not say which, so the boards are saved again
/// one by one, each in a savepoint of its own: a board refused is left as it was and the others
/// are saved. Answers each board's outcome; an error that is not the database refusing a
/// statement (the connection is gone) fails the whole batch.
async fn save_each(
    connection: &mut PgConnection,
    changes: &mut [(Option<Board>, Board)],
) -> Result<Vec<Result<(), Error>>, Error> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    match save_in_savepoint(connection, changes).await {
        Ok(()) => return Ok(changes.iter().map(|_| Ok(())).collect()),
        Err(SaveError::Failed(error)) => return Err(error),
        Err(SaveError::Refused(_)) => {}
    }
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes.iter_mut() {
        match save_in_savepoint(connection, std::slice::from_mut(change)).await {
            Ok(()) => outcomes.push(Ok(())),
            Err(SaveError::Failed(error)) => return Err(error),
            Err(refused) => outcomes.push(Err(refused.into())),
        }
    }
    Ok(outcomes)
}

/// Why a save failed.
#[derive(Debug)]
enum SaveError {
    /// The database refused a statement (a constraint, a trigger, a timeout): the connection
    /// and a transaction rolled back to before it are still good.
    Refused(sqlx::Error),
    /// Anything else: the connection is gone, or a broken invariant.
    Failed(Error),
}

impl From<sqlx::Error> for SaveError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(_) => Self::Refused(error),
            other => Self::Failed(other.into()),
        }
    }
}

impl From<Error> for SaveError {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

/// A board the database refused for a constraint broke an invariant the database enforces
/// (once a day, once per run, petals in range…): INTERNAL, naming the constraint in the log.
impl From<SaveError> for Error {
    fn from(error: SaveError) -> Self {
        match error {
            SaveError::Failed(error) => error,
            SaveError::Refused(error) => {
                let violated = error
                    .as_database_error()
                    .filter(|e| e.code().is_some_and(|code| code.starts_with("23")))
                    .map(|e| {
                        (
                            e.constraint().unwrap_or_default().to_owned(),
                            e.message().to_owned(),
                        )
                    });
                match violated {
                    Some((constraint, message)) => Error::invariant(
                        "BOARD_CONSTRAINT",
                        format!(
                            "the database refused the board: constraint {constraint}: {message}"
                        ),
                    ),
                    None => error.into(),
                }
            }
        }
    }
}

/// `save` in a savepoint: when it fails, the transaction goes on as if nothing had been sent.
async fn save_in_savepoint(
    connection: &mut PgConnection,
    changes: &mut [(Option<Board>, Board)],
) -> Result<(), SaveError> {
    let mut savepoint = connection.begin().await?;
    match save(&mut savepoint, changes).await {
        Ok(()) => Ok(savepoint.commit().await?),
        Err(error) => {
            savepoint.rollback().await?;
            Err(error)
        }
    }
}

/// Saves new boards over their saved versions (None: new boards): the rows that went away or
/// were replaced first, then everything new or changed in one statement.
async fn save(
    connection: &mut PgConnection,
    changes: &mut [(Option<Board>, Board)],
) -> Result<(), SaveError> {
    for (_, board) in changes.iter_mut() {
        to_database_precision(board);
    }
    let changes: &[(Option<Board>, Board)] = changes;
    let mut writes = Writes::default();
    let mut removals = Removals::default();
    for (saved, board) in changes {
        writes.state.push(StateRow::of(board));
        let saved = match saved {
            // The key got a different board: the old one goes with all its rows.
            Some(saved) if saved.board_id != board.board_id => {
                removals.boards.push(saved.board_id);
                None
            }
            saved => saved.as_ref(),
        };
        let saved = saved.map(BoardRows::of).unwrap_or_default();
        let current = BoardRows::of(board);
        diff(
            saved.board,
            current.board,
            |r| r.board_id,
            &mut writes.boards,
            &mut removals.boards,
            Kind::Mutable,
        );
        diff(
            saved.slots,
            current.slots,
            |r| r.slot_id,
            &mut writes.slots,
            &mut Vec::new(),
            Kind::Mutable,
        );
        diff(
            saved.runs,
            current.runs,
            |r| r.run_id,
            &mut writes.runs,
            &mut removals.runs,
            Kind::Mutable,
        );
        diff(
            saved.progress,
            current.progress,
            |r| r.run_id,
            &mut writes.progress,
            &mut Vec::new(),
            Kind::Mutable,
        );
        diff(
            saved.heartbeats,
            current.heartbeats,
            |r| r.heartbeat_id,
            &mut writes.heartbeats,
            &mut removals.heartbeats,
            Kind::AppendOnly,
        );
        diff(
            saved.days,
            current.days,
            |r| (r.run_id, r.local_date),
            &mut writes.days,
            &mut removals.days,
            Kind::AppendOnly,
        );
        diff(
            saved.effects,
            current.effects,
            |r| r.effect_instance_id,
            &mut writes.effects,
            &mut removals.effects,
            Kind::Mutable,
        );
        diff(
            saved.boss_runs,
            current.boss_runs,
            |r| r.boss_run_id,
            &mut writes.boss_runs,
            &mut removals.boss_runs,
            Kind::Mutable,
        );
        diff(
            saved.claims,
            current.claims,
            |r| r.claim_id,
            &mut writes.claims,
            &mut removals.claims,
            Kind::AppendOnly,
        );
        diff(
            saved.communications,
            current.communications,
            |r| r.communication_id,
            &mut writes.communications,
            &mut removals.communications,
            Kind::AppendOnly,
        );
    }
    if !removals.is_empty() {
        removals.execute(connection).await?;
    }
    writes.execute(connection).await
}

/// The database keeps microseconds: instants are cut to that before they are stored, so the
/// snapshot and the relational rows hold the very same board (the audit compares them).
fn to_database_precision(board: &mut Board) {
    fn cut(at: &mut DateTime<Utc>) {
        *at = at.trunc_subsecs(6);
    }
    fn cut_some(at: &mut Option<DateTime<Utc>>) {
        if let Some(at) = at {
            cut(at);
        }
    }
    cut(&mut board.generated_at);
    cut(&mut board.updated_at);
    for slot in &mut board.slots {
        cut_some(&mut slot.cooldown_until);
        cut_some(&mut slot.reroll_used_at);
        cut_some(&mut slot.reroll_reset_at);
    }
    for run in &mut board.runs {
        cut(&mut run.selected_at);
        cut(&mut run.updated_at);
        cut(&mut run.expires_at);
        cut_some(&mut run.cooldown_until);
        cut_some(&mut run.completion_at);
        cut_some(&mut run.failure_at);
        cut(&mut run.progress.updated_at);
        for heartbeat in &mut run.heartbeats {
            cut(&mut heartbeat.created_at);
        }
        for day in &mut run.days {
            cut(&mut day.closed_at);
        }
    }
    if let Some(boss) = &mut board.boss {
        cut_some(&mut boss.linked_at);
        cut_some(&mut boss.phase2_submitted_at);
        cut_some(&mut boss.completed_at);
    }
    for effect in &mut board.effects {
        cut(&mut effect.active_from);
        cut_some(&mut effect.active_until);
        cut_some(&mut effect.consumed_at);
    }
    for claim in &mut board.claims {
        cut(&mut claim.claimed_at);
    }
    for communication in &mut board.communications {
        cut(&mut communication.created_at);
    }
}

/// How a table's rows change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Rows are upserted in place.
    Mutable,
    /// Records are only ever added; one that differs anyway (a board overwritten by `put`) is
    /// deleted and inserted again, so inserts never need ON CONFLICT.
    AppendOnly,
}

/// Sorts one table's rows of one board: rows new or different from the saved ones go to
/// `writes`; keys of saved rows that are gone (and, for append-only tables, of rows that
/// changed) go to `deletes`.
fn diff<K: Eq + Hash, R: PartialEq>(
    saved: Vec<R>,
    current: Vec<R>,
    key: impl Fn(&R) -> K,
    writes: &mut Vec<R>,
    deletes: &mut Vec<K>,
    kind: Kind,
) {
    if saved.is_empty() {
        writes.extend(current);
        return;
    }
    let mut saved: HashMap<K, R> = saved.into_iter().map(|row| (key(&row), row)).collect();
    for row in current {
        match saved.remove(&key(&row)) {
            Some(old) if old == row => {}
            Some(_) => {
                if kind == Kind::AppendOnly {
                    deletes.push(key(&row));
                }
                writes.push(row);
            }
            None => writes.push(row),
        }
    }
    deletes.extend(saved.into_keys());
}

// One struct per table: a row as it is stored, built from the board.

struct StateRow<'a> {
    user_id: Uuid,
    season_id: &'a str,
    board_id: Uuid,
    state: Json<&'a Board>,
    due_at: DateTime<Utc>,
}

impl<'a> StateRow<'a> {
    fn of(board: &'a Board) -> Self {
        Self {
            user_id: board.user_id,
            season_id: &board.season_id,
            board_id: board.board_id,
            state: Json(board),
            due_at: rules::next_due(board),
        }
    }
}

#[derive(Debug, PartialEq)]
struct BoardRow<'a> {
    board_id: Uuid,
    user_id: Uuid,
    season_id: &'a str,
    time_zone: &'static str,
    generated_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_weekly_summary: Option<NaiveDate>,
}

#[derive(Debug, PartialEq)]
struct SlotRow {
    slot_id: Uuid,
    board_id: Uuid,
    slot_key: SlotKey,
    state: SlotState,
    mission_id: Uuid,
    run_id: Option<Uuid>,
    petals_total: i16,
    petals_remaining: i16,
    cooldown_until: Option<DateTime<Utc>>,
    reroll_remaining: i16,
    reroll_used_at: Option<DateTime<Utc>>,
    reroll_reset_at: Option<DateTime<Utc>>,
    offers: i32,
}

#[derive(Debug, PartialEq)]
struct RunRow<'a> {
    run_id: Uuid,
    board_id: Uuid,
    slot_key: SlotKey,
    position: i32,
    mission_id: Uuid,
    status: RunStatus,
    selected_at: DateTime<Utc>,
    start_date: Option<NaiveDate>,
    updated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    cooldown_until: Option<DateTime<Utc>>,
    completion_at: Option<DateTime<Utc>>,
    failure_at: Option<DateTime<Utc>>,
    claim_id: Option<Uuid>,
    reward: Option<&'a Reward>,
}

#[derive(Debug, PartialEq)]
struct ProgressRow {
    run_id: Uuid,
    current: i32,
    target: i32,
    unit: ProgressUnit,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
struct HeartbeatRow {
    heartbeat_id: Uuid,
    run_id: Uuid,
    position: i32,
    date: NaiveDate,
    petals_before: i16,
    petals_after: i16,
    created_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
struct DayRow {
    run_id: Uuid,
    local_date: NaiveDate,
    outcome: DayOutcome,
    effect_instance_id: Option<Uuid>,
    petals_after: i16,
    closed_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
struct EffectRow<'a> {
    effect_instance_id: Uuid,
    board_id: Uuid,
    position: i32,
    effect_id: Uuid,
    active_from: DateTime<Utc>,
    active_until: Option<DateTime<Utc>>,
    consumed_at: Option<DateTime<Utc>>,
    protects_day: bool,
    payload_override: &'a serde_json::Value,
}

#[derive(Debug, PartialEq)]
struct BossRunRow<'a> {
    boss_run_id: Uuid,
    board_id: Uuid,
    boss_id: Uuid,
    phase: i16,
    shield_current: i16,
    shield_max: i16,
    linked_task_id: Option<Uuid>,
    linked_at: Option<DateTime<Utc>>,
    phase2_ready: bool,
    phase2_proof: Option<&'a str>,
    phase2_submitted_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    claim_id: Option<Uuid>,
}

#[derive(Debug, PartialEq)]
struct ClaimRow<'a> {
    claim_id: Uuid,
    board_id: Uuid,
    user_id: Uuid,
    run_id: Uuid,
    position: i32,
    source: ClaimSource,
    claimed_at: DateTime<Utc>,
    reward_xp: i32,
    reward_currency: i32,
    reward_items: &'a [RewardItem],
    reward_badge_id: Option<Uuid>,
    reward_aura_id: Option<Uuid>,
}

#[derive(Debug, PartialEq)]
struct CommunicationRow<'a> {
    communication_id: Uuid,
    board_id: Uuid,
    position: i32,
    kind: CommunicationKind,
    message: &'a str,
    created_at: DateTime<Utc>,
}

/// Every relational row of one board.
#[derive(Default)]
struct BoardRows<'a> {
    board: Vec<BoardRow<'a>>,
    slots: Vec<SlotRow>,
    runs: Vec<RunRow<'a>>,
    progress: Vec<ProgressRow>,
    heartbeats: Vec<HeartbeatRow>,
    days: Vec<DayRow>,
    effects: Vec<EffectRow<'a>>,
    boss_runs: Vec<BossRunRow<'a>>,
    claims: Vec<ClaimRow<'a>>,
    communications: Vec<CommunicationRow<'a>>,
}

/// A list index as the `position` column stores it.
fn position(index: usize) -> i32 {
    i32::try_from(index).expect("a board's lists are far shorter than i32::MAX")
}

impl<'a> BoardRows<'a> {
    fn of(board: &'a Board) -> Self {
        let board_id = board.board_id;
        let mut rows = Self {
            board: vec![BoardRow {
                board_id,
                user_id: board.user_id,
                season_id: &board.season_id,
                time_zone: board.time_zone.name(),
                generated_at: board.generated_at,
                updated_at: board.updated_at,
                last_weekly_summary: board.last_weekly_summary,
            }],
            ..Self::default()
        };
        rows.slots = board
            .slots
            .iter()
            .map(|slot| SlotRow {
                slot_id: slot.slot_id,
                board_id,
                slot_key: slot.slot_key,
                state: slot.state,
                mission_id: slot.mission_id,
                run_id: slot.run_id,
                petals_total: slot.petals_total,
                petals_remaining: slot.petals_remaining,
                cooldown_until: slot.cooldown_until,
                reroll_remaining: slot.reroll_remaining,
                reroll_used_at: slot.reroll_used_at,
                reroll_reset_at: slot.reroll_reset_at,
                offers: slot.offers,
            })
            .collect();
        for (index, run) in board.runs.iter().enumerate() {
            rows.runs.push(RunRow {
                run_id: run.run_id,
                board_id,
                slot_key: run.slot_key,
                position: position(index),
                mission_id: run.mission_id,
                status: run.status,
                selected_at: run.selected_at,
                start_date: run.start_date,
                updated_at: run.updated_at,
                expires_at: run.expires_at,
                cooldown_until: run.cooldown_until,
                completion_at: run.completion_at,
                failure_at: run.failure_at,
                claim_id: run.claim_id,
                reward: run.reward.as_ref(),
            });
            rows.progress.push(ProgressRow {
                run_id: run.run_id,
                current: run.progress.current,
                target: run.progress.target,
                unit: run.progress.unit,
                updated_at: run.progress.updated_at,
            });
            rows.heartbeats
                .extend(
                    run.heartbeats
                        .iter()
                        .enumerate()
                        .map(|(index, heartbeat)| HeartbeatRow {
                            heartbeat_id: heartbeat.heartbeat_id,
                            run_id: run.run_id,
                            position: position(index),
                            date: heartbeat.date,
                            petals_before: heartbeat.petals_before,
                            petals_after: heartbeat.petals_after,
                            created_at: heartbeat.created_at,
                        }),
                );
            rows.days.extend(run.days.iter().map(|day| DayRow {
                run_id: run.run_id,
                local_date: day.date,
                outcome: day.outcome,
                effect_instance_id: day.effect_instance_id,
                petals_after: day.petals_after,
                closed_at: day.closed_at,
            }));
        }
        rows.boss_runs = board
            .boss
            .iter()
            .map(|boss| BossRunRow {
                boss_run_id: boss.boss_run_id,
                board_id,
                boss_id: boss.boss_id,
                phase: boss.phase,
                shield_current: boss.shield_current,
                shield_max: boss.shield_max,
                linked_task_id: boss.linked_task_id,
                linked_at: boss.linked_at,
                phase2_ready: boss.phase2_ready,
                phase2_proof: boss.phase2_proof.as_deref(),
                phase2_submitted_at: boss.phase2_submitted_at,
                completed_at: boss.completed_at,
                claim_id: boss.claim_id,
            })
            .collect();
        rows.effects = board
            .effects
            .iter()
            .enumerate()
            .map(|(index, effect)| EffectRow {
                effect_instance_id: effect.effect_instance_id,
                board_id,
                position: position(index),
                effect_id: effect.effect_id,
                active_from: effect.active_from,
                active_until: effect.active_until,
                consumed_at: effect.consumed_at,
                protects_day: effect.protects_day,
                payload_override: &effect.payload_override,
            })
            .collect();
        rows.claims = board
            .claims
            .iter()
            .enumerate()
            .map(|(index, claim)| ClaimRow {
                claim_id: claim.claim_id,
                board_id,
                user_id: board.user_id,
                run_id: claim.run_id,
                position: position(index),
                source: claim.source,
                claimed_at: claim.claimed_at,
                reward_xp: claim.reward.xp,
                reward_currency: claim.reward.currency,
                reward_items: &claim.reward.items,
                reward_badge_id: claim.reward.badge_id,
                reward_aura_id: claim.reward.aura_id,
            })
            .collect();
        rows.communications = board
            .communications
            .iter()
            .enumerate()
            .map(|(index, communication)| CommunicationRow {
                communication_id: communication.communication_id,
                board_id,
                position: position(index),
                kind: communication.kind,
                message: &communication.message,
                created_at: communication.created_at,
            })
            .collect();
        rows
    }
}

/// Keys of the rows a save deletes (a deleted board or run takes its rows with it).
#[derive(Default)]
struct Removals {
    boards: Vec<Uuid>,
    runs: Vec<Uuid>,
    heartbeats: Vec<Uuid>,
    days: Vec<(Uuid, NaiveDate)>,
    effects: Vec<Uuid>,
    boss_runs: Vec<Uuid>,
    claims: Vec<Uuid>,
    communications: Vec<Uuid>,
}

impl Removals {
    fn is_empty(&self) -> bool {
        self.boards.is_empty()
            && self.runs.is_empty()
            && self.heartbeats.is_empty()
            && self.days.is_empty()
            && self.effects.is_empty()
            && self.boss_runs.is_empty()
            && self.claims.is_empty()
            && self.communications.is_empty()
    }

    async fn execute(self, connection: &mut PgConnection) -> Result<(), SaveError> {
        let (day_runs, day_dates): (Vec<Uuid>, Vec<NaiveDate>) = self.days.into_iter().unzip();
        sqlx::query(
            "WITH boards AS (DELETE FROM missions_v2_boards WHERE board_id = ANY($1)),
                  runs AS (DELETE FROM missions_v2_slot_runs WHERE run_id = ANY($2)),
                  heartbeats AS (DELETE FROM missions_v2_heartbeat_log WHERE heartbeat_id = ANY($3)),
                  days AS (
                      DELETE FROM missions_v2_day_closes d
                      USING UNNEST($4::uuid[], $5::date[]) AS gone(run_id, local_date)
                      WHERE d.run_id = gone.run_id AND d.local_date = gone.local_date),
                  effects AS (DELETE FROM missions_v2_effects WHERE effect_instance_id = ANY($6)),
                  boss_runs AS (DELETE FROM missions_v2_boss_runs WHERE boss_run_id = ANY($7)),
                  claims AS (DELETE FROM missions_v2_claims WHERE claim_id = ANY($8))
             DELETE FROM missions_v2_communications WHERE communication_id = ANY($9)",
        )
        .bind(self.boards)
        .bind(self.runs)
        .bind(self.heartbeats)
        .bind(day_runs)
        .bind(day_dates)
        .bind(self.effects)
        .bind(self.boss_runs)
        .bind(self.claims)
        .bind(self.communications)
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// The rows a save writes, over every board of the save.
#[derive(Default)]
struct Writes<'a> {
    state: Vec<StateRow<'a>>,
    boards: Vec<BoardRow<'a>>,
    slots: Vec<SlotRow>,
    runs: Vec<RunRow<'a>>,
    progress: Vec<ProgressRow>,
    heartbeats: Vec<HeartbeatRow>,
    days: Vec<DayRow>,
    effects: Vec<EffectRow<'a>>,
    boss_runs: Vec<BossRunRow<'a>>,
    claims: Vec<ClaimRow<'a>>,
    communications: Vec<CommunicationRow<'a>>,
}

/// One column of `rows`, as an array parameter.
fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

// One statement writes every table with rows to write: one data-modifying CTE per table, each
// below with its parameters numbered from $1, joined and renumbered by `write_statement`. The
// CTEs all run, and the foreign keys between rows inserted by different CTEs are checked at the
// end of the statement. Runs are upserted in board order, so a run that stops being active is
// updated before a newer active run of its slot is inserted (the one-active-run index checks
// row by row).
const WRITE_STATE: &str = "\
state AS (
    INSERT INTO missions_v2_state AS s (user_id, season_id, board_id, state, version, due_at, updated_at)
    SELECT r.user_id, r.season_id, r.board_id, r.state, 1, r.due_at, now()
    FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::timestamptz[])
         AS r(user_id, season_id, board_id, state, due_at)
    ON CONFLICT (user_id, season_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, state = EXCLUDED.state, version = s.version + 1,
        due_at = EXCLUDED.due_at, updated_at = EXCLUDED.updated_at
)";

const WRITE_BOARDS: &str = "\
boards AS (
    INSERT INTO missions_v2_boards (board_id, user_id, season_id, time_zone, generated_at,
                                    updated_at, last_weekly_summary)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::timestamptz[], $7::date[])
    ON CONFLICT (board_id) DO UPDATE
    SET user_id = EXCLUDED.user_id, season_id = EXCLUDED.season_id,
        time_zone = EXCLUDED.time_zone, generated_at = EXCLUDED.generated_at,
        updated_at = EXCLUDED.updated_at, last_weekly_summary = EXCLUDED.last_weekly_summary
)";

const WRITE_SLOTS: &str = "\
slots AS (
    INSERT INTO missions_v2_slots (slot_id, board_id, slot_key, state, mission_id, run_id,
                                   petals_total, petals_remaining, cooldown_until,
                                   reroll_remaining, reroll_used_at, reroll_reset_at, offers)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[],
                         $6::uuid[], $7::int2[], $8::int2[], $9::timestamptz[], $10::int2[],
                         $11::timestamptz[], $12::timestamptz[], $13::int4[])
    ON CONFLICT (slot_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, slot_key = EXCLUDED.slot_key, state = EXCLUDED.state,
        mission_id = EXCLUDED.mission_id, run_id = EXCLUDED.run_id,
        petals_total = EXCLUDED.petals_total, petals_remaining = EXCLUDED.petals_remaining,
        cooldown_until = EXCLUDED.cooldown_until, reroll_remaining = EXCLUDED.reroll_remaining,
        reroll_used_at = EXCLUDED.reroll_used_at, reroll_reset_at = EXCLUDED.reroll_reset_at,
        offers = EXCLUDED.offers
)";

const WRITE_RUNS: &str = "\
runs AS (
    INSERT INTO missions_v2_slot_runs (run_id, board_id, slot_key, position, mission_id, status,
                                       selected_at, start_date, updated_at, expires_at,
                                       cooldown_until, completion_at, failure_at, claim_id,
                                       reward_xp, reward_currency, reward_items, reward_badge_id,
                                       reward_aura_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::uuid[],
                         $6::text[], $7::timestamptz[], $8::date[], $9::timestamptz[],
                         $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
                         $13::timestamptz[], $14::uuid[], $15::int4[], $16::int4[], $17::jsonb[],
                         $18::uuid[], $19::uuid[])
    ON CONFLICT (run_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, slot_key = EXCLUDED.slot_key,
        position = EXCLUDED.position, mission_id = EXCLUDED.mission_id,
        status = EXCLUDED.status, selected_at = EXCLUDED.selected_at,
        start_date = EXCLUDED.start_date, updated_at = EXCLUDED.updated_at,
        expires_at = EXCLUDED.expires_at, cooldown_until = EXCLUDED.cooldown_until,
        completion_at = EXCLUDED.completion_at, failure_at = EXCLUDED.failure_at,
        claim_id = EXCLUDED.claim_id, reward_xp = EXCLUDED.reward_xp,
        reward_currency = EXCLUDED.reward_currency, reward_items = EXCLUDED.reward_items,
        reward_badge_id = EXCLUDED.reward_badge_id, reward_aura_id = EXCLUDED.reward_aura_id
)";

const WRITE_PROGRESS: &str = "\
progress AS (
    INSERT INTO missions_v2_mission_progress (run_id, current, target, unit, updated_at)
    SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::int4[], $4::text[], $5::timestamptz[])
    ON CONFLICT (run_id) DO UPDATE
    SET current = EXCLUDED.current, target = EXCLUDED.target, unit = EXCLUDED.unit,
        updated_at = EXCLUDED.updated_at
)";

const WRITE_HEARTBEATS: &str = "\
heartbeats AS (
    INSERT INTO missions_v2_heartbeat_log (heartbeat_id, run_id, position, heartbeat_date,
                                           petals_before, petals_after, created_at)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::date[], $5::int2[],
                         $6::int2[], $7::timestamptz[])
)";

const WRITE_DAYS: &str = "\
days AS (
    INSERT INTO missions_v2_day_closes (run_id, local_date, outcome, effect_instance_id,
                                        petals_after, closed_at)
    SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::uuid[], $5::int2[],
                         $6::timestamptz[])
)";

const WRITE_EFFECTS: &str = "\
effects AS (
    INSERT INTO missions_v2_effects (effect_instance_id, board_id, position, effect_id,
                                     active_from, active_until, consumed_at, protects_day,
                                     payload_override)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::uuid[], $5::timestamptz[],
                         $6::timestamptz[], $7::timestamptz[], $8::bool[], $9::jsonb[])
    ON CONFLICT (effect_instance_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, position = EXCLUDED.position,
        effect_id = EXCLUDED.effect_id, active_from = EXCLUDED.active_from,
        active_until = EXCLUDED.active_until, consumed_at = EXCLUDED.consumed_at,
        protects_day = EXCLUDED.protects_day, payload_override = EXCLUDED.payload_override
)";

const WRITE_BOSS_RUNS: &str = "\
boss_runs AS (
    INSERT INTO missions_v2_boss_runs (boss_run_id, board_id, boss_id, phase, shield_current,
                                       shield_max, linked_task_id, linked_at, phase2_ready,
                                       phase2_proof, phase2_submitted_at, completed_at, claim_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::int2[], $5::int2[],
                         $6::int2[], $7::uuid[], $8::timestamptz[], $9::bool[], $10::text[],
                         $11::timestamptz[], $12::timestamptz[], $13::uuid[])
    ON CONFLICT (boss_run_id) DO UPDATE
    SET board_id = EXCLUDED.board_id, boss_id = EXCLUDED.boss_id, phase = EXCLUDED.phase,
        shield_current = EXCLUDED.shield_current, shield_max = EXCLUDED.shield_max,
        linked_task_id = EXCLUDED.linked_task_id, linked_at = EXCLUDED.linked_at,
        phase2_ready = EXCLUDED.phase2_ready, phase2_proof = EXCLUDED.phase2_proof,
        phase2_submitted_at = EXCLUDED.phase2_submitted_at,
        completed_at = EXCLUDED.completed_at, claim_id = EXCLUDED.claim_id
)";

const WRITE_CLAIMS: &str = "\
claims AS (
    INSERT INTO missions_v2_claims (claim_id, board_id, user_id, run_id, position, source,
                                    claimed_at, reward_xp, reward_currency, reward_items,
                                    reward_badge_id, reward_aura_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int4[],
                         $6::text[], $7::timestamptz[], $8::int4[], $9::int4[], $10::jsonb[],
                         $11::uuid[], $12::uuid[])
)";

const WRITE_COMMUNICATIONS: &str = "\
communications AS (
    INSERT INTO missions_v2_communications (communication_id, board_id, position, type, message,
                                            created_at)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::text[],
                         $6::timestamptz[])
)";

impl Writes<'_> {
    async fn execute(&self, connection: &mut PgConnection) -> Result<(), SaveError> {
        let mut write = WriteStatement::default();
        write.part(WRITE_STATE, &self.state, bind_state)?;
        write.part(WRITE_BOARDS, &self.boards, bind_boards)?;
        write.part(WRITE_SLOTS, &self.slots, bind_slots)?;
        write.part(WRITE_RUNS, &self.runs, bind_runs)?;
        write.part(WRITE_PROGRESS, &self.progress, bind_progress)?;
        write.part(WRITE_HEARTBEATS, &self.heartbeats, bind_heartbeats)?;
        write.part(WRITE_DAYS, &self.days, bind_days)?;
        write.part(WRITE_EFFECTS, &self.effects, bind_effects)?;
        write.part(WRITE_BOSS_RUNS, &self.boss_runs, bind_boss_runs)?;
        write.part(WRITE_CLAIMS, &self.claims, bind_claims)?;
        write.part(
            WRITE_COMMUNICATIONS,
            &self.communications,
            bind_communications,
        )?;
        if write.arguments.len() == 0 {
            return Ok(());
        }
        let statement = write.statement + "\nSELECT";
        sqlx::query_with(&statement, write.arguments)
            .execute(connection)
            .await?;
        Ok(())
    }
}

/// The write statement of the tables with rows to write, and its arguments. A table with nothing
/// to write is left out rather than given empty arrays: PostgreSQL would still open its indexes
/// and run its part on every call. A heartbeat writes four tables of eleven; leaving the other
/// seven out took `phoenix bench missions` from 0.64–0.80 to 0.81–0.95 of the SQL floor.
struct WriteStatement {
    statement: String,
    arguments: PgArguments,
}

impl Default for WriteStatement {
    fn default() -> Self {
        Self {
            statement: String::from("WITH "),
            arguments: PgArguments::default(),
        }
    }
}

/// Adds one table's columns, as array arguments, in the order of its part's parameters.
type Bind<R> = fn(&mut PgArguments, &[R]) -> Result<(), BoxDynError>;

impl WriteStatement {
    /// Adds a table's part (its parameters numbered from $1) after those so far, with `rows`
    /// bound by `bind`; nothing when there are no rows.
    fn part<R>(&mut self, part: &str, rows: &[R], bind: Bind<R>) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let offset = self.arguments.len();
        if offset > 0 {
            self.statement.push_str(",\n");
        }
        let parameters = renumber_after(part, offset, &mut self.statement);
        bind(&mut self.arguments, rows).map_err(sqlx::Error::Encode)?;
        debug_assert_eq!(self.arguments.len(), offset + parameters, "{part}");
        Ok(())
    }
}

/// Appends `part` to `statement` with each `$n` as `$(n + offset)`; answers the part's number of
/// parameters (its largest `$n`).
fn renumber_after(part: &str, offset: usize, statement: &mut String) -> usize {
    let mut largest = 0;
    let mut rest = part;
    while let Some(at) = rest.find('$') {
        statement.push_str(&rest[..=at]);
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let number: usize = rest[at + 1..at + 1 + digits]
            .parse()
            .expect("every $ of a write part numbers a parameter");
        largest = largest.max(number);
        statement.push_str(&(number + offset).to_string());
        rest = &rest[at + 1 + digits..];
    }
    statement.push_str(rest);
    largest
}

fn bind_state(arguments: &mut PgArguments, rows: &[StateRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.user_id))?;
    arguments.add(column(rows, |r| r.season_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.state))?;
    arguments.add(column(rows, |r| r.due_at))?;
    Ok(())
}

fn bind_boards(arguments: &mut PgArguments, rows: &[BoardRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.user_id))?;
    arguments.add(column(rows, |r| r.season_id))?;
    arguments.add(column(rows, |r| r.time_zone))?;
    arguments.add(column(rows, |r| r.generated_at))?;
    arguments.add(column(rows, |r| r.updated_at))?;
    arguments.add(column(rows, |r| r.last_weekly_summary))?;
    Ok(())
}

fn bind_slots(arguments: &mut PgArguments, rows: &[SlotRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.slot_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.slot_key.as_str()))?;
    arguments.add(column(rows, |r| r.state.as_str()))?;
    arguments.add(column(rows, |r| r.mission_id))?;
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.petals_total))?;
    arguments.add(column(rows, |r| r.petals_remaining))?;
    arguments.add(column(rows, |r| r.cooldown_until))?;
    arguments.add(column(rows, |r| r.reroll_remaining))?;
    arguments.add(column(rows, |r| r.reroll_used_at))?;
    arguments.add(column(rows, |r| r.reroll_reset_at))?;
    arguments.add(column(rows, |r| r.offers))?;
    Ok(())
}

fn bind_runs(arguments: &mut PgArguments, rows: &[RunRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.slot_key.as_str()))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.mission_id))?;
    arguments.add(column(rows, |r| r.status.as_str()))?;
    arguments.add(column(rows, |r| r.selected_at))?;
    arguments.add(column(rows, |r| r.start_date))?;
    arguments.add(column(rows, |r| r.updated_at))?;
    arguments.add(column(rows, |r| r.expires_at))?;
    arguments.add(column(rows, |r| r.cooldown_until))?;
    arguments.add(column(rows, |r| r.completion_at))?;
    arguments.add(column(rows, |r| r.failure_at))?;
    arguments.add(column(rows, |r| r.claim_id))?;
    arguments.add(column(rows, |r| r.reward.map(|reward| reward.xp)))?;
    arguments.add(column(rows, |r| r.reward.map(|reward| reward.currency)))?;
    arguments.add(column(rows, |r| r.reward.map(|reward| Json(&reward.items))))?;
    arguments.add(column(rows, |r| {
        r.reward.and_then(|reward| reward.badge_id)
    }))?;
    arguments.add(column(rows, |r| r.reward.and_then(|reward| reward.aura_id)))?;
    Ok(())
}

fn bind_progress(arguments: &mut PgArguments, rows: &[ProgressRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.current))?;
    arguments.add(column(rows, |r| r.target))?;
    arguments.add(column(rows, |r| r.unit.as_str()))?;
    arguments.add(column(rows, |r| r.updated_at))?;
    Ok(())
}

fn bind_heartbeats(arguments: &mut PgArguments, rows: &[HeartbeatRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.heartbeat_id))?;
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.date))?;
    arguments.add(column(rows, |r| r.petals_before))?;
    arguments.add(column(rows, |r| r.petals_after))?;
    arguments.add(column(rows, |r| r.created_at))?;
    Ok(())
}

fn bind_days(arguments: &mut PgArguments, rows: &[DayRow]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.local_date))?;
    arguments.add(column(rows, |r| r.outcome.as_str()))?;
    arguments.add(column(rows, |r| r.effect_instance_id))?;
    arguments.add(column(rows, |r| r.petals_after))?;
    arguments.add(column(rows, |r| r.closed_at))?;
    Ok(())
}

fn bind_effects(arguments: &mut PgArguments, rows: &[EffectRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.effect_instance_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.effect_id))?;
    arguments.add(column(rows, |r| r.active_from))?;
    arguments.add(column(rows, |r| r.active_until))?;
    arguments.add(column(rows, |r| r.consumed_at))?;
    arguments.add(column(rows, |r| r.protects_day))?;
    arguments.add(column(rows, |r| Json(r.payload_override)))?;
    Ok(())
}

fn bind_boss_runs(arguments: &mut PgArguments, rows: &[BossRunRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.boss_run_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.boss_id))?;
    arguments.add(column(rows, |r| r.phase))?;
    arguments.add(column(rows, |r| r.shield_current))?;
    arguments.add(column(rows, |r| r.shield_max))?;
    arguments.add(column(rows, |r| r.linked_task_id))?;
    arguments.add(column(rows, |r| r.linked_at))?;
    arguments.add(column(rows, |r| r.phase2_ready))?;
    arguments.add(column(rows, |r| r.phase2_proof))?;
    arguments.add(column(rows, |r| r.phase2_submitted_at))?;
    arguments.add(column(rows, |r| r.completed_at))?;
    arguments.add(column(rows, |r| r.claim_id))?;
    Ok(())
}

fn bind_claims(arguments: &mut PgArguments, rows: &[ClaimRow<'_>]) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.claim_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.user_id))?;
    arguments.add(column(rows, |r| r.run_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.source.as_str()))?;
    arguments.add(column(rows, |r| r.claimed_at))?;
    arguments.add(column(rows, |r| r.reward_xp))?;
    arguments.add(column(rows, |r| r.reward_currency))?;
    arguments.add(column(rows, |r| Json(r.reward_items)))?;
    arguments.add(column(rows, |r| r.reward_badge_id))?;
    arguments.add(column(rows, |r| r.reward_aura_id))?;
    Ok(())
}

fn bind_communications(
    arguments: &mut PgArguments,
    rows: &[CommunicationRow<'_>],
) -> Result<(), BoxDynError> {
    arguments.add(column(rows, |r| r.communication_id))?;
    arguments.add(column(rows, |r| r.board_id))?;
    arguments.add(column(rows, |r| r.position))?;
    arguments.add(column(rows, |r| r.kind.as_str()))?;
    arguments.add(column(rows, |r| r.message))?;
    arguments.add(column(rows, |r| r.created_at))?;
    Ok(())
}
