//! FirebaseImportService: the Firebase import's RPCs.

use phoenix_proto::ledger::v1 as pb;
use phoenix_proto::ledger::v1::firebase_import_service_server::FirebaseImportService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};

use super::{keyed, tenant_of};
use crate::app::Ledger;
use crate::domain::import::{self, IncomingRecord, Origin, RecordContent, SourceCollection};

#[tonic::async_trait]
impl FirebaseImportService for Ledger {
    async fn start_import_batch(
        &self,
        request: Request<pb::StartImportBatchRequest>,
    ) -> Result<Response<pb::StartImportBatchResponse>, Status> {
        let req = request.get_ref();
        let mut violations = Violations::new();
        let tenant = tenant_of(&request, &req.tenant_id, &mut violations)?;
        let source_name = import::source_name(&req.source_name, &mut violations);
        let key = keyed(
            violations,
            tenant,
            &req.idempotency_key,
            "FirebaseImportService/StartImportBatch",
            req,
        )?;
        let batch = self.start_import(&key, tenant, source_name).await?;
        Ok(Response::new(pb::StartImportBatchResponse {
            batch: Some(crate::proto::import_batch(&batch)),
        }))
    }

    async fn import_records(
        &self,
        request: Request<pb::ImportRecordsRequest>,
    ) -> Result<Response<pb::ImportRecordsResponse>, Status> {
        let req = request.get_ref();
        let mut violations = Violations::new();
        let tenant = tenant_of(&request, &req.tenant_id, &mut violations)?;
        let batch_id = violations.uuid("batch_id", &req.batch_id);
        // The records of a call of the wrong size are not read.
        let records = if import::check_call(req.records.len(), &mut violations) {
            incoming(&req.records, &mut violations)
        } else {
            Vec::new()
        };
        let key = keyed(
            violations,
            tenant,
            &req.idempotency_key,
            "FirebaseImportService/ImportRecords",
            req,
        )?;
        let outcome = self.import_into(&key, tenant, batch_id, records).await?;
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
        let mut violations = Violations::new();
        let tenant = tenant_of(&request, &req.tenant_id, &mut violations)?;
        let batch_id = violations.uuid("batch_id", &req.batch_id);
        let sources: Vec<SourceCollection> = req
            .sources
            .iter()
            .map(|s| SourceCollection {
                collection: s.collection.clone(),
                document_count: s.document_count,
                checksum: s.checksum.clone(),
            })
            .collect();
        import::check_sources(&sources, &mut violations);
        let key = keyed(
            violations,
            tenant,
            &req.idempotency_key,
            "FirebaseImportService/FinishImportBatch",
            req,
        )?;
        let report = self.finish_import(&key, tenant, batch_id, sources).await?;
        Ok(Response::new(pb::FinishImportBatchResponse {
            report: Some(crate::proto::import_report(&report)),
        }))
    }

    async fn get_import_report(
        &self,
        request: Request<pb::GetImportReportRequest>,
    ) -> Result<Response<pb::GetImportReportResponse>, Status> {
        let req = request.get_ref();
        let mut violations = Violations::new();
        let tenant = tenant_of(&request, &req.tenant_id, &mut violations)?;
        let batch_id = violations.uuid("batch_id", &req.batch_id);
        let size = violations.page_size(req.page_size, 100, 1000);
        let after = violations
            .page_token(&req.page_token, |t| {
                t.parse::<i64>().ok().filter(|p| *p > 0)
            })
            .unwrap_or(0);
        violations.finish()?;
        let report = self.import_report(tenant, batch_id, after, size).await?;
        Ok(Response::new(pb::GetImportReportResponse {
            report: Some(crate::proto::import_report(&report)),
        }))
    }
}

/// The records of a call in domain terms, each checked; a record without content is a malformed
/// request.
fn incoming(records: &[pb::ImportRecord], violations: &mut Violations) -> Vec<IncomingRecord> {
    let mut incoming = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let origin = Origin {
            source_file: record.source_file.clone(),
            line_number: record.line_number,
        };
        import::check_origin(index, &origin, violations);
        let content = match &record.content {
            // A record the client cut: its start, whatever its form, is all there is.
            Some(content) if record.cut_from_bytes > 0 => RecordContent::TooLarge {
                start: match content {
                    pb::import_record::Content::Document(document) => document.json.clone(),
                    pb::import_record::Content::NdjsonLine(line) => {
                        String::from_utf8_lossy(line).into_owned()
                    }
                },
                bytes: record.cut_from_bytes,
            },
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
                violations.add(
                    format!("records[{index}].content"),
                    "NO_CONTENT",
                    "is required: a document or an NDJSON line",
                );
                continue;
            }
        };
        incoming.push(IncomingRecord { origin, content });
    }
    incoming
}
