//! MigrationService: the move from the legacy JSON store to PostgreSQL (backfill, rebuild from
//! events, compare, audit, export). Admins only when authentication is on. Paths are on the
//! service's machine; one that cannot be right is the caller's error (`error::file_failed`).

use std::path::PathBuf;

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::migration_service_server::MigrationService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};

use super::{count, require_admin, season};
use crate::app::Missions;
use crate::app::migration::Quarantined;

fn quarantined(items: Vec<Quarantined>) -> Vec<pb::Quarantined> {
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

/// Longest path accepted, in bytes (Linux's PATH_MAX).
const MAX_PATH_BYTES: usize = 4_096;

/// What a request's path must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathUse {
    /// Read; empty: the configured one.
    ReadOrConfigured,
    /// Read; required.
    Read,
    /// Written; required, and it must name a file (not `/` or `..`).
    Write,
}

/// A path on the service's machine: no NUL (no file system takes one) and at most 4,096
/// bytes, so what the file system is asked is a path it could have.
fn path(violations: &mut Violations, field: &str, value: &str, usage: PathUse) -> PathBuf {
    let path = PathBuf::from(value);
    if value.trim().is_empty() {
        violations.check(
            usage == PathUse::ReadOrConfigured,
            field,
            "REQUIRED",
            "is required: a path on the service's machine",
        );
    } else if value.len() > MAX_PATH_BYTES {
        violations.add(
            field,
            "TOO_LONG",
            format!(
                "must be at most {MAX_PATH_BYTES} bytes, got {}",
                value.len()
            ),
        );
    } else if value.contains('\0') {
        violations.add(
            field,
            "INVALID_PATH",
            "must not contain NUL: no file system takes it",
        );
    } else if usage == PathUse::Write && path.file_name().is_none() {
        violations.add(
            field,
            "INVALID_PATH",
            "must name a file to write, not a directory such as / or ..",
        );
    }
    path
}

#[tonic::async_trait]
impl MigrationService for Missions {
    async fn backfill(
        &self,
        request: Request<pb::BackfillRequest>,
    ) -> Result<Response<pb::BackfillResponse>, Status> {
        require_admin(&request)?;
        let store = &request.get_ref().store_path;
        let mut violations = Violations::new();
        path(
            &mut violations,
            "store_path",
            store,
            PathUse::ReadOrConfigured,
        );
        violations.finish()?;
        let report = self.backfill(store).await?;
        Ok(Response::new(pb::BackfillResponse {
            read: count(report.read),
            inserted: count(report.inserted),
            skipped: count(report.skipped),
            quarantined: quarantined(report.quarantined),
        }))
    }

    async fn rebuild_from_events(
        &self,
        request: Request<pb::RebuildFromEventsRequest>,
    ) -> Result<Response<pb::RebuildFromEventsResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let log = path(
            &mut violations,
            "log_path",
            &request.get_ref().log_path,
            PathUse::Read,
        );
        violations.finish()?;
        let report = self.rebuild_from_events(&log).await?;
        Ok(Response::new(pb::RebuildFromEventsResponse {
            read: count(report.read),
            applied: count(report.applied),
            already_applied: count(report.already_applied),
            quarantined: quarantined(report.quarantined),
        }))
    }

    async fn compare(
        &self,
        request: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareResponse>, Status> {
        require_admin(&request)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        path(
            &mut violations,
            "store_path",
            &body.store_path,
            PathUse::ReadOrConfigured,
        );
        let season = season(&mut violations, &body.season_id);
        let users: Vec<_> = body
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, id)| violations.uuid(&format!("user_ids[{i}]"), id))
            .collect();
        violations.finish()?;
        let report = self.compare(&body.store_path, &season, &users).await?;
        Ok(Response::new(pb::CompareResponse {
            compared: count(report.compared),
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
            quarantined: quarantined(report.quarantined),
        }))
    }

    async fn audit(
        &self,
        request: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        require_admin(&request)?;
        let report = self.audit().await?;
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
        require_admin(&request)?;
        let mut violations = Violations::new();
        let store = path(
            &mut violations,
            "store_path",
            &request.get_ref().store_path,
            PathUse::Write,
        );
        violations.finish()?;
        let boards = self.export(&store).await?;
        Ok(Response::new(pb::ExportResponse {
            boards: count(boards),
        }))
    }
}
