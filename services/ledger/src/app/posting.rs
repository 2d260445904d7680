//! Posting: the one transaction every transfer, pending resolution and reversal goes through,
//! made idempotent per call, and its dry run. Concurrent single-operation calls are written
//! together (see [`super::coalesce`]); every call keeps its own outcome.
//!
//! One transaction for one or several calls: BEGIN with the tenant's policy gate held shared →
//! read the transfers the calls refer to → lock the accounts involved, in id order (no
//! deadlocks), then read the clock and the active policies, in one statement → for posts,
//! voids and reversals, which pendings are still open and how much was reversed → the engine
//! (`domain::ledger::post`, pure) decides each call in turn on one view, so a later call sees
//! an earlier one's balances → one statement writes transfers, entries, the account events,
//! balances, pendings, due snapshots and each call's idempotency key with its outcome →
//! commit. Four round trips for transfers, whatever the number of calls.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use phoenix_runtime::idempotency::{self, KeyRows, RequestKey};
use phoenix_runtime::stream::{EventStream, Origin};
use phoenix_runtime::{Error, Refusal, RefusalKind};
use serde::{Deserialize, Serialize};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::Ledger;
use crate::domain::ledger::{
    self, BatchRefusal, CallContext, LedgerView, Linking, Operation, Posting, Referenced, Transfer,
    TransferSpec,
};
use crate::domain::policy;
use crate::metrics::{PostingClock, PostingPhase};
use crate::store::transfers::PostingWrite;
use crate::{error, metrics, store};

/// Most pending transfers released per sweep.
const EXPIRY_BATCH: i64 = 500;
/// Times a transaction of several calls is tried again after a serialization failure or a
/// deadlock before its calls are written one by one.
const CONFLICT_RETRIES: usize = 3;

/// What a posting call answers: its batch id and one result per operation.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub batch_id: Uuid,
    pub results: Vec<Result<Transfer, Refusal>>,
}

/// What a posting call records under its idempotency key: the ids of the transfers it made
/// (which are immutable, so a replay reads them back) and its refusals. An 8,000-transfer batch
/// records 384 kB of JSON instead of 4.5 MB of transfers.
#[derive(Debug, Serialize, Deserialize)]
struct PostingRecord {
    batch_id: Uuid,
    results: Vec<Result<Uuid, Refusal>>,
}

impl PostingRecord {
    fn of(outcome: &BatchOutcome) -> Self {
        Self {
            batch_id: outcome.batch_id,
            results: outcome
                .results
                .iter()
                .map(|result| result.as_ref().map(|t| t.id).map_err(Clone::clone))
                .collect(),
        }
    }
}

/// Where the refusal of a linked call points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// A batch: under `transfers[i]`, with the index in the metadata.
    Batch,
    /// One operation whose fields sit under this prefix (`transfer`), or at the top.
    Single(Option<&'static str>),
}

impl Located {
    fn refusal(self, refused: BatchRefusal) -> Refusal {
        match self {
            Self::Batch => error::refused_in_batch(refused.index, *refused.refusal),
            Self::Single(Some(prefix)) if refused.refusal.field().is_some() => {
                refused.refusal.within(prefix)
            }
            Self::Single(_) => *refused.refusal,
        }
    }
}

/// One posting call: its operations, its key (none for the sweeper's releases), where its
/// refusal points, and the call it came from when another task writes it.
#[derive(Debug)]
pub struct PostingCall {
    pub key: Option<RequestKey>,
    pub tenant_id: Uuid,
    pub operations: Vec<Operation>,
    pub linking: Linking,
    pub located: Located,
    pub origin: Option<Origin>,
}

impl PostingCall {
    /// Whether it may share a transaction with other calls: one operation, so a refusal
    /// leaves the shared view as it found it (a linked call refused at its second operation
    /// would leave its first one's changes in the view).
    pub fn coalescible(&self) -> bool {
        self.operations.len() <= 1
    }
}

/// Writes posting calls: alone, or several of one tenant in one transaction. What the
/// coalescer's writers and the use cases share.
#[derive(Debug, Clone)]
pub struct PostingWriter {
    pub(super) pool: PgPool,
    pub(super) idempotency_ttl: std::time::Duration,
    pub(super) snapshot_every: i64,
    pub(super) events: EventStream,
}

/// A writer's connection, kept from one transaction to the next while calls keep coming: a
/// connection given back to the pool costs a round trip (the check that it is outside any
/// transaction block) and taking one a wake-up. `None` takes one from the pool; a transaction
/// that fails gives it back, for the pool to check or close.
pub type HeldConnection = Option<PoolConnection<Postgres>>;

/// How one call of a transaction ended.
enum Decided {
    Made(BatchOutcome),
    Refused(Refusal),
}

/// A call the engine accepted: what it writes, and what it answers.
type Accepted = (Posting, BatchOutcome);

/// How one try of a transaction ended.
enum Tried {
    Committed(Vec<(usize, Decided)>),
    /// These calls' keys were taken by concurrent requests first; nothing was written.
    KeysTaken(Vec<usize>),
}

impl PostingWriter {
    /// Writes `calls` (all of one tenant, each [`PostingCall::coalescible`] when there are
    /// several) and answers each as if it had been written alone: its outcome or its
    /// refusal, a replay of an earlier call with its key, or the error that stopped it.
    pub async fn write(
        &self,
        calls: &[PostingCall],
        held: &mut HeldConnection,
    ) -> Vec<Result<BatchOutcome, Error>> {
        let mut answers: Vec<Option<Result<BatchOutcome, Error>>> =
            calls.iter().map(|_| None).collect();
        // A key twice among the calls: the later call waits for a later round, where it
        // finds the first one's record (a replay, or a key reused for another request).
        let mut left: Vec<usize> = (0..calls.len()).collect();
        while !left.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<usize>, Vec<usize>) = left.into_iter().partition(|&i| {
                calls[i]
                    .key
                    .as_ref()
                    .is_none_or(|key| seen.insert((&key.scope, &key.key)))
            });
            self.write_round(calls, round, &mut answers, held).await;
            left = later;
        }
        self.events.appended();
        answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| Err(unanswered())))
            .collect()
    }

    /// Writes one call alone, and answers it.
    pub async fn write_one(&self, call: &PostingCall) -> Result<BatchOutcome, Error> {
        self.write(std::slice::from_ref(call), &mut None)
            .await
            .pop()
            .unwrap_or_else(|| Err(unanswered()))
    }

    /// Writes the calls `members` (distinct keys) in one transaction, retried without the
    /// calls whose keys concurrent requests took, and answers them in `answers`.
    async fn write_round(
        &self,
        calls: &[PostingCall],
        mut members: Vec<usize>,
        answers: &mut [Option<Result<BatchOutcome, Error>>],
        held: &mut HeldConnection,
    ) {
        let mut conflicts = 0;
        while !members.is_empty() {
            let connection = match held {
                Some(connection) => connection,
                None => match self.pool.acquire().await {
                    Ok(connection) => held.insert(connection),
                    Err(error) => {
                        let error = Error::from(error);
                        for &index in &members {
                            answers[index] = Some(Err(error.clone()));
                        }
                        return;
                    }
                },
            };
            let tried = self.try_transaction(connection, calls, &members).await;
            if tried.is_err() {
                *held = None;
            }
            match tried {
                Ok(Tried::Committed(decided)) => {
                    for (index, decided) in decided {
                        if matches!(decided, Decided::Refused(_)) {
                            // Its answer may read the pool: a writer must not hold one
                            // connection while it waits for another.
                            *held = None;
                        }
                        answers[index] = Some(self.answer(&calls[index], decided).await);
                    }
                    return;
                }
                Ok(Tried::KeysTaken(taken)) => {
                    *held = None;
                    for &index in &taken {
                        answers[index] = Some(self.replay_taken(&calls[index]).await);
                    }
                    members.retain(|index| !taken.contains(index));
                }
                Err(error) if members.len() > 1 && retryable(&error) => {
                    conflicts += 1;
                    if conflicts > CONFLICT_RETRIES {
                        self.write_one_by_one(calls, &members, answers, held).await;
                        return;
                    }
                }
                // One call's value the database refused (validation let it through) must not
                // fail the others: each is written alone, and answers for itself.
                Err(error) if members.len() > 1 && !matches!(error, Error::Unavailable { .. }) => {
                    tracing::warn!(%error, calls = members.len(), "a coalesced posting failed; writing its calls one by one");
                    self.write_one_by_one(calls, &members, answers, held).await;
                    return;
                }
                // The database is down, or a lone call failed: every member gets the error,
                // and nothing was written.
                Err(error) => {
                    for &index in &members {
                        answers[index] = Some(Err(error.clone()));
                    }
                    return;
                }
            }
        }
    }

    async fn write_one_by_one(
        &self,
        calls: &[PostingCall],
        members: &[usize],
        answers: &mut [Option<Result<BatchOutcome, Error>>],
        held: &mut HeldConnection,
    ) {
        for &index in members {
            Box::pin(self.write_round(calls, vec![index], answers, held)).await;
        }
    }

    /// One transaction of the calls `members`: decide each on one view, write them all.
    async fn try_transaction(
        &self,
        connection: &mut PgConnection,
        calls: &[PostingCall],
        members: &[usize],
    ) -> Result<Tried, Error> {
        let tenant_id = calls[members[0]].tenant_id;
        if members.iter().any(|&i| calls[i].tenant_id != tenant_id)
            || (members.len() > 1 && members.iter().any(|&i| !calls[i].coalescible()))
        {
            return Err(Error::invariant(
                "COALESCED_CALLS_SHARE_A_TENANT",
                "posting calls written together must be of one tenant and of one operation each",
            ));
        }
        let mut clock = PostingClock::start();
        let mut transaction = connection
            .begin_with(store::transfers::begin_posting(tenant_id))
            .await?;
        clock.lap(PostingPhase::Begin);
        let members_calls: Vec<&PostingCall> = members.iter().map(|&i| &calls[i]).collect();
        let (decided, now) = decide(&mut transaction, tenant_id, &members_calls).await?;
        let mut keys = KeyRows::new(Utc::now());
        let mut outcomes: Vec<(usize, Result<Accepted, Refusal>)> = Vec::new();
        for (&index, decided) in members.iter().zip(decided) {
            let call = &calls[index];
            let outcome = match decided {
                Ok(mut posting) => {
                    let outcome = BatchOutcome {
                        batch_id: posting
                            .transfers
                            .first()
                            .map_or_else(Uuid::nil, |t| t.batch_id),
                        results: std::mem::take(&mut posting.results),
                    };
                    if let Some(key) = &call.key {
                        keys.push(key, &PostingRecord::of(&outcome), self.idempotency_ttl)?;
                    }
                    Ok((posting, outcome))
                }
                Err(refused) => Err(call.located.refusal(refused)),
            };
            outcomes.push((index, outcome));
        }
        let writes: Vec<PostingWrite> = outcomes
            .iter()
            .filter_map(|(index, outcome)| {
                outcome.as_ref().ok().map(|(posting, _)| PostingWrite {
                    posting,
                    origin: calls[*index].origin.as_ref(),
                })
            })
            .collect();
        clock.lap(PostingPhase::Decide);
        let taken = store::transfers::write_postings(
            &mut transaction,
            tenant_id,
            &writes,
            now,
            self.snapshot_every,
            keys,
        )
        .await?;
        clock.lap(PostingPhase::Write);
        let not_taken: Vec<usize> = outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_ok())
            .filter_map(|(index, _)| {
                let key = calls[*index].key.as_ref()?;
                (!taken.contains(&key.key)).then_some(*index)
            })
            .collect();
        if !not_taken.is_empty() {
            transaction.rollback().await?;
            clock.lap(PostingPhase::End);
            return Ok(Tried::KeysTaken(not_taken));
        }
        transaction.commit().await?;
        clock.lap(PostingPhase::End);
        Ok(Tried::Committed(
            outcomes
                .into_iter()
                .map(|(index, outcome)| {
                    let decided = match outcome {
                        Ok((posting, outcome)) => {
                            metrics::made(&posting.transfers);
                            Decided::Made(outcome)
                        }
                        Err(refusal) => Decided::Refused(refusal),
                    };
                    (index, decided)
                })
                .collect(),
        ))
    }

    /// A committed call's answer. A refused one may be the replay of an earlier call with
    /// its key (which spent the funds it asks for): that call's outcome is the answer.
    async fn answer(&self, call: &PostingCall, decided: Decided) -> Result<BatchOutcome, Error> {
        match decided {
            Decided::Made(outcome) => Ok(outcome),
            Decided::Refused(refusal) => {
                let Some(key) = &call.key else {
                    return Err(refusal.into());
                };
                match idempotency::find(&self.pool, key, Utc::now()).await {
                    Ok(found) => match idempotency::replayable(found, key)? {
                        Some(record) => self.replay_posting(call.tenant_id, record).await,
                        None => Err(refusal.into()),
                    },
                    // The refusal says more than the lookup's error.
                    Err(_) => Err(refusal.into()),
                }
            }
        }
    }

    /// The answer to a call whose key a concurrent request took: that request's outcome.
    async fn replay_taken(&self, call: &PostingCall) -> Result<BatchOutcome, Error> {
        let Some(key) = &call.key else {
            return Err(Error::invariant(
                "KEYLESS_CALL_RECORDS_NOTHING",
                "a posting call without an idempotency key had its key taken",
            ));
        };
        let found = idempotency::find(&self.pool, key, Utc::now()).await?;
        let record = idempotency::replayable(found, key)?.ok_or_else(idempotency::busy)?;
        self.replay_posting(call.tenant_id, record).await
    }

    /// The answer a posting call gave, rebuilt from its record: its transfers as they were made.
    async fn replay_posting(
        &self,
        tenant_id: Uuid,
        record: PostingRecord,
    ) -> Result<BatchOutcome, Error> {
        let ids: Vec<Uuid> = record
            .results
            .iter()
            .filter_map(|result| result.as_ref().ok().copied())
            .collect();
        let mut made: HashMap<Uuid, Transfer> =
            store::transfers::get_transfers(&self.pool, tenant_id, &ids)
                .await?
                .into_iter()
                .map(|transfer| (transfer.id, transfer.as_made()))
                .collect();
        let results = record
            .results
            .into_iter()
            .map(|result| match result {
                Ok(id) => made.remove(&id).map(Ok).ok_or_else(|| {
                    Error::invariant(
                        "RECORDED_TRANSFER_EXISTS",
                        format!("transfer {id} recorded under an idempotency key is missing"),
                    )
                }),
                Err(refusal) => Ok(Err(refusal)),
            })
            .collect::<Result<_, _>>()?;
        Ok(BatchOutcome {
            batch_id: record.batch_id,
            results,
        })
    }
}

/// A call [`PostingWriter::write`] left without an answer: a bug.
fn unanswered() -> Error {
    Error::invariant(
        "ONE_ANSWER_PER_CALL",
        "a posting call was left without an answer",
    )
}

/// A database conflict the same transaction may simply be tried again after.
fn retryable(error: &Error) -> bool {
    matches!(error, Error::Refused(refusal) if refusal.reason == "TRANSACTION_CONFLICT")
}

impl Ledger {
    /// Runs `operations` as one posting call, once per idempotency key: a replay answers what
    /// the first call answered. A linked call refused as a whole is refused with the
    /// operation's refusal, pointed at it as `located` says. A call of one operation is
    /// written together with concurrent ones when coalescing is on.
    pub async fn post(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        operations: Vec<Operation>,
        linking: Linking,
        located: Located,
    ) -> Result<BatchOutcome, Error> {
        let call = PostingCall {
            key: Some(key.clone()),
            tenant_id,
            operations,
            linking,
            located,
            origin: None,
        };
        match &self.coalescer {
            Some(coalescer) if call.coalescible() => coalescer.submit(call).await,
            _ => self.writer.write_one(&call).await,
        }
    }

    /// A call of one operation, once per key: its transfer, or its refusal with the fields
    /// under `prefix`.
    pub async fn post_operation(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        operation: Operation,
        prefix: Option<&'static str>,
    ) -> Result<Transfer, Error> {
        let outcome = self
            .post(
                key,
                tenant_id,
                vec![operation],
                Linking::Linked,
                Located::Single(prefix),
            )
            .await?;
        match outcome.results.into_iter().next() {
            Some(Ok(transfer)) => Ok(transfer),
            Some(Err(refusal)) => Err(refusal.into()),
            None => Err(Error::invariant(
                "ONE_RESULT_PER_OPERATION",
                "a posting call of one operation returned no result",
            )),
        }
    }

    /// The dry run of a transfer: the real posting path (same locks, balances and policies),
    /// rolled back. `None` when it would be accepted, else the rule's refusal; a malformed
    /// transfer is refused as INVALID_ARGUMENT with its fields under `transfer`.
    pub async fn dry_run_transfer(
        &self,
        tenant_id: Uuid,
        spec: TransferSpec,
    ) -> Result<Option<Refusal>, Error> {
        let call = PostingCall {
            key: None,
            tenant_id,
            operations: vec![Operation::Transfer(spec)],
            linking: Linking::Linked,
            located: Located::Single(None),
            origin: None,
        };
        let mut transaction = self
            .pool
            .begin_with(store::transfers::begin_posting(tenant_id))
            .await?;
        let decided = decide(&mut transaction, tenant_id, &[&call]).await;
        transaction.rollback().await?;
        match decided?.0.pop() {
            Some(Ok(_)) => Ok(None),
            Some(Err(refused)) if refused.refusal.kind == RefusalKind::Invalid => {
                Err(refused.refusal.within("transfer").into())
            }
            Some(Err(refused)) => Ok(Some(*refused.refusal)),
            None => Err(Error::invariant(
                "ONE_RESULT_PER_OPERATION",
                "a dry run decided nothing",
            )),
        }
    }

    /// Releases every open pending transfer whose timeout has passed (the sweeper); returns
    /// how many. A pending posted or voided meanwhile is skipped.
    pub async fn expire_pendings(&self) -> Result<u64, Error> {
        let due = store::transfers::expired_pendings(&self.pool, Utc::now(), EXPIRY_BATCH).await?;
        let mut released = 0;
        for (tenant_id, pending_id) in due {
            let call = PostingCall {
                key: None,
                tenant_id,
                operations: vec![Operation::ExpirePending { pending_id }],
                linking: Linking::Linked,
                located: Located::Single(None),
                origin: None,
            };
            match self.writer.write_one(&call).await {
                Ok(outcome) => {
                    released += outcome.results.iter().filter(|r| r.is_ok()).count() as u64;
                }
                // Refused (PENDING_NOT_OPEN): resolved meanwhile.
                Err(Error::Refused(_)) => {}
                Err(error) => return Err(error),
            }
        }
        if released > 0 {
            metrics::expired("pending_transfer", released);
            tracing::info!(released, "expired pending transfers released");
        }
        Ok(released)
    }
}

/// Loads what the calls touch, locks the accounts and runs the engine on each call in turn;
/// writes nothing. Returns each call's posting (or its refusal as a whole) and the time they
/// take. `connection` is in a transaction [`store::transfers::begin_posting`] began (it holds
/// the policy gate).
async fn decide(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    calls: &[&PostingCall],
) -> Result<(Vec<Result<Posting, BatchRefusal>>, DateTime<Utc>), Error> {
    let operations = || calls.iter().flat_map(|call| &call.operations);
    let referenced_ids: Vec<Uuid> = operations()
        .filter_map(Operation::referenced_transfer)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut referenced: HashMap<Uuid, Referenced> = if referenced_ids.is_empty() {
        HashMap::new()
    } else {
        store::transfers::get_transfers(&mut *connection, tenant_id, &referenced_ids)
            .await?
            .into_iter()
            .map(|transfer| {
                (
                    transfer.id,
                    Referenced {
                        transfer,
                        open: false,
                        reversed: 0,
                    },
                )
            })
            .collect()
    };
    let mut account_ids: Vec<Uuid> = operations()
        .flat_map(|op| ledger::accounts_of(op, &referenced))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    account_ids.sort();
    let locked = store::transfers::lock_accounts(connection, tenant_id, &account_ids).await?;
    if !referenced.is_empty() {
        let state =
            store::transfers::referenced_state(connection, tenant_id, &referenced_ids).await?;
        for (id, entry) in &mut referenced {
            entry.open = state.open.contains(id);
            entry.reversed = state.reversed.get(id).copied().unwrap_or(0);
        }
    }
    let now = locked.now;
    let debited_today = if policy::needs_daily_debits(&locked.policies) {
        store::transfers::debited_today(connection, tenant_id, &account_ids, now).await?
    } else {
        HashMap::new()
    };
    let mut view = LedgerView {
        accounts: locked.accounts,
        referenced,
        policies: locked.policies,
        debited_today,
    };
    let decided = calls
        .iter()
        .map(|call| {
            let context = CallContext {
                tenant_id,
                batch_id: Uuid::now_v7(),
                now,
                idempotency_key: call.key.as_ref().map(|key| key.key.clone()),
            };
            let decided = ledger::post(
                &mut view,
                &call.operations,
                call.linking,
                &context,
                Uuid::now_v7,
            );
            if let Err(refused) = &decided {
                metrics::refused(&refused.refusal.reason);
            }
            decided
        })
        .collect();
    Ok((decided, now))
}
