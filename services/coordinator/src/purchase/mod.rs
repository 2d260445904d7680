//! Purchase (seed 001's `PurchaseSaga`): buy units of a ledger shop item as a durable saga.
//!
//! The use case resolves what the purchase acts on before any saga starts: the user (the
//! directory, strictly: never on stale data), the shop item with its price, stock item, revenue
//! account and unlocks (the ledger's ShopService), and the user's wallet in the price's asset
//! (the ledger account of owner `<user id>`, kind `wallet`). What cannot be bought at all is
//! refused as an error then; the resolved [`PurchasePlan`] is the saga's input, so a recovered
//! saga acts on exactly what the caller saw. The saga itself ([`saga`]) is where stock and money
//! can run out: those refusals compensate and are answered as `success: false`.
//!
//! The caller's key names the saga: the engine answers a retry with the first saga's outcome and
//! refuses the same key with another request (`IDEMPOTENCY_KEY_REUSED`), fingerprinting the
//! protobuf request, not the plan, so a replay is recognised even if the item's price changed.

pub mod api;
pub mod bench;
pub mod fixture;
pub mod participants;
pub mod saga;

use phoenix_directory_client::{DirectoryClient, Outage};
use phoenix_proto::ledger::v1 as ledger;
use phoenix_runtime::{Error, Refusal, RemoteError, quote};
use uuid::Uuid;

use self::participants::{Participants, PurchasePlan};
use self::saga::{Held, Pending, Reserved, Unlocked, steps};
use crate::saga::{SagaEngine, SagaOutcome, SagaRequest};

pub use self::participants::HOLD_FOR;

/// Kind of the ledger account a buyer pays from.
pub const WALLET_KIND: &str = "wallet";

/// A purchase as the API validated it.
#[derive(Debug, Clone)]
pub struct PurchaseOrder {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub shop_item_id: String,
    pub quantity: i64,
    pub idempotency_key: String,
}

/// The purchase use case: the saga engine and what resolves an order.
#[derive(Debug, Clone)]
pub struct Purchases {
    pub engine: SagaEngine,
    pub planner: Planner,
}

/// Resolves orders into plans: the participants' clients and the directory.
#[derive(Debug, Clone)]
pub struct Planner {
    pub participants: Participants,
    pub directory: DirectoryClient,
}

impl Purchases {
    /// Resolves the order into a plan and runs its saga under the caller's key; `fingerprint`
    /// is the caller's request as sent.
    pub async fn purchase(
        &self,
        order: PurchaseOrder,
        fingerprint: &impl prost::Message,
    ) -> Result<SagaOutcome, Error> {
        let plan = self.planner.plan(&order).await?;
        let request = SagaRequest::new(saga::SAGA_TYPE, &order.idempotency_key, &plan)?
            .user(order.user_id.to_string())
            .fingerprint_of(fingerprint);
        self.engine.run(request).await
    }
}

impl Planner {
    /// What the purchase acts on; refused when it cannot be bought at all. The three lookups
    /// (user, shop item, the user's accounts) go out together; their refusals are answered in
    /// that order.
    pub async fn plan(&self, order: &PurchaseOrder) -> Result<PurchasePlan, Error> {
        let tenant_id = order.tenant_id.to_string();
        let (user, item, accounts) = tokio::join!(
            self.directory.user(order.user_id, Outage::Strict),
            self.shop_item(&tenant_id, &order.shop_item_id),
            self.accounts(&tenant_id, order.user_id),
        );
        if user?.is_none() {
            return Err(Refusal::not_found(
                "USER_NOT_FOUND",
                format!("the directory has no user {}", order.user_id),
            )
            .at("user_id")
            .with("user_id", order.user_id)
            .into());
        }
        let item = item?;
        if !item.available {
            return Err(Refusal::precondition(
                "SHOP_ITEM_UNAVAILABLE",
                format!(
                    "shop item {} is not for sale now",
                    quote(&item.shop_item_id)
                ),
            )
            .at("shop_item_id")
            .with("shop_item_id", &item.shop_item_id)
            .into());
        }
        let price = item.price.ok_or_else(|| missing_field("ShopItem.price"))?;
        let amount = price.amount.checked_mul(order.quantity).ok_or_else(|| {
            Refusal::invalid(
                "quantity",
                "PRICE_OVERFLOW",
                format!(
                    "{} units at {} each do not fit in 64 bits",
                    order.quantity, price.amount
                ),
            )
        })?;
        let wallet = accounts?
            .into_iter()
            .find(|a| a.asset_code == price.asset_code && a.kind == WALLET_KIND)
            .map(|a| a.id)
            .ok_or_else(|| {
                Refusal::precondition(
                    "WALLET_NOT_FOUND",
                    format!(
                        "user {} has no {} wallet to pay with",
                        order.user_id,
                        quote(&price.asset_code)
                    ),
                )
                .at("user_id")
                .with("user_id", order.user_id)
                .with("asset_code", &price.asset_code)
            })?;
        let unlocks = item.unlocks.unwrap_or_default();
        Ok(PurchasePlan {
            tenant_id,
            user_id: order.user_id.to_string(),
            shop_item_id: item.shop_item_id,
            quantity: order.quantity,
            sku: item.sku,
            asset_code: price.asset_code,
            amount,
            wallet_account_id: wallet,
            revenue_account_id: item.revenue_account_id,
            fragment_ids: unlocks.fragment_ids,
            experience_ids: unlocks.experience_ids,
        })
    }

    async fn shop_item(
        &self,
        tenant_id: &str,
        shop_item_id: &str,
    ) -> Result<ledger::ShopItem, Error> {
        self.participants
            .shop
            .clone()
            .get_shop_item(ledger::GetShopItemRequest {
                tenant_id: tenant_id.to_owned(),
                shop_item_id: shop_item_id.to_owned(),
            })
            .await
            .map_err(|status| peer_error("ledger", &status))?
            .into_inner()
            .item
            .ok_or_else(|| missing_field("GetShopItemResponse.item"))
    }

    /// The user's ledger accounts (their wallet is among them, if they have one).
    async fn accounts(
        &self,
        tenant_id: &str,
        user_id: Uuid,
    ) -> Result<Vec<ledger::Account>, Error> {
        Ok(self
            .participants
            .ledger
            .clone()
            .list_accounts(ledger::ListAccountsRequest {
                tenant_id: tenant_id.to_owned(),
                owner_ref: user_id.to_string(),
            })
            .await
            .map_err(|status| peer_error("ledger", &status))?
            .into_inner()
            .accounts)
    }
}

/// What a completed purchase did, from its steps' outputs (a replay's too: they are the first
/// saga's, whatever the shop says now).
pub fn receipt(outcome: &SagaOutcome) -> Result<Receipt, Error> {
    let reserved: Reserved = outcome.output(steps::RESERVE_STOCK)?;
    let pending: Pending = outcome.output(steps::PENDING_TRANSFER)?;
    let held: Held = outcome.output(steps::ADD_HOLDING)?;
    let fragments: Unlocked = outcome.output(steps::UNLOCK_FRAGMENTS)?;
    let experiences: Unlocked = outcome.output(steps::UNLOCK_EXPERIENCES)?;
    Ok(Receipt {
        reservation_id: reserved.reservation_id,
        transfer_id: pending.transfer_id,
        amount: pending.amount,
        asset_code: pending.asset_code,
        item_code: held.item_code,
        holding_quantity: held.quantity,
        unlocked_fragment_ids: fragments.ids,
        unlocked_experience_ids: experiences.ids,
    })
}

/// The ids and counts a completed purchase's steps answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub reservation_id: String,
    pub transfer_id: String,
    pub amount: i64,
    pub asset_code: String,
    pub item_code: String,
    pub holding_quantity: i64,
    pub unlocked_fragment_ids: Vec<String>,
    pub unlocked_experience_ids: Vec<String>,
}

/// A participant's error on a lookup: its refusal passed on as ours (same code, reason and
/// fields), anything else UNAVAILABLE naming the participant.
pub fn peer_error(service: &'static str, status: &tonic::Status) -> Error {
    let remote = RemoteError::from_status(status);
    match remote.refusal() {
        Some(refusal) => refusal.into(),
        None => Error::unavailable(
            "PARTICIPANT_UNAVAILABLE",
            format!(
                "the {service} cannot answer now ({:?}: {}); retry",
                remote.code, remote.message
            ),
            remote.retry_delay,
        ),
    }
}

fn missing_field(field: &str) -> Error {
    Error::invariant(
        "PARTICIPANT_ANSWER_COMPLETE",
        format!("the ledger answered without {field}"),
    )
}
