//! The clients of the contexts the operations call, and the ledger moves several sagas share:
//! finding (or opening) a user's account of an asset, paying a reward from the issuer, taking
//! it back, adding and removing holdings.
//!
//! Every call here is idempotent by the key it is given (the ledger keys every mutating call),
//! so a saga step may repeat it on retry or after recovery. A compensation whose action's
//! outcome is unknown repeats the action with the action's own key first (the ledger answers
//! the first call's outcome, or makes it now), then undoes it: the net effect is nothing
//! whether or not the action had happened.

use std::time::Duration;

use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use phoenix_proto::missions::v1::catalog_service_client::CatalogServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use phoenix_runtime::ServiceContext;
use phoenix_runtime::client::PeerChannel;
use tonic::{Code, Request, Status};
use uuid::Uuid;

use super::settings::OperationsSettings;
use crate::saga::{StepContext, StepResult};

/// A client of every context the operations call.
#[derive(Clone)]
pub struct Participants {
    pub directory: DirectoryServiceClient<PeerChannel>,
    pub narrative: NarrativeServiceClient<PeerChannel>,
    pub ledger: LedgerServiceClient<PeerChannel>,
    pub stock: StockServiceClient<PeerChannel>,
    pub missions: MissionsServiceClient<PeerChannel>,
    pub catalog: CatalogServiceClient<PeerChannel>,
}

impl std::fmt::Debug for Participants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Participants")
    }
}

/// The peers the operations need.
pub const PEERS: [&str; 4] = ["directory", "narrative", "ledger", "missions"];

impl Participants {
    /// Clients of the configured peers; `None` (and a warning) when one is not configured.
    pub fn of(context: &ServiceContext) -> anyhow::Result<Option<Self>> {
        let unset: Vec<&str> = PEERS
            .into_iter()
            .filter(|peer| context.config.peers.url(peer).is_none())
            .collect();
        if !unset.is_empty() {
            tracing::warn!(
                ?unset,
                "peers not configured: TakeDecision and the other operations answer \
                 FAILED_PRECONDITION PARTICIPANTS_NOT_CONFIGURED"
            );
            return Ok(None);
        }
        let ledger = context.peer("ledger")?;
        let missions = context.peer("missions")?;
        Ok(Some(Self {
            directory: DirectoryServiceClient::new(context.peer("directory")?),
            narrative: NarrativeServiceClient::new(context.peer("narrative")?),
            ledger: LedgerServiceClient::new(ledger.clone()),
            stock: StockServiceClient::new(ledger),
            missions: MissionsServiceClient::new(missions.clone()),
            catalog: CatalogServiceClient::new(missions),
        }))
    }
}

/// `message` with a gRPC deadline of `timeout`.
pub fn within<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout.max(Duration::from_millis(1)));
    request
}

/// Where the operations keep money and XP.
#[derive(Debug, Clone)]
pub struct LedgerBook {
    pub tenant: Uuid,
    pub issuer_owner: String,
}

/// The operations' books in any tenant: a saga's book is its input's `tenant_id`.
#[derive(Debug, Clone)]
pub struct LedgerBooks {
    pub issuer_owner: String,
}

impl LedgerBooks {
    pub fn of(settings: &OperationsSettings) -> Self {
        Self {
            issuer_owner: settings.issuer_owner.clone(),
        }
    }

    /// The book of `tenant`.
    pub fn at(&self, tenant: Uuid) -> LedgerBook {
        LedgerBook {
            tenant,
            issuer_owner: self.issuer_owner.clone(),
        }
    }

    /// The book of the saga's tenant (its input's `tenant_id`).
    pub fn in_saga(&self, ctx: &StepContext) -> StepResult<LedgerBook> {
        #[derive(serde::Deserialize)]
        struct Tenant {
            tenant_id: Uuid,
        }
        Ok(self.at(ctx.input::<Tenant>()?.tenant_id))
    }
}

impl LedgerBook {
    /// The account of `owner` in `asset` of `kind`, opened (scale 0) when it does not exist
    /// yet. Opening uses a key derived from the owner, asset and kind, so two sagas opening it
    /// at once open one; one opened by someone else is found by listing again.
    pub async fn account(
        &self,
        client: &mut LedgerServiceClient<PeerChannel>,
        owner: &str,
        asset: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<String, Status> {
        if let Some(id) = self
            .find_account(client, owner, asset, kind, timeout)
            .await?
        {
            return Ok(id);
        }
        let limit = if kind == "issuer" {
            ledger::BalanceLimit::None
        } else {
            ledger::BalanceLimit::DebitsMustNotExceedCredits
        };
        let opened = client
            .create_account(within(
                ledger::CreateAccountRequest {
                    tenant_id: self.tenant.to_string(),
                    asset_code: asset.to_owned(),
                    asset_scale: 0,
                    owner_ref: owner.to_owned(),
                    kind: kind.to_owned(),
                    balance_limit: limit.into(),
                    metadata: Default::default(),
                    idempotency_key: format!(
                        "coordinator:account:{}:{owner}:{asset}:{kind}",
                        self.tenant
                    ),
                },
                timeout,
            ))
            .await;
        match opened {
            Ok(answer) => answer
                .into_inner()
                .account
                .map(|account| account.id)
                .ok_or_else(|| Status::internal("CreateAccount answered no account")),
            Err(status) if status.code() == Code::AlreadyExists => self
                .find_account(client, owner, asset, kind, timeout)
                .await?
                .ok_or(status),
            Err(status) => Err(status),
        }
    }

    /// The account of `owner` in `asset` of `kind`, if it exists.
    pub async fn find_account(
        &self,
        client: &mut LedgerServiceClient<PeerChannel>,
        owner: &str,
        asset: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<Option<String>, Status> {
        Ok(self
            .accounts_of(client, owner, timeout)
            .await?
            .into_iter()
            .find(|account| account.asset_code == asset && account.kind == kind)
            .map(|account| account.id))
    }

    /// Every account of `owner`.
    pub async fn accounts_of(
        &self,
        client: &mut LedgerServiceClient<PeerChannel>,
        owner: &str,
        timeout: Duration,
    ) -> Result<Vec<ledger::Account>, Status> {
        Ok(client
            .list_accounts(within(
                ledger::ListAccountsRequest {
                    tenant_id: self.tenant.to_string(),
                    owner_ref: owner.to_owned(),
                },
                timeout,
            ))
            .await?
            .into_inner()
            .accounts)
    }

    /// Pays `amount` of `asset` from the issuer to the user's `wallet` under `key`; answers the
    /// transfer id. The same key answers the same transfer.
    pub async fn grant(
        &self,
        client: &mut LedgerServiceClient<PeerChannel>,
        grant: &Grant<'_>,
        timeout: Duration,
    ) -> Result<String, Status> {
        let issuer = self
            .account(client, &self.issuer_owner, grant.asset, "issuer", timeout)
            .await?;
        let wallet = self
            .account(client, grant.user, grant.asset, "wallet", timeout)
            .await?;
        let answer = client
            .create_transfer(within(
                ledger::CreateTransferRequest {
                    tenant_id: self.tenant.to_string(),
                    transfer: Some(ledger::TransferSpec {
                        debit_account_id: issuer,
                        credit_account_id: wallet,
                        amount: grant.amount,
                        pending: false,
                        timeout: None,
                        code: grant.code.to_owned(),
                        metadata: Default::default(),
                    }),
                    idempotency_key: grant.key.to_owned(),
                },
                timeout,
            ))
            .await?
            .into_inner();
        answer
            .transfer
            .map(|transfer| transfer.id)
            .ok_or_else(|| Status::internal("CreateTransfer answered no transfer"))
    }

    /// Reverses a grant's transfer whole under `key`.
    pub async fn reverse(
        &self,
        client: &mut LedgerServiceClient<PeerChannel>,
        transfer_id: &str,
        key: String,
        timeout: Duration,
    ) -> Result<(), Status> {
        client
            .reverse_transfer(within(
                ledger::ReverseTransferRequest {
                    tenant_id: self.tenant.to_string(),
                    transfer_id: transfer_id.to_owned(),
                    amount: 0,
                    code: "saga_compensation".to_owned(),
                    idempotency_key: key,
                },
                timeout,
            ))
            .await?;
        Ok(())
    }

    /// Adds `change.quantity` of `change.item` to the user's holdings (`add`), or removes
    /// them, under `change.key`.
    pub async fn change_holding(
        &self,
        client: &mut StockServiceClient<PeerChannel>,
        change: HoldingChange<'_>,
        add: bool,
        timeout: Duration,
    ) -> Result<(), Status> {
        let added = ledger::AddHoldingRequest {
            tenant_id: self.tenant.to_string(),
            owner_ref: change.user.to_owned(),
            item_code: change.item.to_owned(),
            quantity: change.quantity,
            idempotency_key: change.key,
        };
        if add {
            client.add_holding(within(added, timeout)).await?;
            return Ok(());
        }
        let removed = ledger::RemoveHoldingRequest {
            tenant_id: added.tenant_id,
            owner_ref: added.owner_ref,
            item_code: added.item_code,
            quantity: added.quantity,
            idempotency_key: added.idempotency_key,
        };
        client.remove_holding(within(removed, timeout)).await?;
        Ok(())
    }

    /// Item code → quantity the user holds.
    pub async fn holdings(
        &self,
        client: &mut StockServiceClient<PeerChannel>,
        user: &str,
        timeout: Duration,
    ) -> Result<std::collections::BTreeMap<String, i64>, Status> {
        Ok(client
            .list_holdings(within(
                ledger::ListHoldingsRequest {
                    tenant_id: self.tenant.to_string(),
                    owner_ref: user.to_owned(),
                },
                timeout,
            ))
            .await?
            .into_inner()
            .holdings
            .into_iter()
            .map(|holding| (holding.item_code, holding.quantity))
            .collect())
    }
}

/// One reward payment: `amount` of `asset` to `user`, under `key`.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub user: &'a str,
    pub asset: &'a str,
    pub amount: i64,
    pub code: &'a str,
    pub key: &'a str,
}

/// Units of an item added to or removed from a user's holdings, under `key`.
#[derive(Debug, Clone)]
pub struct HoldingChange<'a> {
    pub user: &'a str,
    pub item: &'a str,
    pub quantity: i64,
    pub key: String,
}
