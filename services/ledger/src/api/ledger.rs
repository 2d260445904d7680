//! LedgerService: tenants, accounts, transfers, history.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::ledger_service_server::LedgerService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{keyed, tenant_of, version_token};
use crate::app::Ledger;
use crate::app::posting::Located;
use crate::domain::ledger::{self, BalanceLimit, Linking, NewAccount, Operation, TransferSpec};
use crate::domain::owner::check_owner_ref;
use crate::domain::tenant::NewTenant;
use crate::proto;

/// A transfer spec from the wire, checked whole into `violations` with its fields under
/// `field`: the ids and the timeout are decoded here, the spec's own rules are the domain's
/// ([`TransferSpec::check`]).
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
    let decoded = TransferSpec {
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
    };
    decoded.check(field, violations);
    decoded
}

/// The transfers of a batch, each checked whole into `violations` under `transfers[i]`, and
/// the index of the first one at fault, if any.
fn batch_operations(
    specs: &[pb::TransferSpec],
    violations: &mut Violations,
) -> (Vec<Operation>, Option<usize>) {
    let mut first_bad = None;
    let operations = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let mut own = Violations::new();
            let spec = transfer_spec(Some(spec), &format!("transfers[{index}]"), &mut own);
            if let Err(refusal) = own.finish() {
                first_bad.get_or_insert(index);
                violations.absorb(refusal);
            }
            Operation::Transfer(spec)
        })
        .collect();
    (operations, first_bad)
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
        let key = keyed(
            violations,
            "",
            &body.idempotency_key,
            "LedgerService/CreateTenant",
            body,
        )?;
        let tenant = self.register_tenant(&key, new).await?;
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
        let tenant = self.tenant(tenant_id).await?;
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
        let tenants = self.tenants(after, only, limit).await?;
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
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "LedgerService/CreateAccount",
            body,
        )?;
        let account = self.open_account(&key, tenant_id, new).await?;
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
        let account = self.account(tenant_id, id).await?;
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
        violations.take(check_owner_ref(owner));
        violations.finish()?;
        let accounts = self.accounts(tenant_id, owner).await?;
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
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "LedgerService/CreateTransfer",
            body,
        )?;
        let transfer = self
            .post_operation(&key, tenant_id, Operation::Transfer(spec), Some("transfer"))
            .await?;
        Ok(Response::new(pb::CreateTransferResponse {
            transfer: Some(proto::transfer(&transfer)),
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
        // An oversized batch is refused before its transfers are read.
        let (operations, first_bad) =
            if ledger::check_batch_size(body.transfers.len(), &mut violations) {
                batch_operations(&body.transfers, &mut violations)
            } else {
                (Vec::new(), None)
            };
        // Like a linked batch refused by a rule, a malformed one names its first bad transfer.
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "LedgerService/CreateTransfers",
            body,
        )
        .map_err(|refusal| match first_bad {
            Some(index) => refusal.with("index", index),
            None => refusal,
        })?;
        let outcome = self
            .post(
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
        let amount = ledger::optional_amount(body.amount, &mut violations);
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "LedgerService/PostPendingTransfer",
            body,
        )?;
        let transfer = self
            .post_operation(
                &key,
                tenant_id,
                Operation::PostPending { pending_id, amount },
                None,
            )
            .await?;
        Ok(Response::new(pb::PostPendingTransferResponse {
            transfer: Some(proto::transfer(&transfer)),
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
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "LedgerService/VoidPendingTransfer",
            body,
        )?;
        let transfer = self
            .post_operation(&key, tenant_id, Operation::VoidPending { pending_id }, None)
            .await?;
        Ok(Response::new(pb::VoidPendingTransferResponse {
            transfer: Some(proto::transfer(&transfer)),
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
        let amount = ledger::optional_amount(body.amount, &mut violations);
        ledger::check_code(&body.code, "code", &mut violations);
        let key = keyed(
            violations,
            tenant_id,
            &body.idempotency_key,
            "LedgerService/ReverseTransfer",
            body,
        )?;
        let operation = Operation::Reverse {
            transfer_id,
            amount,
            code: body.code.clone(),
        };
        let transfer = self
            .post_operation(&key, tenant_id, operation, None)
            .await?;
        Ok(Response::new(pb::ReverseTransferResponse {
            transfer: Some(proto::transfer(&transfer)),
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
        let transfer = self.transfer(tenant_id, id).await?;
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
        let entries = self.entries(tenant_id, account_id, after, limit).await?;
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
        let (posted, version) = self.balance_at(tenant_id, account_id, at).await?;
        Ok(Response::new(pb::GetBalanceAtResponse { posted, version }))
    }
}
