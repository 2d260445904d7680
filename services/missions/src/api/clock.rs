//! ClockService: moves the manual clock (served only with PHOENIX_MISSIONS_CLOCK=manual).

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::clock_service_server::ClockService;
use phoenix_runtime::fields;
use tonic::{Request, Response, Status};

use super::{Missions, require_admin};
use crate::error::{DOMAIN, MissionsError};
use crate::proto::timestamp;

/// The manual clock's new time; the system clock cannot be moved (the service is only served
/// with a manual clock, so this is a guard, not a path).
fn moved(now: Option<chrono::DateTime<chrono::Utc>>) -> Result<prost_types::Timestamp, Status> {
    now.map(timestamp).ok_or_else(|| {
        Status::failed_precondition("the service runs on the system clock, which cannot be moved")
    })
}

#[tonic::async_trait]
impl ClockService for Missions {
    async fn get_time(
        &self,
        _request: Request<pb::GetTimeRequest>,
    ) -> Result<Response<pb::GetTimeResponse>, Status> {
        Ok(Response::new(pb::GetTimeResponse {
            now: Some(timestamp(self.clock.now())),
        }))
    }

    async fn set_time(
        &self,
        request: Request<pb::SetTimeRequest>,
    ) -> Result<Response<pb::SetTimeResponse>, Status> {
        require_admin(&request)?;
        let to = fields::time(DOMAIN, "now", request.get_ref().now.as_ref())
            .map_err(MissionsError::Invalid)?;
        Ok(Response::new(pb::SetTimeResponse {
            now: Some(moved(self.clock.set(to))?),
        }))
    }

    async fn advance_time(
        &self,
        request: Request<pb::AdvanceTimeRequest>,
    ) -> Result<Response<pb::AdvanceTimeResponse>, Status> {
        require_admin(&request)?;
        let by = fields::positive_duration(DOMAIN, "by", request.get_ref().by.as_ref())
            .map_err(MissionsError::Invalid)?
            .ok_or_else(|| {
                MissionsError::Invalid(phoenix_runtime::ApiError::invalid_argument(
                    DOMAIN,
                    vec![phoenix_runtime::FieldViolation::new(
                        "by",
                        "is required: a positive duration",
                    )],
                ))
            })?;
        Ok(Response::new(pb::AdvanceTimeResponse {
            now: Some(moved(self.clock.advance(by))?),
        }))
    }
}
