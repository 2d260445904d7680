//! The durable saga engine: the seed's `TransactionManager` (a rollback stack and on-commit
//! callbacks) rebuilt so that a crash between two steps loses nothing.
//!
//! # Writing a saga
//!
//! A saga is Rust code: a [`SagaDefinition`] with a type name, a version and ordered
//! [`Step`]s. Each step is an action (an async closure, or a type implementing [`Action`]) that
//! calls one participant over gRPC and returns a serializable output, and optionally a
//! compensation that undoes it:
//!
//! ```ignore
//! let ledger = LedgerClient::new(context.peer("ledger")?);
//! let purchase = SagaDefinition::new("purchase", 1)
//!     .deadline(Duration::from_secs(30))
//!     .step(
//!         Step::new("reserve_stock", {
//!             let ledger = ledger.clone();
//!             move |ctx: StepContext| {
//!                 let mut ledger = ledger.clone();
//!                 async move {
//!                     let input: PurchaseInput = ctx.input()?;
//!                     let answer = ledger
//!                         .reserve_stock(ctx.request(ReserveStockRequest {
//!                             idempotency_key: ctx.idempotency_key(),
//!                             item_id: input.item_id.clone(),
//!                             quantity: input.quantity,
//!                             ..Default::default()
//!                         }))
//!                         .await?          // a tonic::Status becomes a classified StepError
//!                         .into_inner();
//!                     Ok(Reserved { reservation_id: answer.reservation_id })
//!                 }
//!             }
//!         })
//!         .compensate({
//!             let ledger = ledger.clone();
//!             move |ctx: StepContext| {
//!                 let mut ledger = ledger.clone();
//!                 async move {
//!                     // None when the action's outcome is unknown (its deadline passed): the
//!                     // compensation must then be safe if the action never happened.
//!                     let reserved: Option<Reserved> = ctx.output()?;
//!                     ledger.release_reservation(ctx.request(ReleaseRequest {
//!                         idempotency_key: ctx.idempotency_key(),
//!                         reservation_key: ctx.action_idempotency_key(),
//!                         ..Default::default()
//!                     })).await?;
//!                     Ok(())
//!                 }
//!             }
//!         }),
//!     )
//!     .step(/* … */)
//!     .on_commit(|saga: &FinishedSaga| {
//!         let input: PurchaseInput = saga.input()?;
//!         // The catalogue's message, at the catalogue's default priority for the type.
//!         Ok(vec![SagaEvent::new("commerce.purchase_completed", &completed_of(&input))])
//!     });
//! engine.register(purchase)?;   // in lib.rs `build`, before `engine.start_background(…)`
//! ```
//!
//! A use case then runs it with the caller's idempotency key and waits for its outcome:
//!
//! ```ignore
//! let request = SagaRequest::new("purchase", &key, &input)?
//!     .user(user_id.to_string())
//!     .fingerprint_of(&proto_request);   // optional: default is the input's JSON
//! let outcome = engine.run(request).await?;
//! match outcome.state {
//!     SagaState::Completed => { let paid: Paid = outcome.output("pending_transfer")?; … }
//!     SagaState::Compensated => { /* outcome.failure: which step refused, code and reason */ }
//!     SagaState::Stuck => { /* compensation failed past its budget: an operator must act */ }
//!     SagaState::Running | SagaState::Compensating => { /* still being driven elsewhere */ }
//! }
//! ```
//!
//! The same key with the same request answers with the same saga (its outcome when finished;
//! waiting for it when another task or replica drives it); the same key with a different request
//! is INVALID_ARGUMENT `IDEMPOTENCY_KEY_REUSED`.
//!
//! # What a step can rely on, and must do
//!
//! - **Exactly one effect.** [`StepContext::idempotency_key`] is derived from the saga id and
//!   the step name (`saga:<id>:<step>`, and `saga:<id>:<step>:undo` for the compensation); it is
//!   the same on every retry and after recovery. Every participant RPC a step calls must be
//!   idempotent by that key.
//! - **Outputs are persisted** (JSON) when the step succeeds, so a recovered saga can compensate
//!   with them ([`StepContext::output`], [`StepContext::output_of`]) and later steps can use them.
//! - **Retries.** Each step has a [`RetryPolicy`] (initial delay, multiplier, maximum delay,
//!   attempts, jitter) and a deadline per attempt; the saga has a whole deadline. An error from
//!   `?` on a `tonic::Status` is classified by the runtime's [`RemoteError`] decoder:
//!   UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED (and CANCELLED) are retried;
//!   refusals (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS,
//!   PERMISSION_DENIED, OUT_OF_RANGE, UNAUTHENTICATED, UNIMPLEMENTED) start compensation at once;
//!   INTERNAL, UNKNOWN and DATA_LOSS mean the outcome is unknown and start compensation too.
//! - **Compensation** runs in reverse order over every step that succeeded *and* the step
//!   whose outcome is unknown (its retries ran out on a transient error, its deadline passed, or
//!   the saga's deadline passed while it ran). So a compensation must succeed when the action
//!   never happened (answer OK to "release a reservation that does not exist" — typically by
//!   looking the action up by [`StepContext::action_idempotency_key`]). A step that refused
//!   definitely did nothing and is not compensated. Compensations are retried with their own
//!   policy ([`Step::compensation_retry`]); when that budget is spent, or a participant refuses
//!   a compensation, the saga is **STUCK**: listed, counted in `phoenix_sagas_stuck`, logged at
//!   error level, kept until an operator resumes it with `RetrySaga`.
//! - **Trace.** The W3C trace context of the call that started the saga is stored with it;
//!   every step runs in a span continuing it, so the runtime's client carries it to the
//!   participant (also after recovery, in another process). [`StepContext::trace_context`] gives
//!   it to steps that need it otherwise.
//!
//! # Forward-only ("pivot") steps
//!
//! A step that cannot be undone (a missions claim, a posted transfer) is marked
//! [`Step::pivot`]. Until a pivot has succeeded the saga may still go back: a pivot that is
//! refused did nothing, and the steps before it are compensated. A pivot whose outcome is
//! unknown is never compensated (it has no compensation): it is retried forward by its policy,
//! and the saga's deadline no longer applies. Once a pivot has succeeded, the saga only goes
//! forward: the steps after it are retried by their policies, and one that is refused or runs
//! out of attempts parks the saga as STUCK (direction forward) instead of compensating;
//! `RetrySaga` resumes it forward. `CancelSaga` refuses a saga past its pivot
//! (`SAGA_PAST_PIVOT`). So: put the steps that can fail on business rules before the pivot,
//! and give the steps after it generous retry policies.
//!
//! # Durability and ownership
//!
//! Each saga has a row in `sagas` (type, definition version, input, caller key and fingerprint,
//! trace context, lease, and the cached state) and an append-only log `saga_log` that the
//! database refuses to UPDATE or DELETE; the state is derived from the log ([`log::replay`]),
//! the cached column is for listing. A step transition is one statement: it appends the log
//! record, refreshes the cached state and renews the lease, and appends nothing when the
//! writer's lease generation is no longer current (a stale owner is fenced off). A saga runs
//! inline in the task of the call that started it, holding a lease (owner id + generation)
//! renewed while it runs; a background loop adopts sagas whose lease expired (a crashed
//! replica's) and resumes them on the definition version they began with. One saga that cannot
//! be resumed (an unknown definition, a failing database row) is logged and skipped; it never
//! stops the others.
//!
//! # On-commit events
//!
//! [`SagaDefinition::on_commit`] (completion) and [`SagaDefinition::on_compensated`] return
//! [`SagaEvent`]s: they are appended to the coordinator's own `events` table (the runtime's
//! stream module, the layout every context uses) in the same transaction that records the
//! saga's end, with aggregate `saga` / the saga id, and the saga's trace context. The bus
//! relays them from there like any context's stream.

pub mod context;
pub mod definition;
mod driver;
pub mod engine;
pub mod log;
mod metrics;
mod recovery;
mod runs;
mod store;
pub mod view;

pub use context::{FinishedSaga, StepContext, TraceContext};
pub use definition::{
    Action, Compensation, RetryPolicy, SagaDefinition, SagaEvent, Step, StepError, StepResult,
};
pub use engine::{EngineConfig, SagaEngine, SagaOutcome, SagaRequest};
pub use log::{Direction, SagaState, StepFailure};
pub use view::{SagaCursor, SagaDetail, SagaFilter, SagaSummary, StepState, StepView};

pub use phoenix_runtime::RemoteError;
