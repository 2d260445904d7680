//! The one event stream mechanism of every Phoenix context: an outbox written in the change's
//! own transaction, positions given in commit order, and a catch-up-then-follow subscription.
//!
//! **Writing.** A change appends its events with [`append`] (or folds [`EventRows`] into its
//! own statement) in its transaction, so the change and its events commit together or not at
//! all. An aggregate's events must be appended while the change holds that aggregate's lock
//! (a `FOR UPDATE` on its row), which it does anyway to compute the next version; the unique
//! `(tenant, aggregate, version)` key refuses a writer that did not.
//!
//! **Positions.** A sequence number taken at insert time is not a delivery order: a
//! transaction that took number 10 may commit after one that took 11, and a subscriber that has
//! delivered 11 would never see 10. So positions are given after commit, by the
//! [`sequencer`]: one pass at a time (a row lock on `event_sequencer`, so replicas take turns),
//! it gives the next consecutive positions to the committed events that have none, in insert
//! order, with an aggregate's events in version order. Positions are therefore gap-free
//! (1, 2, 3, … for the whole service), increase in the order events became visible, and never
//! change; a subscriber that resumes after position `p` misses nothing and gets nothing twice.
//! Finding the events without a position stays cheap however long some transaction runs: each
//! pass remembers where unpositioned events can still appear — in transactions that had not
//! started when it looked (`from_txid`, its snapshot's xmax) and in those still running then
//! (`open_txids`, its snapshot's xip list) — and the next pass looks only there, through the
//! index on `events.txid`.
//!
//! **Following.** [`EventStream::subscribe`] reads pages of positioned events after a
//! position, then waits for the sequencer to give more. While a process has subscribers, its
//! sequencer runs as soon as a writer of the process rings [`EventStream::appended`] after its
//! commit (a few milliseconds); otherwise, and for events written by other replicas, it runs
//! every 250 ms, and subscribers poll as often for passes other replicas ran.
//!
//! Each context that streams events has these tables in its own schema:
//!
//! ```sql
//! CREATE TABLE events (
//!     seq               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- insert order
//!     tenant_id         uuid        NOT NULL,  -- the nil UUID in contexts without tenants
//!     event_id          uuid        NOT NULL UNIQUE,
//!     aggregate_type    text        NOT NULL,
//!     aggregate_id      text        NOT NULL,
//!     aggregate_version bigint      NOT NULL CHECK (aggregate_version > 0),
//!     event_type        text        NOT NULL,
//!     payload           bytea       NOT NULL,
//!     occurred_at       timestamptz NOT NULL,
//!     priority          smallint    NOT NULL DEFAULT 2,
//!     traceparent       text        NOT NULL DEFAULT '',
//!     tracestate        text        NOT NULL DEFAULT '',
//!     correlation_id    text        NOT NULL DEFAULT '',
//!     txid              xid8        NOT NULL DEFAULT pg_current_xact_id(),
//!     CONSTRAINT events_stream_version
//!         UNIQUE (tenant_id, aggregate_type, aggregate_id, aggregate_version)
//! );
//! CREATE INDEX events_txid ON events (txid);
//! CREATE TABLE event_positions (
//!     position  bigint PRIMARY KEY,
//!     seq       bigint NOT NULL UNIQUE,
//!     tenant_id uuid   NOT NULL
//! );
//! CREATE INDEX event_positions_tenant ON event_positions (tenant_id, position);
//! CREATE TABLE event_sequencer (
//!     singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
//!     next_position bigint  NOT NULL,
//!     from_txid     xid8    NOT NULL,
//!     open_txids    xid8[]  NOT NULL DEFAULT '{}'
//! );
//! INSERT INTO event_sequencer VALUES (true, 1, '1', '{}');
//! ```

mod outbox;
mod read;
pub mod sequencer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use outbox::{EventRows, Origin, append, version_conflict};
pub use read::{is_resumable, read_stream, stream_version};

use crate::error::Error;

/// How often a caught-up subscriber looks for positions another replica's sequencer gave.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How often the sequencer runs when nothing in this process woke it, or when this process has
/// no subscriber to wake it for: positions are then given within this interval.
const IDLE_INTERVAL: Duration = Duration::from_millis(250);
/// After a pass, the sequencer waits this long before the next one, so a burst of commits is
/// sequenced in a few passes rather than one pass (and one commit) per commit.
const COALESCE: Duration = Duration::from_millis(5);
/// Events read per query while catching up.
const PAGE: i64 = 500;

/// Delivery priority of an event (`phoenix.events.v1.Priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    Low = 1,
    #[default]
    Normal = 2,
    High = 3,
    Critical = 4,
}

/// An event to append at a known stream version.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The stream's version after this event: the writer read the current one under the
    /// aggregate's lock, so a concurrent writer of the same version fails on the unique key.
    pub version: i64,
    /// Full protobuf name of the payload, e.g. `phoenix.ledger.v1.AccountBalanceChanged`.
    pub event_type: &'static str,
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
    pub priority: Priority,
    /// The call that made the event, when it is not the one writing it (a call written
    /// together with others by another task); `None`: the writing task's current call.
    pub origin: Option<Origin>,
}

impl NewEvent {
    pub fn new(
        aggregate_type: &'static str,
        aggregate_id: impl ToString,
        version: i64,
        event_type: &'static str,
        payload: &impl prost::Message,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            aggregate_type,
            aggregate_id: aggregate_id.to_string(),
            version,
            event_type,
            payload: payload.encode_to_vec(),
            occurred_at,
            priority: Priority::Normal,
            origin: None,
        }
    }

    /// The event, tagged as made by the call `origin` rather than the writing task's.
    pub fn made_by(mut self, origin: &Origin) -> Self {
        self.origin = Some(origin.clone());
        self
    }
}

/// A stored event, as read back, with its position in the service's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
    pub priority: i16,
    pub traceparent: String,
    pub tracestate: String,
    pub correlation_id: String,
}

impl StoredEvent {
    /// The `phoenix.events.v1.Event` envelope of this event.
    pub fn envelope(&self) -> phoenix_proto::events::v1::Event {
        use phoenix_proto::events::v1 as pb;
        let priority = match self.priority {
            1 => pb::Priority::Low,
            3 => pb::Priority::High,
            4 => pb::Priority::Critical,
            _ => pb::Priority::Normal,
        };
        pb::Event {
            id: self.event_id.to_string(),
            r#type: self.event_type.clone(),
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            aggregate_version: self.version,
            occurred_at: Some(crate::convert::timestamp(self.occurred_at)),
            priority: priority.into(),
            trace_context: Some(pb::TraceContext {
                traceparent: self.traceparent.clone(),
                tracestate: self.tracestate.clone(),
            }),
            payload: Some(prost_types::Any {
                type_url: format!("type.googleapis.com/{}", self.event_type),
                value: self.payload.clone(),
            }),
            tenant_id: if self.tenant_id.is_nil() {
                String::new()
            } else {
                self.tenant_id.to_string()
            },
            correlation_id: self.correlation_id.clone(),
        }
    }
}

/// The `after_position` of a Subscribe request: 0 (from the start) or the position of a
/// delivered event; negative is `INVALID_POSITION`.
pub fn after_position(violations: &mut crate::Violations, value: i64) -> i64 {
    violations.check(
        value >= 0,
        "after_position",
        "INVALID_POSITION",
        "must be 0 (from the start) or the position of a delivered event",
    );
    value
}

/// A tonic server-streaming answer: one message per event.
pub type ResponseStream<T> =
    std::pin::Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

/// A subscription ([`EventStream::subscribe`]) as a Subscribe RPC's answer: each event encoded
/// by `encode`. Call it in the handler: the stream's items are made after the handler returns,
/// outside the call, so the call's ErrorInfo domain is captured here for their errors.
pub fn response_stream<T: Send + 'static>(
    events: impl Stream<Item = Result<StoredEvent, Error>> + Send + 'static,
    encode: fn(&StoredEvent) -> T,
) -> ResponseStream<T> {
    let domain = crate::error::current_domain();
    Box::pin(futures_util::StreamExt::map(events, move |event| {
        event
            .map(|event| encode(&event))
            .map_err(|error| error.into_status(&domain))
    }))
}

/// A whole Subscribe RPC after its access check: `after_position` validated
/// ([`after_position`]), the subscription `follow(after)` opened (it refuses an unknown
/// position), and each event encoded by `encode` ([`response_stream`]).
pub async fn subscription<T, S, Fut>(
    after_position_field: i64,
    follow: impl FnOnce(i64) -> Fut,
    encode: fn(&StoredEvent) -> T,
) -> Result<ResponseStream<T>, tonic::Status>
where
    T: Send + 'static,
    S: Stream<Item = Result<StoredEvent, Error>> + Send + 'static,
    Fut: std::future::Future<Output = Result<S, Error>>,
{
    let mut violations = crate::Violations::new();
    let after = after_position(&mut violations, after_position_field);
    violations.finish()?;
    let events = follow(after).await?;
    Ok(response_stream(events, encode))
}

/// Counts one live subscription for as long as it lives.
#[derive(Debug)]
struct Following(Arc<AtomicUsize>);

impl Following {
    fn new(followers: &Arc<AtomicUsize>) -> Self {
        followers.fetch_add(1, Ordering::Relaxed);
        Self(followers.clone())
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A service's event stream: the sequencer running in the background, and subscriptions.
#[derive(Debug, Clone)]
pub struct EventStream {
    pool: PgPool,
    /// Rung by writers after they commit events, to wake the sequencer.
    appended: Arc<Notify>,
    /// Live subscriptions in this process: only while there are some does a commit wake the
    /// sequencer at once (a pass costs a commit of its own).
    followers: Arc<AtomicUsize>,
    /// The next position the sequencer of this process will give, after each pass.
    next_position: watch::Receiver<i64>,
    shutdown: CancellationToken,
    /// The service whose stream this is, as its refusals name it.
    service: &'static str,
}

impl EventStream {
    /// Starts the sequencer of the service whose schema `pool` is on; it stops at `shutdown`.
    pub fn start(service: &'static str, pool: PgPool, shutdown: CancellationToken) -> Self {
        let appended = Arc::new(Notify::new());
        let followers = Arc::new(AtomicUsize::new(0));
        let (sender, next_position) = watch::channel(0);
        tokio::spawn(sequencer::run(
            service,
            pool.clone(),
            appended.clone(),
            followers.clone(),
            sender,
            shutdown.clone(),
        ));
        Self {
            pool,
            appended,
            followers,
            next_position,
            shutdown,
            service,
        }
    }

    /// [`subscribe`](Self::subscribe) after checking that `after` is 0 or the position of an
    /// event (of `tenant` when given): NOT_FOUND `POSITION_NOT_FOUND` otherwise, the answer of
    /// every Subscribe RPC to a position it never gave.
    pub async fn follow(
        &self,
        tenant: Option<Uuid>,
        after: i64,
    ) -> Result<impl Stream<Item = Result<StoredEvent, Error>> + Send + 'static, Error> {
        if !is_resumable(&self.pool, tenant, after).await? {
            return Err(crate::Refusal::not_found(
                "POSITION_NOT_FOUND",
                format!("no event of {} has position {after}", self.service),
            )
            .at("after_position")
            .with("after_position", after)
            .into());
        }
        Ok(self.subscribe(tenant, after))
    }

    /// Tells the sequencer that events were committed: call after the commit.
    pub fn appended(&self) {
        self.appended.notify_one();
    }

    /// The events after `after` (0: from the first), of `tenant` only when given, in position
    /// order, then each new one as it gets its position, until the service shuts down or the
    /// caller drops the stream.
    pub fn subscribe(
        &self,
        tenant: Option<Uuid>,
        after: i64,
    ) -> impl Stream<Item = Result<StoredEvent, Error>> + Send + 'static {
        struct Follow {
            stream: EventStream,
            tenant: Option<Uuid>,
            cursor: i64,
            page: std::collections::VecDeque<StoredEvent>,
            failed: bool,
            _following: Following,
        }
        let state = Follow {
            _following: Following::new(&self.followers),
            stream: self.clone(),
            tenant,
            cursor: after,
            page: std::collections::VecDeque::new(),
            failed: false,
        };
        futures_util::stream::unfold(state, |mut state| async move {
            if state.failed {
                return None;
            }
            loop {
                if let Some(event) = state.page.pop_front() {
                    state.cursor = event.position;
                    return Some((Ok(event), state));
                }
                // Seen before reading, so a pass that ends while we read still wakes us.
                let mut woken = state.stream.next_position.clone();
                woken.mark_unchanged();
                match read::after(&state.stream.pool, state.tenant, state.cursor, PAGE).await {
                    Ok(events) if !events.is_empty() => state.page.extend(events),
                    Ok(_) => {
                        tokio::select! {
                            () = state.stream.shutdown.cancelled() => return None,
                            _ = woken.changed() => {}
                            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                        }
                    }
                    Err(error) => {
                        state.failed = true;
                        return Some((Err(error), state));
                    }
                }
            }
        })
    }

    /// The last position given so far (0 when none).
    pub async fn head(&self) -> Result<i64, Error> {
        read::head(&self.pool).await
    }

    /// Runs one sequencer pass now, in the caller's task; returns how many events got a
    /// position. For tools and tests; the background sequencer does this on its own.
    pub async fn sequence_now(&self) -> Result<u64, Error> {
        sequencer::pass(&self.pool).await
    }
}
