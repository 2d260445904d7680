//! ClockService: reads and moves the manual clock (served only with
//! PHOENIX_MISSIONS_CLOCK=manual). Every call needs the admin role when authentication is on.

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::clock_service_server::ClockService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};

use super::proto::timestamp;
use super::{require_admin, validated};
use crate::app::Missions;

/// Longest step AdvanceTime takes: a century.
const MAX_ADVANCE_DAYS: i64 = 36_500;

#[tonic::async_trait]
impl ClockService for Missions {
    async fn get_time(
        &self,
        request: Request<pb::GetTimeRequest>,
    ) -> Result<Response<pb::GetTimeResponse>, Status> {
        require_admin(&request)?;
        Ok(Response::new(pb::GetTimeResponse {
            now: Some(timestamp(self.clock().now())),
        }))
    }

    async fn set_time(
        &self,
        request: Request<pb::SetTimeRequest>,
    ) -> Result<Response<pb::SetTimeResponse>, Status> {
        require_admin(&request)?;
        let mut violations = Violations::new();
        let to = violations.timestamp("now", request.get_ref().now.as_ref());
        violations.finish()?;
        let to = validated(to, "now")?;
        Ok(Response::new(pb::SetTimeResponse {
            now: Some(timestamp(self.clock().set(to)?)),
        }))
    }

    async fn advance_time(
        &self,
        request: Request<pb::AdvanceTimeRequest>,
    ) -> Result<Response<pb::AdvanceTimeResponse>, Status> {
        require_admin(&request)?;
        let given = request.get_ref().by.as_ref();
        let mut violations = Violations::new();
        if given.is_none() {
            violations.add("by", "REQUIRED", "is required: a positive duration");
        }
        let by =
            violations.positive_duration("by", given, chrono::Duration::days(MAX_ADVANCE_DAYS));
        violations.finish()?;
        let by = validated(by, "by")?;
        Ok(Response::new(pb::AdvanceTimeResponse {
            now: Some(timestamp(self.clock().advance(by)?)),
        }))
    }
}
