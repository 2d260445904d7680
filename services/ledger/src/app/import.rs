//! The Firebase import: a batch is started, takes records call by call (each document imported
//! once, whatever is turned away quarantined with its reason), and is finished with what the
//! client read, which the database side is reconciled with.

use chrono::Utc;
use phoenix_runtime::idempotency::RequestKey;
use phoenix_runtime::{Error, quote};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Ledger;
use super::tenants::existing_tenant;
use crate::domain::import::{
    self, BatchStatus, Collection, ImportBatch, ImportOutcome, ImportReport, IncomingRecord,
    Planned, Quarantined, RejectedRecord, SourceCollection,
};
use crate::store::import::Counts;
use crate::{error, store};

/// Most stale batches failed per sweep.
const STALE_BATCH: i64 = 100;

/// Rejected records in the report FinishImportBatch answers with.
const FINISH_REJECTED_PAGE: i64 = 100;

impl Ledger {
    /// Opens a batch once per key.
    pub async fn start_import(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        source_name: String,
    ) -> Result<ImportBatch, Error> {
        let batch: ImportBatch = self
            .once(key, move |c| {
                Box::pin(async move {
                    existing_tenant(&mut *c, tenant_id).await?;
                    store::import::insert_batch(c, tenant_id, &source_name, Utc::now()).await
                })
            })
            .await?;
        tracing::info!(batch_id = %batch.id, source = %batch.source_name, "import batch started");
        Ok(batch)
    }

    /// Imports one call's records into a running batch, once per key: documents not there yet
    /// are inserted, those already imported with the same content are duplicates, and the rest
    /// are quarantined with their reason.
    pub async fn import_into(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        batch_id: Uuid,
        records: Vec<IncomingRecord>,
    ) -> Result<ImportOutcome, Error> {
        let plan = import::plan(&records);
        let outcome: ImportOutcome = self
            .once(key, move |c| {
                Box::pin(async move {
                    running_batch(c, tenant_id, batch_id).await?;
                    let now = Utc::now();
                    let mut counts = Counts {
                        inserted: 0,
                        duplicates: plan.repeats,
                        quarantined: 0,
                    };
                    let mut quarantined = plan.quarantined;
                    for collection in Collection::ALL {
                        let mut documents: Vec<&Planned> = plan
                            .documents
                            .iter()
                            .filter(|p| p.document.collection == collection)
                            .collect();
                        // Rows are locked in id order, so concurrent imports of overlapping
                        // ids queue rather than deadlock.
                        documents.sort_by(|a, b| a.document.id.cmp(&b.document.id));
                        if documents.is_empty() {
                            continue;
                        }
                        let turned_away = import_collection(
                            c,
                            tenant_id,
                            batch_id,
                            collection,
                            &documents,
                            &mut counts,
                            now,
                        )
                        .await?;
                        quarantined.extend(turned_away);
                    }
                    quarantined.sort_by_key(|(index, _)| *index);
                    let quarantined: Vec<Quarantined> =
                        quarantined.into_iter().map(|(_, q)| q).collect();
                    store::import::insert_quarantine(c, tenant_id, batch_id, &quarantined, now)
                        .await?;
                    counts.quarantined = i64::try_from(quarantined.len()).unwrap_or(i64::MAX);
                    let batch =
                        store::import::add_counts(c, tenant_id, batch_id, counts, now).await?;
                    Ok(ImportOutcome {
                        inserted: counts.inserted,
                        duplicates: counts.duplicates,
                        quarantined: counts.quarantined,
                        rejected: quarantined.iter().map(RejectedRecord::new).collect(),
                        batch,
                    })
                })
            })
            .await?;
        tracing::debug!(
            %batch_id,
            inserted = outcome.inserted,
            duplicates = outcome.duplicates,
            quarantined = outcome.quarantined,
            "import records applied"
        );
        Ok(outcome)
    }

    /// Closes a running batch once per key with the client's declaration: COMPLETED when every
    /// collection matches, FAILED with the reasons otherwise. Answers the report with the
    /// first page of rejected records.
    pub async fn finish_import(
        &self,
        key: &RequestKey,
        tenant_id: Uuid,
        batch_id: Uuid,
        sources: Vec<SourceCollection>,
    ) -> Result<ImportReport, Error> {
        let report: ImportReport = self
            .once(key, move |c| {
                Box::pin(async move {
                    let now = Utc::now();
                    running_batch(c, tenant_id, batch_id).await?;
                    store::import::insert_sources(c, tenant_id, batch_id, &sources).await?;
                    let held = store::import::database_side(c, tenant_id, batch_id).await?;
                    let collections = import::reconcile(Some(&sources), &held);
                    let (status, failure) = match import::verdict(&collections) {
                        Ok(()) => (BatchStatus::Completed, None),
                        Err(failure) => (BatchStatus::Failed, Some(failure)),
                    };
                    let matches = collections.iter().all(|c| c.matches);
                    let batch = store::import::close(
                        c,
                        tenant_id,
                        batch_id,
                        status,
                        failure.as_deref(),
                        matches,
                        now,
                    )
                    .await?;
                    let (rejected, next_after) = store::import::rejected_records(
                        c,
                        tenant_id,
                        batch_id,
                        0,
                        FINISH_REJECTED_PAGE,
                    )
                    .await?;
                    Ok(ImportReport {
                        rejected_count: batch.quarantined,
                        batch,
                        collections,
                        rejected,
                        next_after,
                    })
                })
            })
            .await?;
        tracing::info!(
            %batch_id,
            status = report.batch.status.as_str(),
            inserted = report.batch.inserted,
            duplicates = report.batch.duplicates,
            quarantined = report.batch.quarantined,
            "import batch finished"
        );
        Ok(report)
    }

    /// Fails, as stale, every running batch that took no call for `import_stale_after` before
    /// `now` (its client stopped), so no batch stays RUNNING for ever; answers how many. A
    /// rerun of the import starts a new batch, and what the stale one imported is found there
    /// as duplicates.
    pub async fn fail_stale_imports(&self, now: chrono::DateTime<Utc>) -> Result<u64, Error> {
        let stale_after = self.settings().import_stale_after;
        let before =
            now - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::hours(1));
        let mut transaction = self.pool().begin().await?;
        let stale = store::import::stale_batches(&mut transaction, before, STALE_BATCH).await?;
        let reason = format!(
            "STALE: no call for more than {}; the client stopped before finishing the batch. \
             Rerun the import: documents this batch imported are found as duplicates",
            humantime::format_duration(stale_after)
        );
        for (tenant_id, batch_id) in &stale {
            store::import::close(
                &mut transaction,
                *tenant_id,
                *batch_id,
                BatchStatus::Failed,
                Some(&reason),
                false,
                now,
            )
            .await?;
            tracing::warn!(%batch_id, "import batch failed as stale");
        }
        transaction.commit().await?;
        Ok(stale.len() as u64)
    }

    /// The report of a batch as it stands, with the page of rejected records after `after`.
    pub async fn import_report(
        &self,
        tenant_id: Uuid,
        batch_id: Uuid,
        after: i64,
        page_size: i64,
    ) -> Result<ImportReport, Error> {
        let parts = store::import::report_parts(&self.pool, tenant_id, batch_id, after, page_size)
            .await?
            .ok_or_else(|| error::import_batch_not_found(batch_id))?;
        Ok(ImportReport {
            rejected_count: parts.batch.quarantined,
            collections: import::reconcile(parts.sources.as_deref(), &parts.held),
            batch: parts.batch,
            rejected: parts.rejected,
            next_after: parts.next_after,
        })
    }
}

/// The batch, locked for the transaction, if it is still running.
async fn running_batch(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
) -> Result<ImportBatch, Error> {
    let batch = store::import::lock(connection, tenant_id, batch_id)
        .await?
        .ok_or_else(|| error::import_batch_not_found(batch_id))?;
    batch.require_running()?;
    Ok(batch)
}

/// Imports the documents of one collection (sorted by id): inserts the new ones, counts those
/// already there with the same content as duplicates and answers the others, turned away with
/// where they were in the call.
async fn import_collection(
    connection: &mut PgConnection,
    tenant_id: Uuid,
    batch_id: Uuid,
    collection: Collection,
    documents: &[&Planned],
    counts: &mut Counts,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<(usize, Quarantined)>, Error> {
    let new_ids = store::import::insert_documents(
        &mut *connection,
        tenant_id,
        batch_id,
        collection,
        documents,
        now,
    )
    .await?;
    let others: Vec<&Planned> = documents
        .iter()
        .copied()
        .filter(|p| !new_ids.contains(p.document.id.as_str()))
        .collect();
    let existing =
        store::import::compare_existing(&mut *connection, tenant_id, collection, &others).await?;
    let mut found = Vec::new();
    let mut turned_away = Vec::new();
    for planned in others {
        match existing.get(planned.document.id.as_str()) {
            Some((true, _)) => found.push(planned),
            Some((false, first_batch)) => {
                turned_away.push((planned.index, import::conflicting(planned, *first_batch)));
            }
            // Every id not inserted conflicted with a row, and rows are never deleted.
            None => {
                return Err(Error::invariant(
                    "IMPORTED_DOCUMENT_FOUND",
                    format!(
                        "{} {} was neither inserted nor found imported",
                        collection.name(),
                        quote(planned.document.id.as_str())
                    ),
                ));
            }
        }
    }
    counts.inserted += i64::try_from(new_ids.len()).unwrap_or(i64::MAX);
    counts.duplicates += i64::try_from(found.len()).unwrap_or(i64::MAX);
    let mut read: Vec<(&str, &str)> = new_ids.iter().map(|id| (id.as_str(), "INSERTED")).collect();
    read.extend(
        found
            .iter()
            .map(|p| (p.document.id.as_str(), "ALREADY_PRESENT")),
    );
    store::import::record_read(connection, tenant_id, batch_id, collection, &read).await?;
    Ok(turned_away)
}
