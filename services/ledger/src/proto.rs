//! Domain → protobuf conversions, shared by the API (responses) and the event store (payloads).

use phoenix_proto::ledger::v1 as pb;

use crate::domain::import::{
    BatchStatus, CollectionReport, ImportBatch, ImportReport, RejectedRecord,
};
use crate::domain::ledger::{
    Account, BalanceLimit, Balances, PendingState, Transfer, TransferKind,
};
use crate::domain::policy::{Policy, PolicyKind};
use crate::domain::tenant::Tenant;

pub use phoenix_runtime::convert::timestamp;

pub fn tenant(tenant: &Tenant) -> pb::Tenant {
    pb::Tenant {
        id: tenant.id.to_string(),
        slug: tenant.slug.clone(),
        name: tenant.name.clone(),
        create_time: Some(timestamp(tenant.created_at)),
    }
}

pub fn balance(balances: &Balances) -> pb::Balance {
    pb::Balance {
        debits_posted: balances.debits_posted,
        credits_posted: balances.credits_posted,
        debits_pending: balances.debits_pending,
        credits_pending: balances.credits_pending,
        posted: balances.posted(),
        pending: balances.pending(),
        available: balances.available(),
    }
}

pub fn balance_limit(limit: BalanceLimit) -> pb::BalanceLimit {
    match limit {
        BalanceLimit::None => pb::BalanceLimit::None,
        BalanceLimit::DebitsMustNotExceedCredits => pb::BalanceLimit::DebitsMustNotExceedCredits,
        BalanceLimit::CreditsMustNotExceedDebits => pb::BalanceLimit::CreditsMustNotExceedDebits,
    }
}

pub fn account(account: &Account) -> pb::Account {
    pb::Account {
        id: account.id.to_string(),
        tenant_id: account.tenant_id.to_string(),
        asset_code: account.asset_code.clone(),
        asset_scale: u32::try_from(account.asset_scale).unwrap_or(0),
        owner_ref: account.owner_ref.clone(),
        kind: account.kind.clone(),
        balance_limit: balance_limit(account.balance_limit).into(),
        metadata: account.metadata.clone(),
        balance: Some(balance(&account.balances)),
        version: account.entry_version,
        create_time: Some(timestamp(account.created_at)),
    }
}

pub fn transfer_kind(kind: TransferKind) -> pb::TransferKind {
    match kind {
        TransferKind::Posted => pb::TransferKind::Posted,
        TransferKind::Pending => pb::TransferKind::Pending,
        TransferKind::PostPending => pb::TransferKind::PostPending,
        TransferKind::VoidPending => pb::TransferKind::VoidPending,
        TransferKind::ExpirePending => pb::TransferKind::ExpirePending,
    }
}

fn pending_state(state: Option<PendingState>) -> pb::PendingState {
    match state {
        None => pb::PendingState::Unspecified,
        Some(PendingState::Open) => pb::PendingState::Open,
        Some(PendingState::Posted) => pb::PendingState::Posted,
        Some(PendingState::Voided) => pb::PendingState::Voided,
        Some(PendingState::Expired) => pb::PendingState::Expired,
    }
}

pub fn transfer(transfer: &Transfer) -> pb::Transfer {
    let id = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    pb::Transfer {
        id: transfer.id.to_string(),
        tenant_id: transfer.tenant_id.to_string(),
        kind: transfer_kind(transfer.kind).into(),
        debit_account_id: transfer.debit_account_id.to_string(),
        credit_account_id: transfer.credit_account_id.to_string(),
        amount: transfer.amount,
        asset_code: transfer.asset_code.clone(),
        pending_id: id(transfer.pending_id),
        reversal_of: id(transfer.reversal_of),
        expire_time: transfer.expires_at.map(timestamp),
        pending_state: pending_state(transfer.pending_state).into(),
        code: transfer.code.clone(),
        metadata: transfer.metadata.clone(),
        batch_id: transfer.batch_id.to_string(),
        create_time: Some(timestamp(transfer.created_at)),
    }
}

pub fn policy_kind(kind: PolicyKind) -> pb::PolicyKind {
    match kind {
        PolicyKind::MaxTransferAmount => pb::PolicyKind::MaxTransferAmount,
        PolicyKind::MaxDailyDebits => pb::PolicyKind::MaxDailyDebits,
        PolicyKind::KillSwitch => pb::PolicyKind::KillSwitch,
    }
}

pub fn policy(policy: &Policy) -> pb::Policy {
    pb::Policy {
        id: policy.id.to_string(),
        tenant_id: policy.tenant_id.to_string(),
        kind: policy_kind(policy.kind).into(),
        asset_code: policy.asset_code.clone(),
        limit: policy.limit.unwrap_or(0),
        effective_time: Some(timestamp(policy.effective_from)),
        end_time: policy.effective_to.map(timestamp),
    }
}

// Stock and holdings.

pub fn inventory_item(item: &crate::domain::stock::InventoryItem) -> pb::InventoryItem {
    pb::InventoryItem {
        tenant_id: item.tenant_id.to_string(),
        sku: item.sku.clone(),
        name: item.name.clone(),
        on_hand: item.on_hand,
        reserved: item.reserved,
        available: item.available(),
        version: item.version,
        update_time: Some(timestamp(item.updated_at)),
    }
}

pub fn reservation_state(state: crate::domain::stock::ReservationState) -> pb::ReservationState {
    use crate::domain::stock::ReservationState as State;
    match state {
        State::Open => pb::ReservationState::Open,
        State::Committed => pb::ReservationState::Committed,
        State::Released => pb::ReservationState::Released,
        State::Expired => pb::ReservationState::Expired,
    }
}

pub fn reservation(reservation: &crate::domain::stock::Reservation) -> pb::Reservation {
    pb::Reservation {
        id: reservation.id.to_string(),
        tenant_id: reservation.tenant_id.to_string(),
        sku: reservation.sku.clone(),
        quantity: reservation.quantity,
        state: reservation_state(reservation.state).into(),
        reference: reservation.reference.clone(),
        expire_time: Some(timestamp(reservation.expires_at)),
        create_time: Some(timestamp(reservation.created_at)),
    }
}

pub fn holding(holding: &crate::domain::stock::Holding) -> pb::Holding {
    pb::Holding {
        tenant_id: holding.tenant_id.to_string(),
        owner_ref: holding.owner_ref.clone(),
        item_code: holding.item_code.clone(),
        quantity: holding.quantity,
        version: holding.version,
        update_time: Some(timestamp(holding.updated_at)),
    }
}

pub fn import_batch_status(status: BatchStatus) -> pb::ImportBatchStatus {
    match status {
        BatchStatus::Running => pb::ImportBatchStatus::Running,
        BatchStatus::Completed => pb::ImportBatchStatus::Completed,
        BatchStatus::Failed => pb::ImportBatchStatus::Failed,
    }
}

pub fn import_batch(batch: &ImportBatch) -> pb::ImportBatch {
    pb::ImportBatch {
        id: batch.id.to_string(),
        tenant_id: batch.tenant_id.to_string(),
        source_name: batch.source_name.clone(),
        status: import_batch_status(batch.status).into(),
        records_read: batch.records_read,
        inserted_count: batch.inserted,
        duplicate_count: batch.duplicates,
        quarantined_count: batch.quarantined,
        start_time: Some(timestamp(batch.started_at)),
        finish_time: batch.finished_at.map(timestamp),
        error: batch.error.clone().unwrap_or_default(),
    }
}

pub fn rejected_record(record: &RejectedRecord) -> pb::RejectedRecord {
    pb::RejectedRecord {
        source_file: record.origin.source_file.clone(),
        line_number: record.origin.line_number,
        collection: record.collection.clone(),
        document_id: record.document_id.clone().unwrap_or_default(),
        reason: record.reason.clone(),
        message: record.message.clone(),
        raw_excerpt: record.raw_excerpt.clone(),
    }
}

pub fn collection_report(report: &CollectionReport) -> pb::CollectionReport {
    pb::CollectionReport {
        collection: report.collection.clone(),
        source_count: report.source.as_ref().map_or(0, |s| s.document_count),
        source_checksum: report
            .source
            .as_ref()
            .map(|s| s.checksum.clone())
            .unwrap_or_default(),
        imported_count: report.database.imported_count,
        imported_checksum: report.database.imported_checksum.clone(),
        quarantined_count: report.database.quarantined_count,
        accounted_count: report.database.accounted_count,
        accounted_checksum: report.database.accounted_checksum.clone(),
        matches: report.matches,
    }
}

pub fn import_report(report: &ImportReport) -> pb::ImportReport {
    pb::ImportReport {
        batch: Some(import_batch(&report.batch)),
        collections: report.collections.iter().map(collection_report).collect(),
        matches: report.matches(),
        rejected_count: report.rejected_count,
        rejected: report.rejected.iter().map(rejected_record).collect(),
        next_page_token: report
            .next_after
            .map(|after| after.to_string())
            .unwrap_or_default(),
    }
}

// Shop.

pub fn shop_item(item: &crate::domain::shop::ShopItem) -> pb::ShopItem {
    let spec = &item.spec;
    pb::ShopItem {
        tenant_id: item.tenant_id.to_string(),
        shop_item_id: spec.shop_item_id.clone(),
        name: spec.name.clone(),
        price: Some(pb::Price {
            asset_code: spec.price.asset_code.clone(),
            amount: spec.price.amount,
        }),
        sku: spec.sku.clone(),
        revenue_account_id: spec.revenue_account_id.to_string(),
        unlocks: Some(pb::ShopItemUnlocks {
            fragment_ids: spec
                .unlocks
                .fragment_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
            experience_ids: spec
                .unlocks
                .experience_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
        }),
        available: spec.available,
        version: item.version,
        update_time: Some(timestamp(item.updated_at)),
    }
}
