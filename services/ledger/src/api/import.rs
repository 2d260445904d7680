//! FirebaseImportService: the Firebase import's RPCs.

use chrono::Utc;
use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::firebase_import_service_server::FirebaseImportService;
use tonic::{Request, Response, Status};

use super::{Ledger, invalid, page_size, request_key, tenant_of, uuid_field};
use crate::domain::Refusal;
use crate::domain::import::{self, IncomingRecord, Origin, RecordContent, SourceCollection};
use crate::store;

/// Rejected records in the report FinishImportBatch answers with.
const FINISH_REJECTED_PAGE: i64 = 100;

#[tonic::async_trait]
impl FirebaseImportService for Ledger {
    async fn start_import_batch(
        &self,
        request: Request<pb::StartImportBatchRequest>,
    ) -> Result<Response<pb::StartImportBatchResponse>, Status> {
        let req = request.get_ref();
        let tenant = tenant_of(&request, &req.tenant_id)?;
        let source_name = import::source_name(&req.source_name).map_err(|r| invalid(vec![r]))?;
        let key = request_key(
            tenant,
            &req.idempotency_key,
            "FirebaseImportService/StartImportBatch",
            req,
        )?;
        let batch = store::once(&self.pool, &key, self.settings.idempotency_ttl, |conn| {
            Box::pin(
                async move { store::import::start(conn, tenant, &source_name, Utc::now()).await },
            )
        })
        .await?;
        tracing::info!(batch_id = %batch.id, source = %batch.source_name, "import batch started");
        Ok(Response::new(pb::StartImportBatchResponse {
            batch: Some(crate::proto::import_batch(&batch)),
        }))
    }

    async fn import_records(
        &self,
        request: Request<pb::ImportRecordsRequest>,
    ) -> Result<Response<pb::ImportRecordsResponse>, Status> {
        let req = request.get_ref();
        let tenant = tenant_of(&request, &req.tenant_id)?;
        let batch_id = uuid_field("batch_id", &req.batch_id)?;
        let records = incoming(&req.records).map_err(invalid)?;
        import::check_call(&records).map_err(invalid)?;
        let key = request_key(
            tenant,
            &req.idempotency_key,
            "FirebaseImportService/ImportRecords",
            req,
        )?;
        let plan = import::plan(&records);
        let outcome = store::once(&self.pool, &key, self.settings.idempotency_ttl, |conn| {
            Box::pin(async move {
                store::import::import_records(conn, tenant, batch_id, plan, Utc::now()).await
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
        Ok(Response::new(pb::ImportRecordsResponse {
            inserted_count: outcome.inserted,
            duplicate_count: outcome.duplicates,
            quarantined_count: outcome.quarantined,
            rejected: outcome
                .rejected
                .iter()
                .map(crate::proto::rejected_record)
                .collect(),
            batch: Some(crate::proto::import_batch(&outcome.batch)),
        }))
    }

    async fn finish_import_batch(
        &self,
        request: Request<pb::FinishImportBatchRequest>,
    ) -> Result<Response<pb::FinishImportBatchResponse>, Status> {
        let req = request.get_ref();
        let tenant = tenant_of(&request, &req.tenant_id)?;
        let batch_id = uuid_field("batch_id", &req.batch_id)?;
        let sources: Vec<SourceCollection> = req
            .sources
            .iter()
            .map(|s| SourceCollection {
                collection: s.collection.clone(),
                document_count: s.document_count,
                checksum: s.checksum.clone(),
            })
            .collect();
        import::check_sources(&sources).map_err(invalid)?;
        let key = request_key(
            tenant,
            &req.idempotency_key,
            "FirebaseImportService/FinishImportBatch",
            req,
        )?;
        let report = store::once(&self.pool, &key, self.settings.idempotency_ttl, |conn| {
            Box::pin(async move {
                store::import::finish(
                    conn,
                    tenant,
                    batch_id,
                    &sources,
                    FINISH_REJECTED_PAGE,
                    Utc::now(),
                )
                .await
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
        Ok(Response::new(pb::FinishImportBatchResponse {
            report: Some(crate::proto::import_report(&report)),
        }))
    }

    async fn get_import_report(
        &self,
        request: Request<pb::GetImportReportRequest>,
    ) -> Result<Response<pb::GetImportReportResponse>, Status> {
        let req = request.get_ref();
        let tenant = tenant_of(&request, &req.tenant_id)?;
        let batch_id = uuid_field("batch_id", &req.batch_id)?;
        let size = page_size(req.page_size, 100, 1000)?;
        let after = match req.page_token.as_str() {
            "" => 0,
            token => token
                .parse::<i64>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    invalid(vec![Refusal::invalid(
                        "page_token",
                        "INVALID_PAGE_TOKEN",
                        "must be the next_page_token of a previous page",
                    )])
                })?,
        };
        let report = store::import::report(&self.pool, tenant, batch_id, after, size).await?;
        Ok(Response::new(pb::GetImportReportResponse {
            report: Some(crate::proto::import_report(&report)),
        }))
    }
}

/// The records of a call in domain terms; a record without content is a malformed request.
fn incoming(records: &[pb::ImportRecord]) -> Result<Vec<IncomingRecord>, Vec<Refusal>> {
    let mut refusals = Vec::new();
    let mut incoming = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let content = match &record.content {
            Some(pb::import_record::Content::Document(document)) => RecordContent::Document {
                collection: document.collection.clone(),
                document_id: document.document_id.clone(),
                json: document.json.clone(),
            },
            Some(pb::import_record::Content::NdjsonLine(line)) => {
                match String::from_utf8(line.clone()) {
                    Ok(line) => RecordContent::NdjsonLine(line),
                    Err(error) => RecordContent::Undecodable {
                        lossy: String::from_utf8_lossy(line).into_owned(),
                        error: error.utf8_error().to_string(),
                    },
                }
            }
            None => {
                refusals.push(Refusal::invalid(
                    &format!("records[{index}].content"),
                    "NO_CONTENT",
                    "is required: a document or an NDJSON line",
                ));
                continue;
            }
        };
        incoming.push(IncomingRecord {
            origin: Origin {
                source_file: record.source_file.clone(),
                line_number: record.line_number,
            },
            content,
        });
    }
    if refusals.is_empty() {
        Ok(incoming)
    } else {
        Err(refusals)
    }
}
