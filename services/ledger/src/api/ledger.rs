//! LedgerService: tenants, accounts, transfers, history.

use std::collections::HashMap;

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::ledger_service_server::LedgerService;
use phoenix_runtime::idempotency::{self, Ran, RequestKey};
use phoenix_runtime::{Error, Refusal, Violations};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Ledger, tenant_of, version_token};
use crate::domain::ledger::{
    self, Account, BalanceLimit, BatchRefusal, Linking, NewAccount, Operation, Transfer,
    TransferSpec,
};
use crate::domain::tenant::{NewTenant, Tenant};
use crate::{error, proto, store};

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

impl Ledger {
    /// Runs `operations` as one posting call under the request's idempotency key.
    pub async fn post_once(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        operations: Vec<Operation>,
        linking: Linking,
        located: Located,
    ) -> Result<BatchOutcome, Error> {
        let snapshot_every = self.settings.snapshot_every;
        let key_text = key.key.clone();
        let ran = idempotency::once_recording(
            &self.pool,
            key,
            self.settings.idempotency_ttl,
            move |connection| {
                Box::pin(async move {
                    let posting = store::ledger::post(
                        connection,
                        tenant_id,
                        Some(key_text),
                        &operations,
                        linking,
                        snapshot_every,
                    )
                    .await?
                    .map_err(|refused| located.refusal(refused))?;
                    let outcome = BatchOutcome {
                        batch_id: posting
                            .transfers
                            .first()
                            .map_or_else(Uuid::nil, |t| t.batch_id),
                        results: posting.results,
                    };
                    let record = PostingRecord::of(&outcome);
                    Ok((outcome, record))
                })
            },
        )
        .await?;
        match ran {
            Ran::Fresh(outcome, _) => {
                crate::metrics::made(outcome.results.iter().filter_map(|r| r.as_ref().ok()));
                Ok(outcome)
            }
            Ran::Replayed(record) => self.replay(tenant_id, record).await,
        }
    }

    /// The answer a posting call gave, rebuilt from its record: its transfers as they were made.
    async fn replay(&self, tenant_id: Uuid, record: PostingRecord) -> Result<BatchOutcome, Error> {
        let ids: Vec<Uuid> = record
            .results
            .iter()
            .filter_map(|result| result.as_ref().ok().copied())
            .collect();
        let mut made: HashMap<Uuid, Transfer> =
            store::ledger::get_transfers(&self.pool, tenant_id, &ids)
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

    /// A single-operation call: its one transfer, or its refusal with fields under `prefix`.
    async fn post_single(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        operation: Operation,
        prefix: Option<&'static str>,
    ) -> Result<pb::Transfer, Error> {
        let outcome = self
            .post_once(
                key,
                tenant_id,
                vec![operation],
                Linking::Linked,
                Located::Single(prefix),
            )
            .await?;
        match outcome.results.into_iter().next() {
            Some(Ok(transfer)) => Ok(proto::transfer(&transfer)),
            Some(Err(refusal)) => Err(refusal.into()),
            None => Err(Error::invariant(
                "ONE_RESULT_PER_OPERATION",
                "a posting call of one operation returned no result",
            )),
        }
    }
}

/// A transfer spec from the wire, checked into `violations` with its fields under `field`;
/// UUID fields are checked here, the rules in the domain.
pub(super) fn transfer_spec(
    spec: Option<&pb::TransferSpec>,
    field: &str,
    violations: &mut Violations,
) -> TransferSpec {
    let Some(spec) = spec else {
        violations.add(field, "REQUIRED", "is required");
        return TransferSpec {
            debit_account_id: Uuid::nil(),
            credit_account_id: Uuid::nil(),
            amount: 0,
            pending: false,
            timeout: None,
            code: String::new(),
            metadata: Default::default(),
        };
    };
    TransferSpec {
        debit_account_id: violations
            .uuid(&format!("{field}.debit_account_id"), &spec.debit_account_id),
        credit_account_id: violations.uuid(
            &format!("{field}.credit_account_id"),
            &spec.credit_account_id,
        ),
        amount: spec.amount,
        pending: spec.pending,
        // The domain bounds a pending transfer's timeout (INVALID_TIMEOUT).
        timeout: violations.positive_duration(
            &format!("{field}.timeout"),
            spec.timeout.as_ref(),
            chrono::Duration::MAX,
        ),
        code: spec.code.clone(),
        metadata: spec.metadata.clone(),
    }
}

/// Amount fields where 0 means "all of it".
fn optional_amount(violations: &mut Violations, amount: i64) -> Option<i64> {
    violations.check(
        amount >= 0,
        "amount",
        "INVALID_AMOUNT",
        "must be positive, or 0 for all of it",
    );
    (amount > 0).then_some(amount)
}

#[tonic::async_trait]
impl LedgerService for Ledger {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        super::require_admin(&request)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let new = NewTenant::parse(&body.slug, &body.name, &mut violations);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new("", key, "LedgerService/CreateTenant", body);
        let tenant: Tenant =
            idempotency::once(&self.pool, &key, self.settings.idempotency_ttl, move |c| {
                Box::pin(async move { store::tenants::create(c, &new, chrono::Utc::now()).await })
            })
            .await?;
        tracing::info!(tenant_id = %tenant.id, slug = %tenant.slug, "tenant created");
        Ok(Response::new(pb::CreateTenantResponse {
            tenant: Some(proto::tenant(&tenant)),
        }))
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &request.get_ref().tenant_id, &mut violations)?;
        violations.finish()?;
        let tenant = store::tenants::get(&self.pool, tenant_id).await?;
        Ok(Response::new(pb::GetTenantResponse {
            tenant: Some(proto::tenant(&tenant)),
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let only = super::caller_tenant(&request)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let limit = violations.page_size(body.page_size, 100, 1000);
        let after = violations.page_token(&body.page_token, |t| Uuid::try_parse(t).ok());
        violations.finish()?;
        let tenants = store::tenants::list(&self.pool, after, only, limit).await?;
        let next_page_token = match tenants.last() {
            Some(last) if i64::try_from(tenants.len()).unwrap_or(0) == limit => last.id.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants.iter().map(proto::tenant).collect(),
            next_page_token,
        }))
    }

    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let limit = match pb::BalanceLimit::try_from(body.balance_limit) {
            Ok(pb::BalanceLimit::None) => Some(BalanceLimit::None),
            Ok(pb::BalanceLimit::DebitsMustNotExceedCredits) => {
                Some(BalanceLimit::DebitsMustNotExceedCredits)
            }
            Ok(pb::BalanceLimit::CreditsMustNotExceedDebits) => {
                Some(BalanceLimit::CreditsMustNotExceedDebits)
            }
            Ok(pb::BalanceLimit::Unspecified) | Err(_) => None,
        };
        let new = NewAccount::parse(
            &body.asset_code,
            body.asset_scale,
            &body.owner_ref,
            &body.kind,
            limit,
            body.metadata.clone(),
            &mut violations,
        );
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "LedgerService/CreateAccount",
            body,
        );
        let account: Account =
            idempotency::once(&self.pool, &key, self.settings.idempotency_ttl, move |c| {
                Box::pin(async move {
                    store::ledger::create_account(c, tenant_id, &new, chrono::Utc::now()).await
                })
            })
            .await?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(proto::account(&account)),
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let id = violations.uuid("account_id", &body.account_id);
        violations.finish()?;
        let account = store::ledger::get_account(&self.pool, tenant_id, id).await?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(proto::account(&account)),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let owner = body.owner_ref.trim();
        violations.check(!owner.is_empty(), "owner_ref", "REQUIRED", "is required");
        violations.finish()?;
        let accounts = store::ledger::list_accounts(&self.pool, tenant_id, owner).await?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts.iter().map(proto::account).collect(),
        }))
    }

    async fn create_transfer(
        &self,
        request: Request<pb::CreateTransferRequest>,
    ) -> Result<Response<pb::CreateTransferResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let spec = transfer_spec(body.transfer.as_ref(), "transfer", &mut violations);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "LedgerService/CreateTransfer",
            body,
        );
        let transfer = self
            .post_single(&key, tenant_id, Operation::Transfer(spec), Some("transfer"))
            .await?;
        Ok(Response::new(pb::CreateTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn create_transfers(
        &self,
        request: Request<pb::CreateTransfersRequest>,
    ) -> Result<Response<pb::CreateTransfersResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let linking = match pb::BatchMode::try_from(body.mode) {
            Ok(pb::BatchMode::Linked) => Some(Linking::Linked),
            Ok(pb::BatchMode::Independent) => Some(Linking::Independent),
            _ => {
                violations.add(
                    "mode",
                    "BATCH_MODE_REQUIRED",
                    "choose LINKED (all or none) or INDEPENDENT (each on its own)",
                );
                None
            }
        };
        let sized = !body.transfers.is_empty() && body.transfers.len() <= ledger::MAX_BATCH;
        violations.check(
            sized,
            "transfers",
            "INVALID_BATCH_SIZE",
            &format!(
                "must hold 1 to {} transfers, not {}",
                ledger::MAX_BATCH,
                body.transfers.len()
            ),
        );
        // An oversized batch is refused before its transfers are read.
        let operations: Vec<Operation> = if sized {
            body.transfers
                .iter()
                .enumerate()
                .map(|(index, spec)| {
                    Operation::Transfer(transfer_spec(
                        Some(spec),
                        &format!("transfers[{index}]"),
                        &mut violations,
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "LedgerService/CreateTransfers",
            body,
        );
        let outcome = self
            .post_once(
                &key,
                tenant_id,
                operations,
                linking.unwrap_or(Linking::Linked),
                Located::Batch,
            )
            .await?;
        let results = outcome
            .results
            .iter()
            .map(|result| pb::TransferResult {
                outcome: Some(match result {
                    Ok(transfer) => {
                        pb::transfer_result::Outcome::Transfer(proto::transfer(transfer))
                    }
                    Err(refusal) => pb::transfer_result::Outcome::Failure(pb::TransferFailure {
                        reason: refusal.reason.clone(),
                        message: refusal.message.clone(),
                        code: refusal.kind.code_name().to_owned(),
                    }),
                }),
            })
            .collect();
        Ok(Response::new(pb::CreateTransfersResponse {
            results,
            batch_id: outcome.batch_id.to_string(),
        }))
    }

    async fn post_pending_transfer(
        &self,
        request: Request<pb::PostPendingTransferRequest>,
    ) -> Result<Response<pb::PostPendingTransferResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let pending_id = violations.uuid("pending_id", &body.pending_id);
        let amount = optional_amount(&mut violations, body.amount);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "LedgerService/PostPendingTransfer",
            body,
        );
        let transfer = self
            .post_single(
                &key,
                tenant_id,
                Operation::PostPending { pending_id, amount },
                None,
            )
            .await?;
        Ok(Response::new(pb::PostPendingTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn void_pending_transfer(
        &self,
        request: Request<pb::VoidPendingTransferRequest>,
    ) -> Result<Response<pb::VoidPendingTransferResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let pending_id = violations.uuid("pending_id", &body.pending_id);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "LedgerService/VoidPendingTransfer",
            body,
        );
        let transfer = self
            .post_single(&key, tenant_id, Operation::VoidPending { pending_id }, None)
            .await?;
        Ok(Response::new(pb::VoidPendingTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn reverse_transfer(
        &self,
        request: Request<pb::ReverseTransferRequest>,
    ) -> Result<Response<pb::ReverseTransferResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let transfer_id = violations.uuid("transfer_id", &body.transfer_id);
        let amount = optional_amount(&mut violations, body.amount);
        let key = violations.idempotency_key(&body.idempotency_key);
        violations.finish()?;
        let key = RequestKey::new(
            tenant_id.to_string(),
            key,
            "LedgerService/ReverseTransfer",
            body,
        );
        let operation = Operation::Reverse {
            transfer_id,
            amount,
            code: body.code.clone(),
        };
        let transfer = self.post_single(&key, tenant_id, operation, None).await?;
        Ok(Response::new(pb::ReverseTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn get_transfer(
        &self,
        request: Request<pb::GetTransferRequest>,
    ) -> Result<Response<pb::GetTransferResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let id = violations.uuid("transfer_id", &body.transfer_id);
        violations.finish()?;
        let transfer = store::ledger::get_transfer(&self.pool, tenant_id, id).await?;
        Ok(Response::new(pb::GetTransferResponse {
            transfer: Some(proto::transfer(&transfer)),
        }))
    }

    async fn list_account_entries(
        &self,
        request: Request<pb::ListAccountEntriesRequest>,
    ) -> Result<Response<pb::ListAccountEntriesResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let account_id = violations.uuid("account_id", &body.account_id);
        let limit = violations.page_size(body.page_size, 100, 1000);
        let after = version_token(&mut violations, &body.page_token);
        violations.finish()?;
        let entries =
            store::ledger::list_entries(&self.pool, tenant_id, account_id, after, limit).await?;
        let next_page_token = match entries.last() {
            Some(last) if i64::try_from(entries.len()).unwrap_or(0) == limit => {
                last.version.to_string()
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAccountEntriesResponse {
            entries: entries
                .iter()
                .map(|entry| pb::Entry {
                    account_id: entry.account_id.to_string(),
                    version: entry.version,
                    transfer_id: entry.transfer_id.to_string(),
                    amount: entry.amount,
                    balance: entry.balance,
                    create_time: Some(proto::timestamp(entry.created_at)),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_balance_at(
        &self,
        request: Request<pb::GetBalanceAtRequest>,
    ) -> Result<Response<pb::GetBalanceAtResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let tenant_id = tenant_of(&request, &body.tenant_id, &mut violations)?;
        let account_id = violations.uuid("account_id", &body.account_id);
        let at = violations.timestamp("time", body.time.as_ref());
        violations.finish()?;
        let at = at.unwrap_or_default();
        let (posted, version) =
            store::ledger::balance_at(&self.pool, tenant_id, account_id, at).await?;
        Ok(Response::new(pb::GetBalanceAtResponse { posted, version }))
    }
}
