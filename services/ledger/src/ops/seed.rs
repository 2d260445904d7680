//! `phoenix seed ledger`: demo data (the seed's `008_seed_data.sql`) through the public API —
//! a tenant, an issuer and user wallets in BESITOS and XP, grants and a purchase, a pending
//! reservation, a policy, inventory with a reservation, and the items users own; each of which
//! appends its events. Running it again changes
//! nothing: the tenant's slug says it is already there.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_proto::ledger::v1::policy_service_client::PolicyServiceClient;
use phoenix_proto::ledger::v1::stock_service_client::StockServiceClient;
use tonic::transport::Channel;

/// Slug of the demo tenant.
pub const DEMO_TENANT: &str = "demo";

/// What the seed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeded {
    Created {
        tenant_id: String,
        accounts: usize,
        transfers: usize,
    },
    AlreadyThere {
        tenant_id: String,
    },
}

pub async fn run(channel: Channel) -> anyhow::Result<Seeded> {
    let mut ledger = LedgerServiceClient::new(channel.clone());
    let key = |what: &str| format!("seed/{DEMO_TENANT}/{what}");
    let tenants = ledger
        .list_tenants(pb::ListTenantsRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .tenants;
    if let Some(tenant) = tenants.into_iter().find(|t| t.slug == DEMO_TENANT) {
        return Ok(Seeded::AlreadyThere {
            tenant_id: tenant.id,
        });
    }
    let tenant_id = ledger
        .create_tenant(pb::CreateTenantRequest {
            slug: DEMO_TENANT.into(),
            name: "Demo tenant".into(),
            idempotency_key: key("tenant"),
        })
        .await?
        .into_inner()
        .tenant
        .map(|t| t.id)
        .unwrap_or_default();

    let open = |owner: &'static str, asset: &'static str, limit: pb::BalanceLimit| {
        let mut ledger = ledger.clone();
        let tenant_id = tenant_id.clone();
        async move {
            let account = ledger
                .create_account(pb::CreateAccountRequest {
                    tenant_id,
                    asset_code: asset.into(),
                    asset_scale: 0,
                    owner_ref: owner.into(),
                    kind: if owner == "system" {
                        "issuer".into()
                    } else {
                        "wallet".into()
                    },
                    balance_limit: limit.into(),
                    metadata: Default::default(),
                    idempotency_key: format!("seed/{DEMO_TENANT}/account/{owner}/{asset}"),
                })
                .await?
                .into_inner()
                .account
                .ok_or_else(|| anyhow::anyhow!("no account in the answer"))?;
            anyhow::Ok(account.id)
        }
    };
    let issuer = open("system", "BESITOS", pb::BalanceLimit::None).await?;
    let xp_issuer = open("system", "XP", pb::BalanceLimit::None).await?;
    let mut wallets = Vec::new();
    for user in ["user-ana", "user-ben", "user-carla"] {
        wallets.push((
            open(
                user,
                "BESITOS",
                pb::BalanceLimit::DebitsMustNotExceedCredits,
            )
            .await?,
            open(user, "XP", pb::BalanceLimit::DebitsMustNotExceedCredits).await?,
        ));
    }
    let shop = open("shop", "BESITOS", pb::BalanceLimit::None).await?;

    let transfer = |debit: &str, credit: &str, amount: i64, code: &str| pb::TransferSpec {
        debit_account_id: debit.to_owned(),
        credit_account_id: credit.to_owned(),
        amount,
        code: code.to_owned(),
        ..Default::default()
    };
    let mut grants = Vec::new();
    for (index, (besitos, xp)) in wallets.iter().enumerate() {
        let amount = 500 * (i64::try_from(index).unwrap_or(0) + 1);
        grants.push(transfer(&issuer, besitos, amount, "welcome_bonus"));
        grants.push(transfer(&xp_issuer, xp, 120, "first_mission"));
    }
    grants.push(transfer(&wallets[0].0, &shop, 150, "purchase"));
    let transfers = grants.len();
    ledger
        .create_transfers(pb::CreateTransfersRequest {
            tenant_id: tenant_id.clone(),
            transfers: grants,
            mode: pb::BatchMode::Linked.into(),
            idempotency_key: key("grants"),
        })
        .await?;
    ledger
        .create_transfer(pb::CreateTransferRequest {
            tenant_id: tenant_id.clone(),
            transfer: Some(pb::TransferSpec {
                pending: true,
                ..transfer(&wallets[1].0, &shop, 200, "vip_reservation")
            }),
            idempotency_key: key("reservation"),
        })
        .await?;
    let mut stock = StockServiceClient::new(channel.clone());
    for (sku, name, on_hand) in [
        ("ACME-WIDGET-001", "Widget", 100),
        ("AMULET-FOCUS", "Amulet of focus", 25),
        ("AURA-GOLD", "Golden aura", 10),
    ] {
        stock
            .create_inventory_item(pb::CreateInventoryItemRequest {
                tenant_id: tenant_id.clone(),
                sku: sku.into(),
                name: name.into(),
                on_hand,
                idempotency_key: key(&format!("item/{sku}")),
            })
            .await?;
    }
    stock
        .reserve_stock(pb::ReserveStockRequest {
            tenant_id: tenant_id.clone(),
            sku: "ACME-WIDGET-001".into(),
            quantity: 10,
            expected_version: None,
            ttl: Some(prost_types::Duration {
                seconds: 24 * 3600,
                nanos: 0,
            }),
            reference: "order-1".into(),
            idempotency_key: key("reservation/order-1"),
        })
        .await?;
    for (owner, item, quantity) in [
        ("user-ana", "AMULET-FOCUS", 1),
        ("user-ben", "AURA-GOLD", 2),
    ] {
        stock
            .add_holding(pb::AddHoldingRequest {
                tenant_id: tenant_id.clone(),
                owner_ref: owner.into(),
                item_code: item.into(),
                quantity,
                idempotency_key: key(&format!("holding/{owner}/{item}")),
            })
            .await?;
    }
    PolicyServiceClient::new(channel)
        .set_policy(pb::SetPolicyRequest {
            tenant_id: tenant_id.clone(),
            kind: pb::PolicyKind::MaxTransferAmount.into(),
            asset_code: "BESITOS".into(),
            limit: 10_000,
            idempotency_key: key("policy"),
        })
        .await?;
    Ok(Seeded::Created {
        tenant_id,
        accounts: 2 + wallets.len() * 2 + 1,
        transfers: transfers + 1,
    })
}
