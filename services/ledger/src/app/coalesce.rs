//! Coalesced commits: concurrent single-operation posting calls written in one transaction.
//!
//! A posting's cost is per round trip and per commit, not per row (a batch of 8,000 transfers
//! takes a few times one transfer's time), so calls that arrive together are written together,
//! as TigerBeetle batches its requests. Calls queue; a few writers take turns collecting them:
//! the collecting writer takes what is queued and, under load (other calls in flight, or fewer
//! calls than the last group held), waits up to the window for more (a lone call at low load
//! never waits), then writes the group of each tenant with [`PostingWriter::write`] while the
//! next writer collects. Each call keeps its own outcome, key and events; its caller is
//! answered after the commit (durability is the database's: `synchronous_commit` stays on).
//!
//! Groups written at once never wait for each other's account locks: a call that names an
//! account a group being written holds is deferred (kept, in arrival order, ahead of the
//! queue) until that group ends, and so is a later call naming an account of a deferred one,
//! so calls on one account keep their order. The locks still decide; the deferral only keeps
//! two writers from spending a transaction each waiting on the other. Calls whose accounts
//! are known only from the database (post, void, reverse) are never deferred.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use phoenix_runtime::Error;
use phoenix_runtime::stream::Origin;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::posting::{BatchOutcome, HeldConnection, PostingCall, PostingWriter};
use crate::domain::ledger;
use crate::metrics;

/// Calls queued beyond this wait to be queued (backpressure on the callers).
const QUEUE: usize = 4_096;

/// A writer that waited this long for a call gives its connection back to the pool, which
/// checks idle connections before lending them: after a quiet spell (or a database restart) the
/// next call is written on a connection known to work.
const HOLD_IDLE: Duration = Duration::from_millis(200);

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

/// What the collecting writer reads to tell whether more calls are coming, and which accounts
/// the groups being written hold.
#[derive(Debug, Default)]
struct Load {
    /// Calls submitted and not yet answered.
    in_flight: AtomicUsize,
    /// Calls taken by the writers and not yet answered: in flight, but not to be queued.
    writing: AtomicUsize,
    /// The size of the group taken last: the calls a busy ledger can expect back (a client
    /// answered sends its next call).
    last_group: AtomicUsize,
    /// The accounts of the groups being written, with how many groups name each.
    busy: std::sync::Mutex<HashMap<Uuid, usize>>,
    /// Rung when a group ends: deferred calls may go now.
    freed: Notify,
}

impl Load {
    fn busy_accounts(&self) -> HashSet<Uuid> {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    fn hold(&self, accounts: &HashSet<Uuid>) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        for &account in accounts {
            *busy.entry(account).or_default() += 1;
        }
    }

    fn release(&self, accounts: &HashSet<Uuid>) {
        {
            let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
            for account in accounts {
                if let Some(groups) = busy.get_mut(account) {
                    *groups -= 1;
                    if *groups == 0 {
                        busy.remove(account);
                    }
                }
            }
        }
        self.freed.notify_one();
    }
}

/// The queue of calls, and the calls deferred behind a group being written (ahead of it).
#[derive(Debug)]
struct Queue {
    receiver: mpsc::Receiver<Queued>,
    deferred: VecDeque<Queued>,
}

#[derive(Debug)]
struct Queued {
    call: PostingCall,
    /// The accounts the call names (none when only the database knows them).
    accounts: Vec<Uuid>,
    /// Whether it was ever deferred (counted once).
    deferred: bool,
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
        let receiver = Arc::new(Mutex::new(Queue {
            receiver,
            deferred: VecDeque::new(),
        }));
        let load = Arc::new(Load::default());
        let writers = coalescing.writers.max(1);
        // Writers keep their connections between groups only when the pool has more than one
        // per writer: the rest of the service (reads, replays' lookups) must still get one.
        let hold = usize::try_from(writer.pool.options().get_max_connections())
            .is_ok_and(|connections| connections > writers);
        for _ in 0..writers {
            tokio::spawn(run_writer(
                writer.clone(),
                receiver.clone(),
                load.clone(),
                coalescing,
                hold,
            ));
        }
        Self { queue, load }
    }

    /// Writes `call` with whatever calls arrive with it, and answers as a lone call would.
    pub async fn submit(&self, mut call: PostingCall) -> Result<BatchOutcome, Error> {
        self.load.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(self.load.clone());
        call.origin = Some(Origin::current());
        let accounts = call
            .operations
            .iter()
            .flat_map(|operation| ledger::accounts_of(operation, &HashMap::new()))
            .collect();
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued {
                call,
                accounts,
                deferred: false,
                answer,
            })
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
    queue: Arc<Mutex<Queue>>,
    load: Arc<Load>,
    coalescing: Coalescing,
    hold: bool,
) {
    let mut connection: HeldConnection = None;
    loop {
        let Some((group, held)) = collect(&queue, &load, coalescing, &mut connection).await else {
            return;
        };
        metrics::coalesced(group.len());
        for (_, members) in by_tenant(group) {
            let (calls, answers): (Vec<PostingCall>, Vec<_>) = members
                .into_iter()
                .map(|queued| (queued.call, queued.answer))
                .unzip();
            let written = writer.write(&calls, &mut connection).await;
            load.writing.fetch_sub(calls.len(), Ordering::Relaxed);
            for (answer, result) in answers.into_iter().zip(written) {
                // The caller may have gone (deadline, cancellation): its call stands, as a
                // lone call's committed transaction would.
                let _ = answer.send(result);
            }
        }
        if !hold {
            connection = None;
        }
        load.release(&held);
    }
}

/// Takes the next group: the first call that may go (deferred ones first), what else is
/// queued and may go, and, under load, what arrives within the window; holds the group's
/// accounts. `None` once the queue is closed and nothing is deferred.
async fn collect(
    queue: &Mutex<Queue>,
    load: &Load,
    coalescing: Coalescing,
    connection: &mut HeldConnection,
) -> Option<(Vec<Queued>, HashSet<Uuid>)> {
    let mut queue = queue.lock().await;
    let mut forming = Forming::default();
    loop {
        forming.blocked = load.busy_accounts();
        for queued in std::mem::take(&mut queue.deferred) {
            forming.place(queued, &mut queue.deferred, coalescing.max_calls);
        }
        if !forming.group.is_empty() {
            break;
        }
        // A group ending while this waits wakes it (`notify_one` keeps the wake-up for it).
        let closed = tokio::select! {
            queued = queue.receiver.recv() => match queued {
                Some(queued) => {
                    forming.place(queued, &mut queue.deferred, coalescing.max_calls);
                    false
                }
                None => true,
            },
            () = load.freed.notified() => false,
            () = tokio::time::sleep(HOLD_IDLE), if connection.is_some() => {
                *connection = None;
                false
            }
        };
        if !forming.group.is_empty() {
            break;
        }
        if closed {
            if queue.deferred.is_empty() {
                return None;
            }
            // Closed, with calls deferred behind groups being written: they go when those end.
            load.freed.notified().await;
        }
    }
    let deadline = Instant::now() + coalescing.window;
    while forming.group.len() < coalescing.max_calls {
        match queue.receiver.try_recv() {
            Ok(queued) => {
                forming.place(queued, &mut queue.deferred, coalescing.max_calls);
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        // Calls submitted but neither written, deferred nor in this group: racing this
        // writer to the queue.
        let racing = load
            .in_flight
            .load(Ordering::Relaxed)
            .saturating_sub(load.writing.load(Ordering::Relaxed))
            .saturating_sub(queue.deferred.len())
            .saturating_sub(forming.group.len());
        // Nothing racing and as many calls as the last group: the clients that group answered
        // are back (or, at low load, a lone call), and waiting would only delay them.
        if racing == 0 && forming.group.len() >= load.last_group.load(Ordering::Relaxed) {
            break;
        }
        match tokio::time::timeout_at(deadline, queue.receiver.recv()).await {
            Ok(Some(queued)) => {
                forming.place(queued, &mut queue.deferred, coalescing.max_calls);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let Forming { group, held, .. } = forming;
    load.hold(&held);
    load.writing.fetch_add(group.len(), Ordering::Relaxed);
    load.last_group.store(group.len(), Ordering::Relaxed);
    Some((group, held))
}

/// A group being collected.
#[derive(Debug, Default)]
struct Forming {
    group: Vec<Queued>,
    /// The accounts the group names.
    held: HashSet<Uuid>,
    /// Accounts the group must not name: those of the groups being written and of the calls
    /// deferred so far.
    blocked: HashSet<Uuid>,
}

impl Forming {
    /// Puts `queued` in the group, or at the back of `deferred`: it names a blocked account, or
    /// the group is full.
    fn place(&mut self, mut queued: Queued, deferred: &mut VecDeque<Queued>, max_calls: usize) {
        let blocked = queued.accounts.iter().any(|a| self.blocked.contains(a));
        if blocked || self.group.len() >= max_calls {
            self.blocked.extend(queued.accounts.iter().copied());
            if blocked && !queued.deferred {
                queued.deferred = true;
                metrics::deferred();
            }
            deferred.push_back(queued);
            return;
        }
        self.held.extend(queued.accounts.iter().copied());
        self.group.push(queued);
    }
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
