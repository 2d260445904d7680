//! Every SQL statement of the saga engine. A step transition is one statement: it appends the
//! log records, refreshes the cached state and renews the lease, and does nothing when the
//! writer's lease generation is no longer the saga's (the `UPDATE … WHERE lease_generation`
//! re-checks the row after a concurrent adoption, so a stale owner is fenced off).

use std::time::Duration;

use chrono::{DateTime, Utc};
use phoenix_runtime::Error;
use phoenix_runtime::stream::{EventRows, NewEvent, Origin};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::log::{Direction, LogRecord, RecordKind, SagaState, StepFailure};

/// A saga's row.
#[derive(Debug, Clone)]
pub struct SagaRow {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub version: u32,
    pub fingerprint: Vec<u8>,
    pub user_id: String,
    pub input: serde_json::Value,
    pub traceparent: String,
    pub tracestate: String,
    pub state: SagaState,
    pub deadline_at: DateTime<Utc>,
    /// By the database's clock, so replicas with skewed clocks agree.
    pub lease_expired: bool,
    pub cancel_requested: bool,
}

/// A saga about to begin.
#[derive(Debug)]
pub struct NewSaga<'a> {
    pub saga_id: Uuid,
    pub saga_type: &'a str,
    pub version: u32,
    pub key_scope: &'a str,
    pub idempotency_key: &'a str,
    pub fingerprint: &'a [u8],
    pub user_id: &'a str,
    pub input: &'a serde_json::Value,
    pub traceparent: &'a str,
    pub tracestate: &'a str,
    pub deadline: Duration,
    pub owner_id: Uuid,
    pub lease: Duration,
}

/// A record to append (its `seq`, generation and time are the writer's).
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub seq: i64,
    pub kind: RecordKind,
    pub step: Option<usize>,
    pub step_name: &'static str,
    pub attempt: u32,
    pub output: Option<serde_json::Value>,
    pub failure: Option<StepFailure>,
    pub direction: Option<Direction>,
    pub started_at: DateTime<Utc>,
}

const SAGA_COLUMNS: &str = "saga_id, saga_type, definition_version, fingerprint, user_id, input,
    traceparent, tracestate, state, deadline_at, lease_expires_at < now() AS lease_expired,
    cancel_requested";

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn saga_row(row: &sqlx::postgres::PgRow) -> Result<SagaRow, Error> {
    let state: String = row.try_get("state")?;
    let version: i32 = row.try_get("definition_version")?;
    Ok(SagaRow {
        saga_id: row.try_get("saga_id")?,
        saga_type: row.try_get("saga_type")?,
        version: u32::try_from(version)
            .map_err(|_| Error::invariant("SAGA_VERSION_NEGATIVE", version.to_string()))?,
        fingerprint: row.try_get("fingerprint")?,
        user_id: row.try_get("user_id")?,
        input: row.try_get("input")?,
        traceparent: row.try_get("traceparent")?,
        tracestate: row.try_get("tracestate")?,
        state: SagaState::parse(&state)
            .ok_or_else(|| Error::invariant("SAGA_STATE_UNKNOWN", state.clone()))?,
        deadline_at: row.try_get("deadline_at")?,
        lease_expired: row.try_get("lease_expired")?,
        cancel_requested: row.try_get("cancel_requested")?,
    })
}

/// Creates the saga and its `started` record in one statement; `false` when the caller's key
/// is taken (a concurrent creator with the same key waits here for the first to commit).
pub async fn create(pool: &PgPool, saga: &NewSaga<'_>) -> Result<bool, Error> {
    let created = sqlx::query(
        "WITH created AS (
             INSERT INTO sagas (saga_id, saga_type, definition_version, key_scope, idempotency_key,
                                fingerprint, user_id, input, traceparent, tracestate, state,
                                created_at, updated_at, deadline_at, owner_id, lease_generation,
                                lease_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'RUNNING', now(), now(),
                     now() + $11 * interval '1 millisecond', $12, 1,
                     now() + $13 * interval '1 millisecond')
             ON CONFLICT (key_scope, idempotency_key) DO NOTHING
             RETURNING saga_id, created_at)
         INSERT INTO saga_log (saga_id, seq, generation, kind, started_at, recorded_at)
         SELECT saga_id, 1, 1, 'started', created_at, created_at FROM created",
    )
    .bind(saga.saga_id)
    .bind(saga.saga_type)
    .bind(saga.version as i32)
    .bind(saga.key_scope)
    .bind(saga.idempotency_key)
    .bind(saga.fingerprint)
    .bind(saga.user_id)
    .bind(saga.input)
    .bind(saga.traceparent)
    .bind(saga.tracestate)
    .bind(millis(saga.deadline))
    .bind(saga.owner_id)
    .bind(millis(saga.lease))
    .execute(pool)
    .await?;
    Ok(created.rows_affected() == 1)
}

pub async fn find_by_key(pool: &PgPool, scope: &str, key: &str) -> Result<Option<SagaRow>, Error> {
    let sql =
        format!("SELECT {SAGA_COLUMNS} FROM sagas WHERE key_scope = $1 AND idempotency_key = $2");
    let row = sqlx::query(&sql)
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(saga_row).transpose()
}

pub async fn load(pool: &PgPool, saga_id: Uuid) -> Result<Option<SagaRow>, Error> {
    let sql = format!("SELECT {SAGA_COLUMNS} FROM sagas WHERE saga_id = $1");
    let row = sqlx::query(&sql).bind(saga_id).fetch_optional(pool).await?;
    row.as_ref().map(saga_row).transpose()
}

/// The saga's log, in `seq` order.
pub async fn load_log(pool: &PgPool, saga_id: Uuid) -> Result<Vec<LogRecord>, Error> {
    let rows = sqlx::query(
        "SELECT seq, kind, step_index, step_name, attempt, output, failure, direction,
                generation, started_at, recorded_at
         FROM saga_log WHERE saga_id = $1 ORDER BY seq",
    )
    .bind(saga_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(log_record).collect()
}

fn log_record(row: &sqlx::postgres::PgRow) -> Result<LogRecord, Error> {
    let kind: String = row.try_get("kind")?;
    let step: Option<i32> = row.try_get("step_index")?;
    let attempt: i32 = row.try_get("attempt")?;
    let failure: Option<serde_json::Value> = row.try_get("failure")?;
    let direction: Option<String> = row.try_get("direction")?;
    Ok(LogRecord {
        seq: row.try_get("seq")?,
        kind: RecordKind::parse(&kind)
            .ok_or_else(|| Error::invariant("SAGA_LOG_KIND_UNKNOWN", kind.clone()))?,
        step: step.map(|s| s as usize),
        step_name: row.try_get("step_name")?,
        attempt: attempt.max(0) as u32,
        output: row.try_get("output")?,
        failure: failure
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| Error::invariant("SAGA_LOG_FAILURE_UNREADABLE", e.to_string()))?,
        direction: direction.map(|d| {
            if d == "backward" {
                Direction::Backward
            } else {
                Direction::Forward
            }
        }),
        generation: row.try_get("generation")?,
        started_at: row.try_get("started_at")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn direction_text(direction: Direction) -> &'static str {
    match direction {
        Direction::Forward => "forward",
        Direction::Backward => "backward",
    }
}

/// What an append found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written; `cancel_requested` is the saga's flag as the write saw it.
    Written { cancel_requested: bool },
    /// Not written: another owner holds the saga now.
    Fenced,
}

const APPEND: &str = "WITH owned AS (
         UPDATE sagas
         SET state = $3, updated_at = now(),
             lease_expires_at = now() + $4 * interval '1 millisecond',
             finished_at = CASE WHEN $3 IN ('COMPLETED', 'COMPENSATED') THEN now() END
         WHERE saga_id = $1 AND lease_generation = $2
         RETURNING saga_id, cancel_requested),
     logged AS (
         INSERT INTO saga_log (saga_id, seq, generation, kind, step_index, step_name, attempt,
                               output, failure, direction, started_at)
         SELECT owned.saga_id, r.seq, $2, r.kind, r.step_index, r.step_name, r.attempt,
                r.output::jsonb, r.failure::jsonb, r.direction, r.started_at
         FROM owned,
              UNNEST($5::bigint[], $6::text[], $7::int[], $8::text[], $9::int[], $10::text[],
                     $11::text[], $12::text[], $13::timestamptz[])
                  AS r(seq, kind, step_index, step_name, attempt, output, failure, direction,
                       started_at))
     SELECT cancel_requested,
            -- A transition the saga can replay (see `append`) does not wait for the WAL flush.
            CASE WHEN $14 THEN '' ELSE set_config('synchronous_commit', 'off', true) END
                AS relaxed
     FROM owned";

fn bind_append<'q>(
    saga_id: Uuid,
    generation: i64,
    state: Transition,
    lease: Duration,
    records: &[NewRecord],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let json = |value: Option<String>| value;
    sqlx::query(APPEND)
        .bind(saga_id)
        .bind(generation)
        .bind(state.state.as_str())
        .bind(millis(lease))
        .bind(records.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| r.step.map(|s| s as i32))
                .collect::<Vec<_>>(),
        )
        .bind(records.iter().map(|r| r.step_name).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt as i32).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| json(r.output.as_ref().map(ToString::to_string)))
                .collect::<Vec<_>>(),
        )
        .bind(
            records
                .iter()
                .map(|r| {
                    r.failure
                        .as_ref()
                        .and_then(|f| serde_json::to_string(f).ok())
                })
                .collect::<Vec<_>>(),
        )
        .bind(
            records
                .iter()
                .map(|r| r.direction.map(direction_text))
                .collect::<Vec<_>>(),
        )
        .bind(records.iter().map(|r| r.started_at).collect::<Vec<_>>())
        .bind(state.durable)
}

/// The state a write leaves the saga in, and whether it must be flushed before it is
/// acted on.
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub state: SagaState,
    /// Whether the commit waits for the WAL flush.
    pub durable: bool,
}

/// Appends `records` and sets the cached state, as the owner of `generation`.
///
/// A write that changes the state (a decision: compensate, the end, stuck) waits for its
/// commit to be flushed; a write within a state (a step done, an attempt failed, a step
/// undone) commits asynchronously (`synchronous_commit = off` for that transaction alone).
/// That is safe because of what losing such a write means: PostgreSQL flushes the WAL in
/// order, so a crash of the database can only lose the writes after the last durable one, and
/// no decision rests on them. The saga then resumes from the durable prefix, in the same
/// direction, and calls the lost steps (or compensations) again with the same idempotency
/// keys, which the participants answer with what they did the first time. The start of a
/// saga is durable too (the caller's key names it), and a caller is answered only after a
/// durable end, so nothing a caller saw is lost.
pub async fn append(
    pool: &PgPool,
    saga_id: Uuid,
    generation: i64,
    state: Transition,
    lease: Duration,
    records: &[NewRecord],
) -> Result<Appended, Error> {
    let row = bind_append(saga_id, generation, state, lease, records)
        .fetch_optional(pool)
        .await?;
    appended(row.as_ref())
}

fn appended(row: Option<&sqlx::postgres::PgRow>) -> Result<Appended, Error> {
    Ok(match row {
        Some(row) => Appended::Written {
            cancel_requested: row.try_get("cancel_requested")?,
        },
        None => Appended::Fenced,
    })
}

/// [`append`] and the saga's end events in one transaction: both commit or neither.
#[allow(clippy::too_many_arguments)]
pub async fn append_with_events(
    pool: &PgPool,
    saga_id: Uuid,
    generation: i64,
    state: Transition,
    lease: Duration,
    records: &[NewRecord],
    events: &[NewEvent],
    origin: &Origin,
) -> Result<Appended, Error> {
    if events.is_empty() {
        return append(pool, saga_id, generation, state, lease, records).await;
    }
    let mut transaction = pool.begin().await?;
    let row = bind_append(saga_id, generation, state, lease, records)
        .fetch_optional(&mut *transaction)
        .await?;
    if row.is_none() {
        transaction.rollback().await?;
        return Ok(Appended::Fenced);
    }
    let sql = EventRows::insert(1, 2);
    EventRows::new(events, origin)
        .bind(sqlx::query(&sql).bind(Uuid::nil()))
        .execute(&mut *transaction)
        .await
        .map_err(phoenix_runtime::stream::version_conflict)?;
    transaction.commit().await?;
    appended(row.as_ref())
}

/// Why a saga is taken over.
#[derive(Debug, Clone, Copy)]
pub enum Takeover {
    /// Its owner's lease expired (a crash, a stall): recovery.
    Expired,
    /// It is stuck and an operator resumes it (`RetrySaga`), in `state`.
    Retry(SagaState),
}

/// Takes the saga over for `owner` with the next lease generation and records it (`adopted`
/// or `retry_requested`), in one statement; `None` when the saga is not in a state to be taken
/// (another replica adopted it first, its lease is live, it is not stuck). The new generation
/// fences off the previous owner.
pub async fn take_over(
    pool: &PgPool,
    saga_id: Uuid,
    owner: Uuid,
    lease: Duration,
    takeover: Takeover,
) -> Result<Option<i64>, Error> {
    let (condition, new_state, kind) = match takeover {
        Takeover::Expired => (
            "state IN ('RUNNING', 'COMPENSATING') AND lease_expires_at < now()",
            None,
            RecordKind::Adopted,
        ),
        Takeover::Retry(state) => ("state = 'STUCK'", Some(state), RecordKind::RetryRequested),
    };
    let sql = format!(
        "WITH taken AS (
             UPDATE sagas
             SET owner_id = $2, lease_generation = lease_generation + 1,
                 lease_expires_at = now() + $3 * interval '1 millisecond',
                 state = coalesce($4, state), updated_at = now()
             WHERE saga_id = $1 AND {condition}
             RETURNING saga_id, lease_generation),
         logged AS (
             INSERT INTO saga_log (saga_id, seq, generation, kind, started_at)
             SELECT taken.saga_id,
                    (SELECT max(seq) + 1 FROM saga_log WHERE saga_id = $1),
                    taken.lease_generation, $5, now()
             FROM taken)
         SELECT lease_generation FROM taken"
    );
    let row = sqlx::query(&sql)
        .bind(saga_id)
        .bind(owner)
        .bind(millis(lease))
        .bind(new_state.map(SagaState::as_str))
        .bind(kind.as_str())
        .fetch_optional(pool)
        .await;
    // The previous owner appended a record after this statement's snapshot was taken: its
    // `seq` is taken, so nothing was done; the next look takes the saga over.
    let row = match row {
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|e| e.constraint() == Some("saga_log_pkey")) =>
        {
            return Ok(None);
        }
        row => row?,
    };
    row.map(|row| row.try_get("lease_generation"))
        .transpose()
        .map_err(Into::into)
}

/// Active sagas whose lease expired (id, type, version), longest expired first.
pub async fn expired(pool: &PgPool, limit: i64) -> Result<Vec<(Uuid, String, u32)>, Error> {
    let rows = sqlx::query(
        "SELECT saga_id, saga_type, definition_version FROM sagas
         WHERE state IN ('RUNNING', 'COMPENSATING') AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i32 = row.try_get("definition_version")?;
            Ok((
                row.try_get("saga_id")?,
                row.try_get("saga_type")?,
                version.max(0) as u32,
            ))
        })
        .collect()
}

/// Renews the leases of `held` (saga, generation); answers the sagas still held.
pub async fn renew(
    pool: &PgPool,
    held: &[(Uuid, i64)],
    lease: Duration,
) -> Result<Vec<Uuid>, Error> {
    let rows = sqlx::query(
        "UPDATE sagas s SET lease_expires_at = now() + $3 * interval '1 millisecond'
         FROM UNNEST($1::uuid[], $2::bigint[]) AS h(saga_id, generation)
         WHERE s.saga_id = h.saga_id AND s.lease_generation = h.generation
         RETURNING s.saga_id",
    )
    .bind(held.iter().map(|h| h.0).collect::<Vec<_>>())
    .bind(held.iter().map(|h| h.1).collect::<Vec<_>>())
    .bind(millis(lease))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| row.try_get("saga_id").map_err(Into::into))
        .collect()
}

/// Sets the cancel flag of a running saga; `false` when it is not running.
pub async fn request_cancel(pool: &PgPool, saga_id: Uuid) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sagas SET cancel_requested = true WHERE saga_id = $1 AND state = 'RUNNING'",
    )
    .bind(saga_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many sagas are stuck.
pub async fn count_stuck(pool: &PgPool) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM sagas WHERE state = 'STUCK'")
            .fetch_one(pool)
            .await?,
    )
}

const SUMMARY: &str =
    "SELECT s.saga_id, s.saga_type, s.definition_version, s.user_id, s.idempotency_key,
        s.state, s.input, s.created_at, s.updated_at, s.finished_at, s.deadline_at, s.owner_id,
        s.lease_generation, s.traceparent, f.step_name AS failed_step, f.failure
     FROM sagas s
     LEFT JOIN LATERAL (
         SELECT step_name, failure FROM saga_log l
         WHERE l.saga_id = s.saga_id
           AND l.kind IN ('step_refused', 'step_unknown', 'cancelled', 'stuck')
         ORDER BY seq LIMIT 1) f ON true";

fn summary(row: &sqlx::postgres::PgRow) -> Result<super::view::SagaSummary, Error> {
    let state: String = row.try_get("state")?;
    let version: i32 = row.try_get("definition_version")?;
    let failed_step: Option<String> = row.try_get("failed_step")?;
    let failure: Option<serde_json::Value> = row.try_get("failure")?;
    let failure = match (failed_step, failure) {
        (Some(step), Some(failure)) => Some((
            step,
            serde_json::from_value(failure)
                .map_err(|e| Error::invariant("SAGA_LOG_FAILURE_UNREADABLE", e.to_string()))?,
        )),
        _ => None,
    };
    Ok(super::view::SagaSummary {
        saga_id: row.try_get("saga_id")?,
        saga_type: row.try_get("saga_type")?,
        version: version.max(0) as u32,
        user_id: row.try_get("user_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        state: SagaState::parse(&state)
            .ok_or_else(|| Error::invariant("SAGA_STATE_UNKNOWN", state.clone()))?,
        input: row.try_get("input")?,
        failure,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
        deadline_at: row.try_get("deadline_at")?,
        owner_id: row.try_get("owner_id")?,
        generation: row.try_get("lease_generation")?,
        traceparent: row.try_get("traceparent")?,
    })
}

/// Sagas matching `filter`, newest first, after `after`.
pub async fn list(
    pool: &PgPool,
    filter: &super::view::SagaFilter,
    after: Option<super::view::SagaCursor>,
    limit: i64,
) -> Result<Vec<super::view::SagaSummary>, Error> {
    let sql = format!(
        "{SUMMARY}
         WHERE ($1::text IS NULL OR s.state = $1)
           AND ($2::text IS NULL OR s.saga_type = $2)
           AND ($3::text IS NULL OR s.user_id = $3)
           AND ($4::timestamptz IS NULL OR s.created_at >= $4)
           AND ($5::timestamptz IS NULL OR s.created_at < $5)
           AND ($6::timestamptz IS NULL OR (s.created_at, s.saga_id) < ($6, $7))
         ORDER BY s.created_at DESC, s.saga_id DESC
         LIMIT $8"
    );
    let rows = sqlx::query(&sql)
        .bind(filter.state.map(SagaState::as_str))
        .bind(filter.saga_type.as_deref())
        .bind(filter.user_id.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(after.map(|a| a.created_at))
        .bind(after.map_or(Uuid::nil(), |a| a.saga_id))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(summary).collect()
}

/// The one saga `saga_id`, as listed (empty when there is none).
pub async fn list_one(
    pool: &PgPool,
    saga_id: Uuid,
) -> Result<Vec<super::view::SagaSummary>, Error> {
    let sql = format!("{SUMMARY} WHERE s.saga_id = $1");
    let rows = sqlx::query(&sql).bind(saga_id).fetch_all(pool).await?;
    rows.iter().map(summary).collect()
}
