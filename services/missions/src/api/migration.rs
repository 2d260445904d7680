//! MigrationService: the move from the legacy JSON store to PostgreSQL (backfill, rebuild from
//! events, compare, audit, export). Admins only when authentication is on. Paths are on the
//! service's machine.

use std::path::PathBuf;

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::migration_service_server::MigrationService;
use phoenix_runtime::{Violations, auth};
use tonic::{Request, Response, Status};

use super::{ADMIN_ROLE, Missions, season};
use crate::migration;
use crate::store::file::FileBoards;

fn quarantined(items: Vec<migration::Quarantined>) -> Vec<pb::Quarantined> {
    items
        .into_iter()
        .map(|q| pb::Quarantined {
            location: q.location,
            user_id: q.user_id.map(|id| id.to_string()).unwrap_or_default(),
            reason: q.reason,
        })
        .collect()
}

/// A compared value as JSON, or `(missing)` when that side has none.
fn json_or_missing(value: Option<serde_json::Value>) -> String {
    value.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
}

impl Missions {
    /// The store path of a request, or the configured one.
    fn store_path(&self, given: &str) -> PathBuf {
        if given.trim().is_empty() {
            self.store_path.clone()
        } else {
            PathBuf::from(given)
        }
    }
}

#[tonic::async_trait]
impl MigrationService for Missions {
    async fn backfill(
        &self,
        request: Request<pb::BackfillRequest>,
    ) -> Result<Response<pb::BackfillResponse>, Status> {
        auth::require_role(&request, ADMIN_ROLE)?;
        let path = self.store_path(&request.get_ref().store_path);
        let report = migration::backfill(&path, &self.sql, &|_, _| {}).await?;
        Ok(Response::new(pb::BackfillResponse {
            read: report.read as i64,
            inserted: report.inserted as i64,
            skipped: report.skipped as i64,
            quarantined: quarantined(report.quarantined),
        }))
    }

    async fn rebuild_from_events(
        &self,
        request: Request<pb::RebuildFromEventsRequest>,
    ) -> Result<Response<pb::RebuildFromEventsResponse>, Status> {
        auth::require_role(&request, ADMIN_ROLE)?;
        let mut violations = Violations::new();
        violations.check(
            !request.get_ref().log_path.trim().is_empty(),
            "log_path",
            "REQUIRED",
            "is required",
        );
        violations.finish()?;
        let path = PathBuf::from(&request.get_ref().log_path);
        let catalog = self.catalog.get().await?;
        let report =
            migration::rebuild_from_events(&path, &self.sql, &catalog, &self.rules).await?;
        Ok(Response::new(pb::RebuildFromEventsResponse {
            read: report.read as i64,
            applied: report.applied as i64,
            already_applied: report.already_applied as i64,
            quarantined: quarantined(report.quarantined),
        }))
    }

    async fn compare(
        &self,
        request: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareResponse>, Status> {
        auth::require_role(&request, ADMIN_ROLE)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let season = season(&mut violations, &request.season_id);
        let users: Vec<_> = request
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, id)| violations.uuid(&format!("user_ids[{i}]"), id))
            .collect();
        violations.finish()?;
        let file = FileBoards::open(self.store_path(&request.store_path))?;
        let report = migration::compare(&file, &self.sql, &season, &users).await?;
        Ok(Response::new(pb::CompareResponse {
            compared: report.compared as i64,
            differences: report
                .differences
                .into_iter()
                .map(|d| pb::Difference {
                    user_id: d.user_id.to_string(),
                    path: d.path,
                    file_value: json_or_missing(d.file_value),
                    sql_value: json_or_missing(d.sql_value),
                })
                .collect(),
        }))
    }

    async fn audit(
        &self,
        request: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        auth::require_role(&request, ADMIN_ROLE)?;
        let report = crate::audit::run(&self.pool).await?;
        Ok(Response::new(pb::AuditResponse {
            boards: report.boards,
            violations: report
                .violations
                .into_iter()
                .map(|v| pb::Violation {
                    check: v.check.to_string(),
                    user_id: v.user_id.map(|id| id.to_string()).unwrap_or_default(),
                    season_id: v.season_id.unwrap_or_default(),
                    detail: v.detail,
                })
                .collect(),
        }))
    }

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<pb::ExportResponse>, Status> {
        auth::require_role(&request, ADMIN_ROLE)?;
        let mut violations = Violations::new();
        violations.check(
            !request.get_ref().store_path.trim().is_empty(),
            "store_path",
            "REQUIRED",
            "is required",
        );
        violations.finish()?;
        let path = PathBuf::from(&request.get_ref().store_path);
        let boards = migration::export(&self.sql, &path).await?;
        Ok(Response::new(pb::ExportResponse {
            boards: boards as i64,
        }))
    }
}
