//! One kind of id (users or courses): cache, single flight, batching and the outage policy.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use phoenix_runtime::Error;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::watch;
use uuid::Uuid;

use crate::cache::Cache;
use crate::{ClientSettings, Outage};

/// A batch call's answer: the ids the directory knows, with their values.
pub type Fetched<T> = Pin<Box<dyn Future<Output = Result<Vec<(Uuid, T)>, tonic::Status>> + Send>>;
type Fetch<T> = Arc<dyn Fn(Vec<Uuid>) -> Fetched<T> + Send + Sync>;

/// What one fetch of an id ended with, for everyone waiting on it.
enum Outcome<T> {
    Found(Option<Arc<T>>),
    /// The directory could not answer: the outage policy decides.
    Outage(String),
    /// The directory answered with an error that is not an outage (for the caller it is one
    /// all the same, logged as a refusal).
    Failed(String),
}

impl<T> Clone for Outcome<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Found(value) => Self::Found(value.clone()),
            Self::Outage(why) => Self::Outage(why.clone()),
            Self::Failed(why) => Self::Failed(why.clone()),
        }
    }
}

type Waiting<T> = watch::Receiver<Option<Outcome<T>>>;
type Notifying<T> = watch::Sender<Option<Outcome<T>>>;

/// What a client's lookups of one kind did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Answered from a fresh cached value.
    pub hits: u64,
    /// Answered "unknown" from a fresh cached absence.
    pub negative_hits: u64,
    /// Not fresh in the cache: waited for a fetch (their own or one in flight).
    pub misses: u64,
    /// Answered from a cached value during an outage, within the call site's bound.
    pub stale: u64,
    /// Failed UNAVAILABLE because the directory could not answer.
    pub outages: u64,
    /// Batch calls sent.
    pub batches: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    negative_hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    outages: AtomicU64,
    batches: AtomicU64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    kind: String,
    outcome: String,
}

fn lookups() -> &'static Family<LookupLabels, Counter> {
    static FAMILY: OnceLock<Family<LookupLabels, Counter>> = OnceLock::new();
    FAMILY.get_or_init(|| {
        phoenix_runtime::metrics::counter_family(
            "directory_client_lookups",
            "Lookups of the directory reference client, by kind and outcome",
        )
    })
}

struct Shared<T> {
    kind: &'static str,
    settings: ClientSettings,
    cache: Mutex<Cache<T>>,
    in_flight: Mutex<HashMap<Uuid, Waiting<T>>>,
    pending: Mutex<Vec<(Uuid, Notifying<T>)>>,
    fetch: Fetch<T>,
    counters: Counters,
}

pub struct Resolver<T>(Arc<Shared<T>>);

impl<T> Clone for Resolver<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// A lock whose holder panicked still guards consistent data here (every critical section
/// is a single map operation), so it is used as is.
fn lock<V>(mutex: &Mutex<V>) -> MutexGuard<'_, V> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T: Send + Sync + 'static> Resolver<T> {
    pub fn new(
        kind: &'static str,
        settings: ClientSettings,
        fetch: impl Fn(Vec<Uuid>) -> Fetched<T> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(Shared {
            kind,
            settings,
            cache: Mutex::new(Cache::new(settings.capacity)),
            in_flight: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            fetch: Arc::new(fetch),
            counters: Counters::default(),
        }))
    }

    fn count(&self, counter: &AtomicU64, outcome: &str) {
        counter.fetch_add(1, Ordering::Relaxed);
        lookups()
            .get_or_create(&LookupLabels {
                kind: self.0.kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn stats(&self) -> Stats {
        let c = &self.0.counters;
        Stats {
            hits: c.hits.load(Ordering::Relaxed),
            negative_hits: c.negative_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            outages: c.outages.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
        }
    }

    pub fn forget(&self, id: Uuid) {
        lock(&self.0.cache).remove(&id);
    }

    /// The cached value of `id` if fresh (`Some(answer)`), else `None`. A call site whose
    /// stale bound is shorter than the TTL never gets an entry older than its bound.
    fn fresh(&self, id: Uuid, outage: Outage) -> Option<Option<Arc<T>>> {
        let cache = lock(&self.0.cache);
        let entry = cache.get(&id)?;
        let ttl = if entry.value.is_some() {
            self.0.settings.ttl
        } else {
            self.0.settings.negative_ttl
        };
        let ttl = match outage {
            Outage::StaleUpTo(bound) => ttl.min(bound),
            Outage::Strict => ttl,
        };
        (entry.fetched_at.elapsed() < ttl).then(|| entry.value.clone())
    }

    pub async fn resolve(&self, id: Uuid, outage: Outage) -> Result<Option<Arc<T>>, Error> {
        if let Some(answer) = self.fresh(id, outage) {
            let c = &self.0.counters;
            match answer {
                Some(_) => self.count(&c.hits, "hit"),
                None => self.count(&c.negative_hits, "negative_hit"),
            }
            return Ok(answer);
        }
        self.count(&self.0.counters.misses, "miss");
        let mut waiting = self.wait_for(id);
        let outcome = match waiting.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match outcome {
            Some(Outcome::Found(answer)) => Ok(answer),
            // A refusal of the batch itself (a directory that is misconfigured, not yet
            // upgraded, or does not accept this caller) is no answer about the id: for the
            // caller it is an outage, with its cause.
            Some(Outcome::Failed(why)) => self.during_outage(
                id,
                outage,
                &format!("the directory refused the batch lookup: {why}"),
            ),
            Some(Outcome::Outage(why)) => self.during_outage(id, outage, &why),
            None => self.during_outage(id, outage, "the lookup stopped before it answered"),
        }
    }

    /// The answer when the directory could not be asked: a cached value within the call
    /// site's bound, or UNAVAILABLE.
    fn during_outage(&self, id: Uuid, outage: Outage, why: &str) -> Result<Option<Arc<T>>, Error> {
        if let Outage::StaleUpTo(bound) = outage {
            let cache = lock(&self.0.cache);
            if let Some(entry) = cache.get(&id).filter(|e| e.fetched_at.elapsed() <= bound) {
                let value = entry.value.clone();
                drop(cache);
                self.count(&self.0.counters.stale, "stale");
                return Ok(value);
            }
        }
        self.count(&self.0.counters.outages, "outage");
        tracing::warn!(kind = self.0.kind, %id, why, "directory unavailable for a lookup");
        Err(Error::unavailable(
            "DIRECTORY_UNAVAILABLE",
            format!(
                "the directory cannot resolve this {} now ({why}); retry",
                self.0.kind
            ),
            None,
        ))
    }

    /// The fetch of `id` in flight, or a new one queued for the next batch.
    fn wait_for(&self, id: Uuid) -> Waiting<T> {
        let mut in_flight = lock(&self.0.in_flight);
        // An entry whose fetch is gone (its sender dropped) is not waited on: a new fetch is.
        if let Some(waiting) = in_flight.get(&id).filter(|w| w.has_changed().is_ok()) {
            return waiting.clone();
        }
        let (notify, waiting) = watch::channel(None);
        in_flight.insert(id, waiting.clone());
        drop(in_flight);
        let first = {
            let mut pending = lock(&self.0.pending);
            pending.push((id, notify));
            pending.len() == 1
        };
        if first {
            // Made before the task, so it runs even if the task is dropped unpolled.
            let guard = PendingGuard(Some(self.0.clone()));
            let resolver = self.clone();
            tokio::spawn(async move { resolver.send_batches(guard).await });
        }
        waiting
    }

    /// After the batch window, fetches everything queued, in batches of `max_batch`.
    async fn send_batches(self, mut guard: PendingGuard<T>) {
        tokio::time::sleep(self.0.settings.batch_window).await;
        let queued = std::mem::take(&mut *lock(&self.0.pending));
        guard.0 = None;
        let mut queued = queued.into_iter();
        loop {
            let batch: Vec<_> = queued
                .by_ref()
                .take(self.0.settings.max_batch.max(1))
                .collect();
            if batch.is_empty() {
                break;
            }
            let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
            let guard = InFlightGuard {
                shared: self.0.clone(),
                ids: ids.clone(),
            };
            let resolver = self.clone();
            tokio::spawn(async move { resolver.fetch(batch, ids, guard).await });
        }
    }

    async fn fetch(
        &self,
        batch: Vec<(Uuid, Notifying<T>)>,
        ids: Vec<Uuid>,
        mut guard: InFlightGuard<T>,
    ) {
        self.0.counters.batches.fetch_add(1, Ordering::Relaxed);
        let answer = (self.0.fetch)(ids).await;
        let fetched_at = Instant::now();
        let outcomes: Vec<(Uuid, Outcome<T>)> = match answer {
            Ok(found) => {
                let mut found: HashMap<Uuid, Arc<T>> =
                    found.into_iter().map(|(id, v)| (id, Arc::new(v))).collect();
                let mut cache = lock(&self.0.cache);
                batch
                    .iter()
                    .map(|(id, _)| {
                        let value = found.remove(id);
                        cache.insert(*id, value.clone(), fetched_at);
                        (*id, Outcome::Found(value))
                    })
                    .collect()
            }
            Err(status) => {
                let why = format!("{:?}: {}", status.code(), status.message());
                let outcome = if is_outage(status.code()) {
                    Outcome::Outage(why)
                } else {
                    Outcome::Failed(why)
                };
                batch.iter().map(|(id, _)| (*id, outcome.clone())).collect()
            }
        };
        let mut in_flight = lock(&self.0.in_flight);
        for ((id, notify), (_, outcome)) in batch.iter().zip(outcomes) {
            in_flight.remove(id);
            let _ = notify.send(Some(outcome));
        }
        // Answered: the entries are gone, and a later fetch of the same ids owns theirs.
        guard.ids.clear();
    }
}

/// Empties the queue of a batch task that ends before it took it (dropped with its runtime,
/// or cancelled): the queued ids leave `in_flight` and their senders are dropped, so their
/// waiters take the outage path and the next lookup starts a new batch.
struct PendingGuard<T>(Option<Arc<Shared<T>>>);

impl<T> Drop for PendingGuard<T> {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else {
            return;
        };
        let queued = std::mem::take(&mut *lock(&shared.pending));
        let mut in_flight = lock(&shared.in_flight);
        for (id, _) in &queued {
            in_flight.remove(id);
        }
    }
}

/// Takes a batch's ids out of `in_flight` if its fetch ends without answering (dropped,
/// cancelled or panicked): its waiters see their sender gone (the outage path), and the next
/// lookup of those ids fetches them again instead of waiting on a fetch that never answers.
struct InFlightGuard<T> {
    shared: Arc<Shared<T>>,
    ids: Vec<Uuid>,
}

impl<T> Drop for InFlightGuard<T> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut in_flight = lock(&self.shared.in_flight);
        for id in &self.ids {
            in_flight.remove(id);
        }
    }
}

/// Codes that mean "the directory could not answer", not "it answered no".
fn is_outage(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unknown
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Cancelled
    )
}
