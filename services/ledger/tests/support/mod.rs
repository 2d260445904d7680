//! What the ledger's integration tests share: a running service, clients and a tenant.
#![allow(dead_code)]

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::event_store_service_client::EventStoreServiceClient;
use phoenix_proto::ledger::v1::firebase_import_service_client::FirebaseImportServiceClient;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::policy_service_client::PolicyServiceClient;
use phoenix_testkit::TestService;
use tonic::transport::Channel;

pub struct Harness {
    pub service: TestService,
    pub ledger: LedgerServiceClient<Channel>,
    pub policies: PolicyServiceClient<Channel>,
    pub events: EventStoreServiceClient<Channel>,
    pub tenant: String,
}

impl Harness {
    /// A ledger service with one tenant.
    pub async fn start() -> Self {
        Self::on(phoenix_testkit::spawn(phoenix_ledger::spec()).await).await
    }

    pub async fn on(service: TestService) -> Self {
        let mut ledger = LedgerServiceClient::new(service.channel.clone());
        let tenant = create_tenant(&mut ledger, "acme").await;
        Self {
            policies: PolicyServiceClient::new(service.channel.clone()),
            events: EventStoreServiceClient::new(service.channel.clone()),
            ledger,
            service,
            tenant,
        }
    }

    /// An account of `owner` in `asset` (scale 0) with the given limit.
    pub async fn account(&mut self, owner: &str, asset: &str, limit: pb::BalanceLimit) -> String {
        let tenant = self.tenant.clone();
        open_account(&mut self.ledger, &tenant, owner, asset, limit).await
    }

    /// A no-overdraft wallet of `owner` funded with `amount` from an issuer account.
    pub async fn funded_wallet(&mut self, owner: &str, amount: i64) -> (String, String) {
        let issuer = self
            .account(
                &format!("issuer-{owner}"),
                "BESITOS",
                pb::BalanceLimit::None,
            )
            .await;
        let wallet = self
            .account(
                owner,
                "BESITOS",
                pb::BalanceLimit::DebitsMustNotExceedCredits,
            )
            .await;
        if amount > 0 {
            self.transfer(&issuer, &wallet, amount)
                .await
                .expect("funded");
        }
        (issuer, wallet)
    }

    pub async fn transfer(
        &mut self,
        debit: &str,
        credit: &str,
        amount: i64,
    ) -> Result<pb::Transfer, tonic::Status> {
        let request = pb::CreateTransferRequest {
            tenant_id: self.tenant.clone(),
            transfer: Some(spec(debit, credit, amount)),
            idempotency_key: key(),
        };
        self.ledger
            .create_transfer(request)
            .await
            .map(|r| r.into_inner().transfer.expect("transfer"))
    }

    /// A running import batch of the tenant.
    pub async fn import_batch(&self) -> String {
        FirebaseImportServiceClient::new(self.service.channel.clone())
            .start_import_batch(pb::StartImportBatchRequest {
                tenant_id: self.tenant.clone(),
                source_name: "export".into(),
                idempotency_key: key(),
            })
            .await
            .expect("a batch started")
            .into_inner()
            .batch
            .expect("batch")
            .id
    }

    pub async fn balance(&mut self, account: &str) -> pb::Balance {
        self.ledger
            .get_account(pb::GetAccountRequest {
                tenant_id: self.tenant.clone(),
                account_id: account.to_owned(),
            })
            .await
            .expect("account")
            .into_inner()
            .account
            .expect("account")
            .balance
            .expect("balance")
    }

    pub async fn entries(&mut self, account: &str) -> Vec<pb::Entry> {
        self.ledger
            .list_account_entries(pb::ListAccountEntriesRequest {
                tenant_id: self.tenant.clone(),
                account_id: account.to_owned(),
                page_size: 1000,
                page_token: String::new(),
            })
            .await
            .expect("entries")
            .into_inner()
            .entries
    }
}

pub async fn create_tenant(ledger: &mut LedgerServiceClient<Channel>, slug: &str) -> String {
    ledger
        .create_tenant(pb::CreateTenantRequest {
            slug: slug.to_owned(),
            name: format!("Tenant {slug}"),
            idempotency_key: key(),
        })
        .await
        .expect("tenant created")
        .into_inner()
        .tenant
        .expect("tenant")
        .id
}

pub async fn open_account(
    ledger: &mut LedgerServiceClient<Channel>,
    tenant: &str,
    owner: &str,
    asset: &str,
    limit: pb::BalanceLimit,
) -> String {
    ledger
        .create_account(pb::CreateAccountRequest {
            tenant_id: tenant.to_owned(),
            asset_code: asset.to_owned(),
            asset_scale: 0,
            owner_ref: owner.to_owned(),
            kind: "wallet".to_owned(),
            balance_limit: limit.into(),
            metadata: Default::default(),
            idempotency_key: key(),
        })
        .await
        .expect("account opened")
        .into_inner()
        .account
        .expect("account")
        .id
}

pub fn spec(debit: &str, credit: &str, amount: i64) -> pb::TransferSpec {
    pb::TransferSpec {
        debit_account_id: debit.to_owned(),
        credit_account_id: credit.to_owned(),
        amount,
        ..Default::default()
    }
}

/// A fresh idempotency key.
pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[allow(unused_imports)]
pub use phoenix_testkit::{assert_refused, error_of, field_reasons, fields, metadata, reason};

/// Rows of a table in the ledger schema (for "nothing was written" checks).
pub async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// A transaction holding `account`'s row lock, as a concurrent posting would: postings naming
/// the account wait until it ends.
pub async fn lock_account(
    pool: &sqlx::PgPool,
    account: &str,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = pool.begin().await.expect("a transaction");
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(account.parse::<uuid::Uuid>().expect("an account id"))
        .execute(&mut *holder)
        .await
        .expect("the account's lock");
    holder
}

/// Returns once a session of this database waits on a lock (a row lock is waited for on its
/// holder's transaction id, a lock of no database; `pg_locks` is the cluster's), or fails the
/// test after 10 s.
pub async fn until_a_lock_is_waited_for(pool: &sqlx::PgPool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE NOT granted AND pid IN (
                 SELECT pid FROM pg_stat_activity WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .expect("pg_locks");
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no session waited on a lock within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
