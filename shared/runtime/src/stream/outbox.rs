//! Appending events in the transaction of the change they record.

use sqlx::PgConnection;
use uuid::Uuid;

use super::NewEvent;
use crate::error::{Error, Refusal};

/// Appends `events` for `tenant_id` (the nil UUID in contexts without tenants), tagged with the
/// current call's trace context and request id, in the caller's transaction. A concurrent
/// writer of the same stream version is refused as ABORTED `STREAM_VERSION_CONFLICT`.
pub async fn append(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    events: &[NewEvent],
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = EventRows::insert(1, 2);
    let query = sqlx::query(&sql).bind(tenant_id);
    let current = Origin::current();
    EventRows::new(events, &current)
        .bind(query)
        .execute(connection)
        .await
        .map_err(version_conflict)?;
    Ok(())
}

/// The error of a statement that appended events: a concurrent writer of the same stream
/// version is a conflict the caller can retry; anything else is what the database said.
pub fn version_conflict(error: sqlx::Error) -> Error {
    let conflict = error.as_database_error().is_some_and(|e| {
        e.code().as_deref() == Some("23505") && e.constraint() == Some("events_stream_version")
    });
    if conflict {
        Refusal::conflict(
            "STREAM_VERSION_CONFLICT",
            "the aggregate changed concurrently; read it again and retry",
        )
        .into()
    } else {
        error.into()
    }
}

/// The call an event came from: its W3C trace context and request id, so a consumer can join
/// the event to the trace of the change that made it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub traceparent: String,
    pub tracestate: String,
    pub correlation_id: String,
}

impl Origin {
    /// The current task's call: its span's trace context and the request id of the call.
    pub fn current() -> Self {
        let (traceparent, tracestate) = crate::telemetry::current_trace_headers();
        Self {
            traceparent,
            tracestate,
            correlation_id: crate::middleware::CURRENT_CALL
                .try_with(|call| call.request_id.clone())
                .unwrap_or_default(),
        }
    }
}

/// Events to append as one array per column: what [`append`] binds, and what a statement that
/// writes events together with the change they record binds (one round trip instead of two).
pub struct EventRows<'e> {
    ids: Vec<Uuid>,
    aggregate_types: Vec<&'e str>,
    aggregate_ids: Vec<&'e str>,
    versions: Vec<i64>,
    event_types: Vec<&'e str>,
    payloads: Vec<&'e [u8]>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
    priorities: Vec<i16>,
    traceparents: Vec<&'e str>,
    tracestates: Vec<&'e str>,
    correlation_ids: Vec<&'e str>,
}

impl<'e> EventRows<'e> {
    /// The rows of `events`; those without an origin of their own come from `current` (the
    /// writing task's call: [`Origin::current`]).
    pub fn new(events: &'e [NewEvent], current: &'e Origin) -> Self {
        let origin = |e: &'e NewEvent| e.origin.as_ref().unwrap_or(current);
        Self {
            ids: events.iter().map(|_| Uuid::now_v7()).collect(),
            aggregate_types: events.iter().map(|e| e.aggregate_type).collect(),
            aggregate_ids: events.iter().map(|e| e.aggregate_id.as_str()).collect(),
            versions: events.iter().map(|e| e.version).collect(),
            event_types: events.iter().map(|e| e.event_type).collect(),
            payloads: events.iter().map(|e| e.payload.as_slice()).collect(),
            times: events.iter().map(|e| e.occurred_at).collect(),
            priorities: events.iter().map(|e| e.priority as i16).collect(),
            traceparents: events
                .iter()
                .map(|e| origin(e).traceparent.as_str())
                .collect(),
            tracestates: events
                .iter()
                .map(|e| origin(e).tracestate.as_str())
                .collect(),
            correlation_ids: events
                .iter()
                .map(|e| origin(e).correlation_id.as_str())
                .collect(),
        }
    }

    /// Parameters [`EventRows::bind`] binds.
    pub const PARAMETERS: usize = 11;

    /// The INSERT, with the tenant id in parameter `$tenant` and the [`EventRows::bind`]
    /// parameters numbered from `$first` ([`EventRows::PARAMETERS`] of them). The rows are
    /// inserted in the order given, so a stream's versions must be given in increasing order.
    pub fn insert(tenant: usize, first: usize) -> String {
        let p = |offset: usize| format!("${}", first + offset);
        format!(
            "INSERT INTO events (tenant_id, event_id, aggregate_type, aggregate_id,
                                 aggregate_version, event_type, payload, occurred_at, priority,
                                 traceparent, tracestate, correlation_id)
             SELECT ${tenant}, e.id, e.aggregate_type, e.aggregate_id, e.version, e.event_type,
                    e.payload, e.occurred_at, e.priority, e.traceparent, e.tracestate,
                    e.correlation_id
             FROM UNNEST({}::uuid[], {}::text[], {}::text[], {}::bigint[], {}::text[],
                         {}::bytea[], {}::timestamptz[], {}::smallint[], {}::text[],
                         {}::text[], {}::text[])
                  WITH ORDINALITY AS e(id, aggregate_type, aggregate_id, version, event_type,
                                       payload, occurred_at, priority, traceparent, tracestate,
                                       correlation_id, n)
             ORDER BY e.n",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            p(9),
            p(10),
        )
    }

    /// Binds the parameters of [`EventRows::insert`], in order, after those bound so far.
    pub fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'e: 'q,
    {
        query
            .bind(self.ids)
            .bind(self.aggregate_types)
            .bind(self.aggregate_ids)
            .bind(self.versions)
            .bind(self.event_types)
            .bind(self.payloads)
            .bind(self.times)
            .bind(self.priorities)
            .bind(self.traceparents)
            .bind(self.tracestates)
            .bind(self.correlation_ids)
    }
}
