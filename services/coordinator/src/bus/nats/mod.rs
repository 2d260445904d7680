//! The bus on NATS JetStream, the scale-out option of the PostgreSQL bus
//! (`PHOENIX_BUS_BACKEND=nats`, settings in [`settings`]). `EventBusService` and the in-process
//! consumers work the same on either backend; [`super::Bus`] picks one.
//!
//! **The stream.** One stream (`PHOENIX_BUS`, created or updated at start) holds every event for
//! the bus's retention (`max_age`), on subjects `<stream>.p<priority>.<partition>.<target>`:
//! the priority (1 LOW … 4 CRITICAL), the partition (a hash of the aggregate key modulo
//! `partitions`), and the target (`all`, or `g.<group>` for a dead letter replayed to one group).
//! Every event is published with `Nats-Msg-Id` = its event id, so the stream's duplicate window
//! drops a relay's replays; the coordinator's headers carry what a delivery needs (source and
//! position, catalogue name).
//!
//! **Priorities are subjects** of one stream, not streams: a group reads them through one
//! durable pull consumer per (priority, partition), asking the higher priorities first, so a
//! behind group gets CRITICAL before LOW as on PostgreSQL. One stream keeps one duplicate
//! window, one retention and one place to operate.
//!
//! **Order per aggregate.** JetStream delivers one consumer's messages in stream order, but
//! with more than one unacknowledged message a redelivery overtakes later ones. So each
//! consumer has `max_ack_pending = 1`: a partition's next event waits until the previous one is
//! acknowledged, failed or timed out (redelivered first), whichever coordinator fetches it —
//! the guarantee of the PostgreSQL line, per partition instead of per aggregate: aggregates
//! that share a partition wait for each other. `partitions` sets the parallelism.
//!
//! **What the coordinator's tables add** (migration 0007_bus_nats): groups and their patterns
//! are `bus_groups` (a pattern is matched here, on the type or the catalogue name, since prefix
//! patterns and catalogue names are not subject filters; the rest is acknowledged unseen); the
//! outstanding deliveries (`bus_nats_deliveries`: the delivery id a subscriber acknowledges,
//! with the message's ack subject, so any coordinator can acknowledge it); the events each group
//! processed (`bus_nats_processed`: a copy that reaches the stream again past the duplicate
//! window is acknowledged unseen); dead letters (`bus_nats_dead`). Redelivery is JetStream's
//! (ack wait = the subscription's ack timeout); a failure is a NAK with the bus's backoff; the
//! group's `max_deliveries` is counted from JetStream's delivery count.

pub mod server;
pub mod settings;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::PullConsumer};
use futures_util::StreamExt;
use phoenix_runtime::error::Error;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::domain::{Patterns, redelivery_delay};
use super::store::{Dead, Ingest, Leased};

pub use settings::{Backend, BusSettings};

/// Priorities, highest first: the order a lease pass asks the consumers in.
const PRIORITIES: [i16; 4] = [4, 3, 2, 1];
/// Messages of other groups or types a pass acknowledges unseen per consumer, at most.
const SKIPS_PER_PASS: usize = 64;
/// How long a fetch waits for the server's answer. JetStream answers a no-wait pull at once
/// with a message or 404; it does not answer while the consumer's one message is out (failed
/// and waiting out its backoff, or handed out by another coordinator this instant), and does
/// not keep the request either. (With `expires`, it would answer every empty consumer only at
/// expiry.) The lease pass skips the consumers it knows are busy, so this wait is rare.
const FETCH_WAIT: Duration = Duration::from_millis(50);

const EVENT_ID: &str = "Phoenix-Event-Id";
const SOURCE: &str = "Phoenix-Source";
const POSITION: &str = "Phoenix-Source-Position";
const EVENT_TYPE: &str = "Phoenix-Event-Type";
const CATALOG_TYPE: &str = "Phoenix-Catalog-Type";

/// The connection and the stream, made once.
#[derive(Debug)]
struct Link {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
}

/// A group as this process reads it.
#[derive(Debug)]
struct Reader {
    patterns: Patterns,
    ack_timeout: Duration,
    /// (priority, partition, consumer), highest priority first.
    consumers: Vec<(i16, i16, PullConsumer)>,
}

/// The NATS JetStream backend of one coordinator process.
#[derive(Debug)]
pub struct NatsBus {
    settings: BusSettings,
    retention: Duration,
    pool: PgPool,
    link: OnceCell<Link>,
    readers: Mutex<HashMap<String, Arc<Reader>>>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "BUS_NATS_UNAVAILABLE",
        format!("the bus's NATS server: {what}: {error}"),
        Some(Duration::from_secs(1)),
    )
}

/// FNV-1a: a hash that stays the same across builds and processes (the partition of an
/// aggregate must not change while its events wait in the stream).
fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A header value without the characters a NATS header cannot carry.
fn header_value(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// The headers of a bus message: `Nats-Msg-Id` (`message_id`) for the stream's de-duplication,
/// the rest for the delivery.
fn headers(
    message_id: String,
    event_id: Uuid,
    source: &str,
    position: i64,
    event_type: &str,
    catalog_type: Option<&str>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", message_id);
    headers.insert(EVENT_ID, event_id.to_string());
    headers.insert(SOURCE, header_value(source));
    headers.insert(POSITION, position.to_string());
    headers.insert(EVENT_TYPE, header_value(event_type));
    if let Some(catalog) = catalog_type {
        headers.insert(CATALOG_TYPE, header_value(catalog));
    }
    headers
}

/// What a fetched message says about itself.
#[derive(Debug)]
struct Fetched {
    event_id: Uuid,
    target: Option<String>,
    priority: i16,
    partition: i16,
    attempt: i32,
    stream_seq: i64,
    reply: String,
    leased: Leased,
}

/// Reads a bus message; `None` for one the coordinator did not write.
fn read(
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
    attempt: i32,
    stream_seq: i64,
    reply: String,
) -> Option<Fetched> {
    let headers = headers?;
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let mut tokens = subject.splitn(5, '.').skip(1);
    let priority = tokens.next()?.strip_prefix('p')?.parse().ok()?;
    let partition = tokens.next()?.parse().ok()?;
    let target = match tokens.next()? {
        "all" => None,
        "g" => Some(tokens.next()?.to_owned()),
        _ => return None,
    };
    Some(Fetched {
        event_id: Uuid::try_parse(&header(EVENT_ID)?).ok()?,
        target,
        priority,
        partition,
        attempt,
        stream_seq,
        reply,
        leased: Leased {
            delivery_id: Uuid::new_v4(),
            attempt,
            envelope: payload.to_vec(),
            catalog_type: header(CATALOG_TYPE).filter(|c| !c.is_empty()),
            source: header(SOURCE).unwrap_or_default(),
            source_position: header(POSITION).and_then(|p| p.parse().ok()).unwrap_or(0),
            event_type: header(EVENT_TYPE).unwrap_or_default(),
        },
    })
}

impl NatsBus {
    /// The backend with `settings` (connected on first use); `retention` is the stream's
    /// `max_age`.
    pub fn new(settings: BusSettings, retention: Duration, pool: PgPool) -> Self {
        Self {
            settings,
            retention,
            pool,
            link: OnceCell::new(),
            readers: Mutex::new(HashMap::new()),
        }
    }

    fn stream_name(&self) -> &str {
        &self.settings.bus_nats_stream
    }

    /// Connects and creates or updates the stream (idempotent), once; a failure is retried by
    /// the next call.
    async fn link(&self) -> Result<&Link, Error> {
        self.link
            .get_or_try_init(|| async {
                let url = self.settings.bus_nats_url.clone().unwrap_or_default();
                let client = async_nats::ConnectOptions::new()
                    .name("phoenix-coordinator-bus")
                    .connect(url.as_str())
                    .await
                    .map_err(|e| unavailable(&format!("connect to {url}"), e))?;
                let js = jetstream::new(client.clone());
                let name = self.stream_name().to_owned();
                let config = jetstream::stream::Config {
                    name: name.clone(),
                    description: Some("The Phoenix coordinator's event bus".into()),
                    subjects: vec![format!("{name}.>")],
                    retention: jetstream::stream::RetentionPolicy::Limits,
                    storage: jetstream::stream::StorageType::File,
                    max_age: self.retention,
                    duplicate_window: self.settings.bus_nats_duplicate_window.min(self.retention),
                    num_replicas: usize::from(self.settings.bus_nats_replicas),
                    allow_direct: true,
                    ..Default::default()
                };
                js.create_or_update_stream(config)
                    .await
                    .map_err(|e| unavailable(&format!("create or update stream {name}"), e))?;
                let stream = js
                    .get_stream(&name)
                    .await
                    .map_err(|e| unavailable(&format!("open stream {name}"), e))?;
                tracing::info!(stream = %name, %url, "the bus runs on NATS JetStream");
                Ok(Link { client, js, stream })
            })
            .await
    }

    /// Connects and prepares the stream now, so a misconfiguration shows in the log at start.
    pub async fn prepare(&self) {
        if let Err(error) = self.link().await {
            tracing::warn!(%error, "the bus's NATS stream is not ready yet; retried on use");
        }
    }

    fn partition(&self, aggregate_key: &str) -> i16 {
        let partitions = u64::from(self.settings.bus_nats_partitions);
        i16::try_from(fnv1a(aggregate_key) % partitions).unwrap_or(0)
    }

    fn subject(&self, priority: i16, partition: i16, group: Option<&str>) -> String {
        let target = group.map_or_else(|| "all".to_owned(), |g| format!("g.{g}"));
        format!("{}.p{priority}.{partition}.{target}", self.stream_name())
    }

    /// Publishes `events` (pipelined, then every acknowledgement awaited): answers (accepted,
    /// duplicates the stream dropped).
    pub async fn publish(&self, events: &[Ingest]) -> Result<(u64, u64), Error> {
        let link = self.link().await?;
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            let headers = headers(
                event.event_id.to_string(),
                event.event_id,
                &event.source,
                event.source_position,
                &event.event_type,
                event.catalog_type.as_deref(),
            );
            let subject = self.subject(event.priority, self.partition(&event.aggregate_key), None);
            let ack = link
                .js
                .publish_with_headers(subject, headers, event.envelope.clone().into())
                .await
                .map_err(|e| unavailable("publish", e))?;
            pending.push(ack);
        }
        let (mut accepted, mut duplicates) = (0, 0);
        for ack in pending {
            let ack = ack.await.map_err(|e| unavailable("publish", e))?;
            if ack.duplicate {
                duplicates += 1;
            } else {
                accepted += 1;
            }
        }
        Ok((accepted, duplicates))
    }

    /// A relay's batch: published, then the source's position moved while `owner` holds its
    /// lease (`None` when it lost it; what it published is dropped as duplicates when the next
    /// holder relays it again).
    pub async fn relay(
        &self,
        events: &[Ingest],
        (source, owner, position): (&str, Uuid, i64),
    ) -> Result<Option<u64>, Error> {
        let (accepted, _) = self.publish(events).await?;
        let held = store::advance_source(&self.pool, source, owner, position, events.len()).await?;
        Ok(held.then_some(accepted))
    }

    /// Makes (or updates) `group`'s durable consumers, one per priority and partition, with
    /// `ack_timeout` as their ack wait.
    pub async fn join(
        &self,
        group: &str,
        patterns: &Patterns,
        ack_timeout: Duration,
    ) -> Result<(), Error> {
        if let Some(reader) = self.reader(group)
            && reader.ack_timeout == ack_timeout
            && reader.patterns == *patterns
        {
            return Ok(());
        }
        let link = self.link().await?;
        let mut made = Vec::new();
        for priority in PRIORITIES {
            for partition in 0..i16::try_from(self.settings.bus_nats_partitions).unwrap_or(1) {
                let config = jetstream::consumer::pull::Config {
                    // Group names may hold '.', which a consumer name may not; '~' is not
                    // allowed in group names, so names stay distinct.
                    durable_name: Some(format!(
                        "{}-p{priority}-{partition}",
                        group.replace('.', "~")
                    )),
                    description: Some(format!("bus group {group}")),
                    filter_subject: format!("{}.p{priority}.{partition}.>", self.stream_name()),
                    deliver_policy: jetstream::consumer::DeliverPolicy::All,
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ack_timeout,
                    max_deliver: -1,
                    max_ack_pending: 1,
                    ..Default::default()
                };
                made.push(async move {
                    link.stream
                        .create_consumer(config)
                        .await
                        .map(|consumer| (priority, partition, consumer))
                });
            }
        }
        let consumers = futures_util::future::try_join_all(made)
            .await
            .map_err(|e| unavailable(&format!("create the consumers of group {group}"), e))?;
        let reader = Arc::new(Reader {
            patterns: patterns.clone(),
            ack_timeout,
            consumers,
        });
        self.readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group.to_owned(), reader);
        Ok(())
    }

    fn reader(&self, group: &str) -> Option<Arc<Reader>> {
        self.readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(group)
            .cloned()
    }

    /// Answers a message's ack subject: `+ACK`, `-NAK`, `-NAK {"delay": ns}` or `+TERM`.
    async fn answer(&self, reply: &str, answer: String) -> Result<(), Error> {
        let link = self.link().await?;
        link.client
            .publish(reply.to_owned(), answer.into())
            .await
            .map_err(|e| unavailable("acknowledge", e))
    }

    /// Acknowledges messages and waits until JetStream has applied each acknowledgement (its
    /// reply), so the partition's next message can be fetched at once after it.
    async fn acknowledge(&self, replies: &[&str]) -> Result<(), Error> {
        let link = self.link().await?;
        let acks = replies
            .iter()
            .map(|reply| link.client.request((*reply).to_owned(), "+ACK".into()));
        for answer in futures_util::future::join_all(acks).await {
            // An ack whose reply was lost was still sent: at worst the message comes back after
            // the ack wait and is dropped as processed.
            if let Err(error) = answer {
                tracing::debug!(%error, "bus ack: no confirmation");
            }
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), Error> {
        self.link()
            .await?
            .client
            .flush()
            .await
            .map_err(|e| unavailable("flush", e))
    }

    /// One lease pass of `group` for `member`: up to `limit` minus what `member` holds, taken
    /// from the consumers highest priority first.
    pub async fn lease(
        &self,
        group: &str,
        member: Uuid,
        limit: i64,
        ack_timeout: Duration,
    ) -> Result<Vec<Leased>, Error> {
        let reader = self.reader(group).ok_or_else(|| {
            Error::invariant(
                "BUS_GROUP_NOT_JOINED",
                format!("group {group} leased before it joined"),
            )
        })?;
        let (held, busy) = store::outstanding(&self.pool, group, member).await?;
        let max_deliveries = store::max_deliveries(&self.pool, group).await?;
        let mut fetched = Vec::new();
        let taken = self
            .take(
                group,
                &reader,
                (limit - held, max_deliveries),
                &busy,
                &mut fetched,
            )
            .await;
        let recorded = match taken {
            Ok(()) => self.record(group, member, ack_timeout, fetched).await,
            Err(error) => Err((error, fetched)),
        };
        match recorded {
            Ok(leased) => Ok(leased),
            Err((error, fetched)) => {
                // Handed back at once rather than after the ack wait: nobody has them.
                for one in &fetched {
                    let _ = self.answer(&one.reply, "-NAK".into()).await;
                }
                let _ = self.flush().await;
                Err(error)
            }
        }
    }

    /// Fetches into `fetched` up to `room` deliverable messages, highest priority first,
    /// skipping the consumers in `busy`; what is not for the group is acknowledged unseen, what
    /// had its last delivery becomes a dead letter.
    async fn take(
        &self,
        group: &str,
        reader: &Reader,
        (mut room, max_deliveries): (i64, i32),
        busy: &[(i16, i16)],
        fetched: &mut Vec<Fetched>,
    ) -> Result<(), Error> {
        for (priority, partition, consumer) in &reader.consumers {
            if room <= 0 {
                break;
            }
            if busy.contains(&(*priority, *partition)) {
                continue;
            }
            for _ in 0..SKIPS_PER_PASS {
                let Some(message) = self.fetch_one(consumer.cached_info().name.as_str()).await?
                else {
                    break;
                };
                let Some(reply) = message.reply.as_ref().map(ToString::to_string) else {
                    continue;
                };
                let info = message.info().ok();
                let (attempt, stream_seq) = info.map_or((1, 0), |i| {
                    (
                        i32::try_from(i.delivered).unwrap_or(i32::MAX),
                        i64::try_from(i.stream_sequence).unwrap_or(i64::MAX),
                    )
                });
                let Some(one) = read(
                    message.subject.as_str(),
                    message.headers.as_ref(),
                    &message.payload,
                    attempt,
                    stream_seq,
                    reply.clone(),
                ) else {
                    tracing::warn!(subject = %message.subject, "a message the bus did not write: terminated");
                    self.answer(&reply, "+TERM".into()).await?;
                    continue;
                };
                let mine = one.target.as_deref().is_none_or(|t| t == group);
                let matches = reader
                    .patterns
                    .matches(&one.leased.event_type, one.leased.catalog_type.as_deref());
                if !mine || !matches {
                    self.acknowledge(&[&reply]).await?;
                    continue;
                }
                if attempt > max_deliveries {
                    // Its last delivery was not acknowledged in time.
                    let error = "not acknowledged within the ack timeout";
                    if let Err(failure) = self.bury(group, &one, max_deliveries, error).await {
                        fetched.push(one);
                        return Err(failure);
                    }
                    continue;
                }
                fetched.push(one);
                room -= 1;
                break;
            }
        }
        Ok(())
    }

    /// Records `fetched` as `member`'s deliveries; those the group processed before (copies
    /// past the duplicate window) are acknowledged unseen. On failure, answers what was fetched.
    async fn record(
        &self,
        group: &str,
        member: Uuid,
        ack_timeout: Duration,
        fetched: Vec<Fetched>,
    ) -> Result<Vec<Leased>, (Error, Vec<Fetched>)> {
        let handed: Vec<store::Handed> = fetched
            .iter()
            .map(|f| store::Handed {
                delivery_id: f.leased.delivery_id,
                event_id: f.event_id,
                stream_seq: f.stream_seq,
                priority: f.priority,
                partition: f.partition,
                attempt: f.attempt,
                reply: f.reply.clone(),
            })
            .collect();
        let seen = match store::hand_out(&self.pool, group, member, ack_timeout, &handed).await {
            Ok(seen) => seen,
            Err(error) => return Err((error, fetched)),
        };
        let mut leased = Vec::with_capacity(fetched.len());
        for one in fetched {
            if seen.contains(&one.event_id) {
                // Processed before: a copy that came back past the duplicate window.
                let _ = self.answer(&one.reply, "+ACK".into()).await;
            } else {
                leased.push(one.leased);
            }
        }
        // Not flushed or not acknowledged, a copy comes back and is dropped again.
        let _ = self.flush().await;
        Ok(leased)
    }

    /// The consumer's next message if one is available now (none while its previous one is
    /// unacknowledged). A pull request of its own (`CONSUMER.MSG.NEXT`, batch 1, no wait), so
    /// the server's answer is seen as it is.
    async fn fetch_one(&self, consumer: &str) -> Result<Option<jetstream::Message>, Error> {
        let link = self.link().await?;
        let inbox = link.client.new_inbox();
        let mut answers = link
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable("fetch", e))?;
        let request = serde_json::json!({ "batch": 1, "no_wait": true });
        link.client
            .publish_with_reply(
                format!(
                    "$JS.API.CONSUMER.MSG.NEXT.{}.{consumer}",
                    self.stream_name()
                ),
                inbox,
                request.to_string().into(),
            )
            .await
            .map_err(|e| unavailable("fetch", e))?;
        let answer = tokio::time::timeout(FETCH_WAIT, answers.next())
            .await
            .ok()
            .flatten();
        let _ = answers.unsubscribe().await;
        match answer {
            Some(message)
                if message
                    .status
                    .is_none_or(|s| s == async_nats::StatusCode::OK) =>
            {
                Ok(Some(jetstream::Message {
                    message,
                    context: link.js.clone(),
                }))
            }
            Some(message) => {
                // 404/408: nothing now (or the consumer's one message is out).
                tracing::trace!(consumer, status = ?message.status, "bus fetch: no message");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Records `one` as a dead letter of `group` and terminates its message.
    async fn bury(
        &self,
        group: &str,
        one: &Fetched,
        attempts: i32,
        error: &str,
    ) -> Result<(), Error> {
        let dead = store::NewDead {
            event_id: one.event_id,
            priority: one.priority,
            partition: one.partition,
            envelope: one.leased.envelope.clone(),
            catalog_type: one.leased.catalog_type.clone(),
            event_type: one.leased.event_type.clone(),
            source: one.leased.source.clone(),
            source_position: one.leased.source_position,
            attempts,
            last_error: error.to_owned(),
        };
        store::bury(&self.pool, group, &dead).await?;
        self.answer(&one.reply, "+TERM".into()).await
    }

    /// Acknowledges and fails deliveries of `group`: (acknowledged, failed).
    pub async fn ack(
        &self,
        group: &str,
        done: &[Uuid],
        failed: &[(Uuid, String)],
    ) -> Result<(u64, u64), Error> {
        let acknowledged = store::ack(&self.pool, group, done).await?;
        let replies: Vec<&str> = acknowledged.iter().map(|d| d.reply.as_str()).collect();
        self.acknowledge(&replies).await?;
        let ids: Vec<Uuid> = failed.iter().map(|f| f.0).collect();
        let taken = store::take(&self.pool, group, &ids).await?;
        if !taken.is_empty() {
            let most = store::max_deliveries(&self.pool, group).await?;
            for delivery in &taken {
                let error = failed
                    .iter()
                    .find(|f| f.0 == delivery.delivery_id)
                    .map_or("", |f| f.1.as_str());
                if delivery.attempt >= most {
                    self.bury_failed(group, delivery, error).await?;
                } else {
                    let delay = redelivery_delay(delivery.attempt).as_nanos();
                    self.answer(&delivery.reply, format!("-NAK {{\"delay\": {delay}}}"))
                        .await?;
                }
            }
        }
        if !acknowledged.is_empty() || !taken.is_empty() {
            self.flush().await?;
        }
        Ok((acknowledged.len() as u64, taken.len() as u64))
    }

    /// A failure at the group's last delivery: the message is read back from the stream,
    /// recorded as a dead letter and terminated.
    async fn bury_failed(
        &self,
        group: &str,
        delivery: &store::Taken,
        error: &str,
    ) -> Result<(), Error> {
        let link = self.link().await?;
        let seq = u64::try_from(delivery.stream_seq).unwrap_or(0);
        let message = link
            .stream
            .get_raw_message(seq)
            .await
            .map_err(|e| unavailable(&format!("read message {seq}"), e))?;
        let Some(one) = read(
            message.subject.as_str(),
            Some(&message.headers),
            &message.payload,
            delivery.attempt,
            delivery.stream_seq,
            delivery.reply.clone(),
        ) else {
            return self.answer(&delivery.reply, "+TERM".into()).await;
        };
        self.bury(group, &one, delivery.attempt, error).await
    }

    /// Hands what `member` held back to JetStream for redelivery at once (its stream ended).
    pub async fn release_member(&self, member: Uuid) -> Result<(), Error> {
        let taken = store::release_member(&self.pool, member).await?;
        for delivery in &taken {
            self.answer(&delivery.reply, "-NAK".into()).await?;
        }
        if !taken.is_empty() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Up to `limit` dead letters of `group` after `after`.
    pub async fn dead_letters(
        &self,
        group: &str,
        after: Option<(chrono::DateTime<chrono::Utc>, i64)>,
        limit: i64,
    ) -> Result<Vec<Dead>, Error> {
        store::dead_letters(&self.pool, group, after, limit).await
    }

    /// Puts dead letters of `group` back on the stream for that group alone (subject target
    /// `g.<group>`, a fresh message id, so a fresh delivery count). Answers how many.
    pub async fn replay(&self, group: &str, event_ids: Option<&[Uuid]>) -> Result<u64, Error> {
        let link = self.link().await?;
        // Taken out in a transaction committed once the stream has them all: a replay that
        // fails leaves the dead letters where they were.
        let mut tx = self.pool.begin().await?;
        let dead = store::unbury(&mut tx, group, event_ids).await?;
        let mut pending = Vec::with_capacity(dead.len());
        for letter in &dead {
            let headers = headers(
                format!("{}.replay.{}", letter.event_id, Uuid::new_v4()),
                letter.event_id,
                &letter.source,
                letter.source_position,
                &letter.event_type,
                letter.catalog_type.as_deref(),
            );
            let subject = self.subject(letter.priority, letter.partition, Some(group));
            pending.push(
                link.js
                    .publish_with_headers(subject, headers, letter.envelope.clone().into())
                    .await
                    .map_err(|e| unavailable("replay", e))?,
            );
        }
        for ack in pending {
            ack.await.map_err(|e| unavailable("replay", e))?;
        }
        tx.commit().await?;
        Ok(dead.len() as u64)
    }
}
