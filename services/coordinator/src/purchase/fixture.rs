//! A shop set up over the participants' gRPC APIs: a ledger tenant with a revenue and an issuer
//! account, shop items with stock, and users of the directory with funded wallets. What the
//! Purchase tests and `phoenix bench sagas` buy from.

use phoenix_proto::directory::v1 as directory;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::shop_service_client::ShopServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use super::WALLET_KIND;

/// The asset shop prices are in.
pub const ASSET: &str = "BESITOS";

/// A tenant's shop on a ledger, and the directory its buyers are registered in.
#[derive(Debug, Clone)]
pub struct ShopFixture {
    pub tenant_id: String,
    pub revenue_account_id: String,
    pub issuer_account_id: String,
    pub ledger: LedgerServiceClient<Channel>,
    pub stock: StockServiceClient<Channel>,
    pub shop: ShopServiceClient<Channel>,
    pub directory: DirectoryServiceClient<Channel>,
}

/// A shop item to put on sale.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    pub shop_item_id: &'a str,
    pub sku: &'a str,
    pub on_hand: i64,
    pub price: i64,
    pub fragment_ids: Vec<String>,
    pub experience_ids: Vec<String>,
}

fn key() -> String {
    Uuid::new_v4().to_string()
}

impl ShopFixture {
    /// A new tenant `slug` with its revenue and issuer accounts in [`ASSET`].
    pub async fn open(ledger: Channel, directory: Channel, slug: &str) -> anyhow::Result<Self> {
        let mut fixture = Self {
            tenant_id: String::new(),
            revenue_account_id: String::new(),
            issuer_account_id: String::new(),
            ledger: LedgerServiceClient::new(ledger.clone()),
            stock: StockServiceClient::new(ledger.clone()),
            shop: ShopServiceClient::new(ledger),
            directory: DirectoryServiceClient::new(directory),
        };
        fixture.tenant_id = fixture
            .ledger
            .create_tenant(ledger::CreateTenantRequest {
                slug: slug.to_owned(),
                name: format!("Shop {slug}"),
                idempotency_key: key(),
            })
            .await?
            .into_inner()
            .tenant
            .ok_or_else(|| anyhow::anyhow!("no tenant answered"))?
            .id;
        fixture.revenue_account_id = fixture
            .account("shop", "revenue", ledger::BalanceLimit::None)
            .await?;
        fixture.issuer_account_id = fixture
            .account("shop", "issuer", ledger::BalanceLimit::None)
            .await?;
        Ok(fixture)
    }

    async fn account(
        &mut self,
        owner: &str,
        kind: &str,
        limit: ledger::BalanceLimit,
    ) -> anyhow::Result<String> {
        Ok(self
            .ledger
            .create_account(ledger::CreateAccountRequest {
                tenant_id: self.tenant_id.clone(),
                asset_code: ASSET.to_owned(),
                asset_scale: 0,
                owner_ref: owner.to_owned(),
                kind: kind.to_owned(),
                balance_limit: limit.into(),
                metadata: Default::default(),
                idempotency_key: key(),
            })
            .await?
            .into_inner()
            .account
            .ok_or_else(|| anyhow::anyhow!("no account answered"))?
            .id)
    }

    /// A user of the directory (`email` must be new); answers their id.
    pub async fn user(&mut self, email: &str) -> anyhow::Result<String> {
        Ok(self
            .directory
            .create_user(directory::CreateUserRequest {
                email: email.to_owned(),
                display_name: "Buyer".to_owned(),
                time_zone: "UTC".to_owned(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .user
            .ok_or_else(|| anyhow::anyhow!("no user answered"))?
            .id)
    }

    /// Opens `user_id`'s no-overdraft wallet in [`ASSET`] and credits it `amount` from the
    /// issuer; answers the wallet's id.
    pub async fn fund(&mut self, user_id: &str, amount: i64) -> anyhow::Result<String> {
        let wallet = self
            .account(
                user_id,
                WALLET_KIND,
                ledger::BalanceLimit::DebitsMustNotExceedCredits,
            )
            .await?;
        if amount > 0 {
            self.ledger
                .create_transfer(ledger::CreateTransferRequest {
                    tenant_id: self.tenant_id.clone(),
                    transfer: Some(ledger::TransferSpec {
                        debit_account_id: self.issuer_account_id.clone(),
                        credit_account_id: wallet.clone(),
                        amount,
                        ..Default::default()
                    }),
                    idempotency_key: key(),
                })
                .await?;
        }
        Ok(wallet)
    }

    /// Puts `on_hand` units of `sku` on sale as shop item `id` at `price`, unlocking nothing.
    pub async fn offer_plain(
        &mut self,
        id: &str,
        sku: &str,
        on_hand: i64,
        price: i64,
    ) -> anyhow::Result<ledger::ShopItem> {
        self.offer(Offer {
            shop_item_id: id,
            sku,
            on_hand,
            price,
            fragment_ids: Vec::new(),
            experience_ids: Vec::new(),
        })
        .await
    }

    /// Creates the offer's inventory item and puts it on sale.
    pub async fn offer(&mut self, offer: Offer<'_>) -> anyhow::Result<ledger::ShopItem> {
        self.stock
            .create_inventory_item(ledger::CreateInventoryItemRequest {
                tenant_id: self.tenant_id.clone(),
                sku: offer.sku.to_owned(),
                name: format!("Item {}", offer.sku),
                on_hand: offer.on_hand,
                idempotency_key: key(),
            })
            .await?;
        self.shop
            .upsert_shop_item(ledger::UpsertShopItemRequest {
                tenant_id: self.tenant_id.clone(),
                shop_item_id: offer.shop_item_id.to_owned(),
                name: format!("Offer {}", offer.shop_item_id),
                price: Some(ledger::Price {
                    asset_code: ASSET.to_owned(),
                    amount: offer.price,
                }),
                sku: offer.sku.to_owned(),
                revenue_account_id: self.revenue_account_id.clone(),
                unlocks: Some(ledger::ShopItemUnlocks {
                    fragment_ids: offer.fragment_ids,
                    experience_ids: offer.experience_ids,
                }),
                available: true,
                idempotency_key: key(),
            })
            .await?
            .into_inner()
            .item
            .ok_or_else(|| anyhow::anyhow!("no shop item answered"))
    }

    /// The balance of `account_id`.
    pub async fn balance(&mut self, account_id: &str) -> anyhow::Result<ledger::Balance> {
        self.ledger
            .get_account(ledger::GetAccountRequest {
                tenant_id: self.tenant_id.clone(),
                account_id: account_id.to_owned(),
            })
            .await?
            .into_inner()
            .account
            .and_then(|a| a.balance)
            .ok_or_else(|| anyhow::anyhow!("no balance answered for {account_id}"))
    }

    /// What `owner` holds: (item code, quantity).
    pub async fn holdings(&mut self, owner: &str) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(self
            .stock
            .list_holdings(ledger::ListHoldingsRequest {
                tenant_id: self.tenant_id.clone(),
                owner_ref: owner.to_owned(),
            })
            .await?
            .into_inner()
            .holdings
            .into_iter()
            .map(|h| (h.item_code, h.quantity))
            .collect())
    }
}
