//! Coalesced commits: concurrent single-operation posting calls written in one transaction.
//!
//! A posting's cost is per round trip and per commit, not per row (a batch of 8,000 transfers
//! takes a few times one transfer's time), so calls that arrive together are written together,
//! as TigerBeetle batches its requests. Calls queue; a few writers take turns collecting them:
//! the collecting writer takes what is queued and, under load (other calls in flight, or the
//! last group held more than one call), waits up to the window for more (a lone call at low
//! load never waits), then writes the group of each tenant with
//! [`PostingWriter::write`] while the next writer collects. Each call keeps its own outcome,
//! key and events; its caller is answered after the commit (durability is the database's:
//! `synchronous_commit` stays on).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use phoenix_runtime::Error;
use phoenix_runtime::stream::Origin;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::posting::{BatchOutcome, PostingCall, PostingWriter};
use crate::metrics;

/// Calls queued beyond this wait to be queued (backpressure on the callers).
const QUEUE: usize = 4_096;

/// How calls are coalesced.
#[derive(Debug, Clone, Copy)]
pub struct Coalescing {
    pub window: Duration,
    pub writers: usize,
    pub max_calls: usize,
}

/// The queue of posting calls and its writers; the writers stop when the last handle goes.
#[derive(Debug)]
pub struct Coalescer {
    queue: mpsc::Sender<Queued>,
    load: Arc<Load>,
}

/// What the collecting writer reads to tell whether more calls are coming.
#[derive(Debug, Default)]
struct Load {
    /// Calls submitted and not yet answered.
    in_flight: AtomicUsize,
    /// Calls taken by the writers and not yet answered: in flight, but not to be queued.
    writing: AtomicUsize,
    /// The size of the group taken last: above one, calls arrive faster than they are
    /// written.
    last_group: AtomicUsize,
}

#[derive(Debug)]
struct Queued {
    call: PostingCall,
    answer: oneshot::Sender<Result<BatchOutcome, Error>>,
}

/// Decrements the in-flight count when its call ends, answered or abandoned.
struct InFlight(Arc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Coalescer {
    /// Starts `coalescing.writers` writers writing with `writer`.
    pub fn start(writer: PostingWriter, coalescing: Coalescing) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        let load = Arc::new(Load::default());
        for _ in 0..coalescing.writers.max(1) {
            tokio::spawn(run_writer(
                writer.clone(),
                receiver.clone(),
                load.clone(),
                coalescing,
            ));
        }
        Self { queue, load }
    }

    /// Writes `call` with whatever calls arrive with it, and answers as a lone call would.
    pub async fn submit(&self, mut call: PostingCall) -> Result<BatchOutcome, Error> {
        self.load.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(self.load.clone());
        call.origin = Some(Origin::current());
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued { call, answer })
            .await
            .map_err(|_| stopping())?;
        answered.await.map_err(|_| stopping())?
    }
}

fn stopping() -> Error {
    Error::unavailable(
        "LEDGER_STOPPING",
        "the ledger is shutting down; retry on another replica",
        None,
    )
}

async fn run_writer(
    writer: PostingWriter,
    receiver: Arc<Mutex<mpsc::Receiver<Queued>>>,
    load: Arc<Load>,
    coalescing: Coalescing,
) {
    loop {
        let Some(group) = collect(&receiver, &load, coalescing).await else {
            return;
        };
        load.writing.fetch_add(group.len(), Ordering::Relaxed);
        load.last_group.store(group.len(), Ordering::Relaxed);
        metrics::coalesced(group.len());
        for (_, members) in by_tenant(group) {
            let (calls, answers): (Vec<PostingCall>, Vec<_>) = members
                .into_iter()
                .map(|queued| (queued.call, queued.answer))
                .unzip();
            let written = writer.write(&calls).await;
            load.writing.fetch_sub(calls.len(), Ordering::Relaxed);
            for (answer, result) in answers.into_iter().zip(written) {
                // The caller may have gone (deadline, cancellation): its call stands, as a
                // lone call's committed transaction would.
                let _ = answer.send(result);
            }
        }
    }
}

/// Takes the next group: the first queued call, what else is queued, and, under load, what
/// arrives within the window. `None` once the queue is closed.
async fn collect(
    receiver: &Mutex<mpsc::Receiver<Queued>>,
    load: &Load,
    coalescing: Coalescing,
) -> Option<Vec<Queued>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let deadline = Instant::now() + coalescing.window;
    let mut group = vec![first];
    while group.len() < coalescing.max_calls {
        match receiver.try_recv() {
            Ok(queued) => {
                group.push(queued);
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        // Calls submitted but not yet queued or written, e.g. racing this writer.
        let others = load
            .in_flight
            .load(Ordering::Relaxed)
            .saturating_sub(load.writing.load(Ordering::Relaxed));
        if others <= group.len() && load.last_group.load(Ordering::Relaxed) <= 1 {
            break;
        }
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(queued)) => group.push(queued),
            Ok(None) | Err(_) => break,
        }
    }
    Some(group)
}

/// The group's calls by tenant, in arrival order within each: a transaction is one tenant's.
fn by_tenant(group: Vec<Queued>) -> Vec<(Uuid, Vec<Queued>)> {
    let mut tenants: Vec<(Uuid, Vec<Queued>)> = Vec::new();
    for queued in group {
        let tenant_id = queued.call.tenant_id;
        match tenants.iter_mut().find(|(id, _)| *id == tenant_id) {
            Some((_, calls)) => calls.push(queued),
            None => tenants.push((tenant_id, vec![queued])),
        }
    }
    tenants
}
