//! MissionsService: the board and its rules. With authentication on, a caller acts only on
//! its own board unless it holds the admin role.

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::missions_service_server::MissionsService;
use phoenix_runtime::Violations;
use tonic::{Request, Response, Status};

use super::{board_call, proto, require_admin, require_owner, slot_field, time_zone};
use crate::app::{Missions, Shown};
use crate::domain::board::SlotKey;
use crate::domain::rules;

/// Boards per transaction of CloseDueDays unless the request says otherwise.
const DEFAULT_CLOSE_BATCH: i64 = 500;
const MAX_CLOSE_BATCH: i64 = 5_000;
const MAX_PROOF_CHARS: usize = 2_000;

/// One slot of a board as its user sees it.
fn slot(shown: &Shown, key: SlotKey) -> pb::Slot {
    let today = rules::local_date(shown.board.time_zone, shown.now);
    proto::slot(&shown.board, shown.board.slot(key), &shown.catalog, today)
}

/// The board's boss run, if it has one.
fn boss(shown: &Shown) -> Option<pb::BossRun> {
    shown
        .board
        .boss
        .as_ref()
        .map(|boss| proto::boss_run(boss, &shown.catalog))
}

#[tonic::async_trait]
impl MissionsService for Missions {
    async fn create_board(
        &self,
        request: Request<pb::CreateBoardRequest>,
    ) -> Result<Response<pb::CreateBoardResponse>, Status> {
        let body = request.get_ref();
        // Empty: the user's zone in the directory (the use case decides).
        let (key, zone) = board_call(&request, &body.user_id, &body.season_id, |v| {
            (!body.time_zone.is_empty()).then(|| time_zone(v, &body.time_zone))
        })?;
        let (shown, created) = self.create_board(&key, zone).await?;
        Ok(Response::new(pb::CreateBoardResponse {
            board: Some(proto::board(&shown, self.rules())),
            created,
        }))
    }

    async fn get_board(
        &self,
        request: Request<pb::GetBoardRequest>,
    ) -> Result<Response<pb::GetBoardResponse>, Status> {
        let body = request.get_ref();
        let (key, ()) = board_call(&request, &body.user_id, &body.season_id, |_| ())?;
        let shown = self.board(&key).await?;
        Ok(Response::new(pb::GetBoardResponse {
            board: Some(proto::board(&shown, self.rules())),
        }))
    }

    async fn set_time_zone(
        &self,
        request: Request<pb::SetTimeZoneRequest>,
    ) -> Result<Response<pb::SetTimeZoneResponse>, Status> {
        let body = request.get_ref();
        let mut violations = Violations::new();
        let user_id = violations.uuid("user_id", &body.user_id);
        let zone = time_zone(&mut violations, &body.time_zone);
        violations.finish()?;
        require_owner(&request, user_id)?;
        let boards = self.set_time_zone(user_id, zone).await?;
        Ok(Response::new(pb::SetTimeZoneResponse {
            boards: i32::try_from(boards).unwrap_or(i32::MAX),
        }))
    }

    async fn activate_slot(
        &self,
        request: Request<pb::ActivateSlotRequest>,
    ) -> Result<Response<pb::ActivateSlotResponse>, Status> {
        let body = request.get_ref();
        let (key, slot_key) = board_call(&request, &body.user_id, &body.season_id, |v| {
            slot_field(v, body.slot_key)
        })?;
        let shown = self.activate(&key, slot_key).await?;
        Ok(Response::new(pb::ActivateSlotResponse {
            slot: Some(slot(&shown, slot_key)),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let body = request.get_ref();
        let (key, run_id) = board_call(&request, &body.user_id, &body.season_id, |v| {
            v.uuid("run_id", &body.run_id)
        })?;
        let outcome = self.heartbeat(&key, run_id).await?;
        Ok(Response::new(pb::HeartbeatResponse {
            heartbeat: Some(proto::heartbeat(&outcome.heartbeat)),
            replayed: outcome.replayed,
        }))
    }

    async fn record_progress(
        &self,
        request: Request<pb::RecordProgressRequest>,
    ) -> Result<Response<pb::RecordProgressResponse>, Status> {
        let body = request.get_ref();
        let (key, run_id) = board_call(&request, &body.user_id, &body.season_id, |v| {
            let run_id = v.uuid("run_id", &body.run_id);
            v.check(
                body.current >= 0,
                "current",
                "NEGATIVE_PROGRESS",
                "must not be negative",
            );
            run_id
        })?;
        let (shown, succeeded) = self.record_progress(&key, run_id, body.current).await?;
        let today = rules::local_date(shown.board.time_zone, shown.now);
        Ok(Response::new(pb::RecordProgressResponse {
            run: shown.board.run(run_id).map(|run| proto::run(run, today)),
            succeeded,
        }))
    }

    async fn reroll(
        &self,
        request: Request<pb::RerollRequest>,
    ) -> Result<Response<pb::RerollResponse>, Status> {
        let body = request.get_ref();
        let (key, slot_key) = board_call(&request, &body.user_id, &body.season_id, |v| {
            slot_field(v, body.slot_key)
        })?;
        let shown = self.reroll(&key, slot_key).await?;
        Ok(Response::new(pb::RerollResponse {
            slot: Some(slot(&shown, slot_key)),
        }))
    }

    async fn claim_run(
        &self,
        request: Request<pb::ClaimRunRequest>,
    ) -> Result<Response<pb::ClaimRunResponse>, Status> {
        let body = request.get_ref();
        let (key, run_id) = board_call(&request, &body.user_id, &body.season_id, |v| {
            v.uuid("run_id", &body.run_id)
        })?;
        let outcome = self.claim(&key, run_id).await?;
        Ok(Response::new(pb::ClaimRunResponse {
            claim: Some(proto::claim(&outcome.claim)),
            replayed: outcome.replayed,
        }))
    }

    async fn link_boss_task(
        &self,
        request: Request<pb::LinkBossTaskRequest>,
    ) -> Result<Response<pb::LinkBossTaskResponse>, Status> {
        let body = request.get_ref();
        let (key, task_id) = board_call(&request, &body.user_id, &body.season_id, |v| {
            v.uuid("task_id", &body.task_id)
        })?;
        let shown = self.link_boss_task(&key, task_id).await?;
        Ok(Response::new(pb::LinkBossTaskResponse {
            boss: boss(&shown),
        }))
    }

    async fn record_task_progress(
        &self,
        request: Request<pb::RecordTaskProgressRequest>,
    ) -> Result<Response<pb::RecordTaskProgressResponse>, Status> {
        let body = request.get_ref();
        let (key, task_id) = board_call(&request, &body.user_id, &body.season_id, |v| {
            v.check(
                body.amount > 0,
                "amount",
                "INVALID_AMOUNT",
                "must be positive",
            );
            v.uuid("task_id", &body.task_id)
        })?;
        let shown = self.damage_boss(&key, task_id, body.amount).await?;
        Ok(Response::new(pb::RecordTaskProgressResponse {
            boss: boss(&shown),
        }))
    }

    async fn submit_boss_proof(
        &self,
        request: Request<pb::SubmitBossProofRequest>,
    ) -> Result<Response<pb::SubmitBossProofResponse>, Status> {
        let body = request.get_ref();
        let (key, proof) = board_call(&request, &body.user_id, &body.season_id, |v| {
            v.free_text("proof", &body.proof, MAX_PROOF_CHARS, true)
        })?;
        let shown = self.submit_boss_proof(&key, &proof).await?;
        Ok(Response::new(pb::SubmitBossProofResponse {
            boss: boss(&shown),
        }))
    }

    async fn claim_boss(
        &self,
        request: Request<pb::ClaimBossRequest>,
    ) -> Result<Response<pb::ClaimBossResponse>, Status> {
        let body = request.get_ref();
        let (key, ()) = board_call(&request, &body.user_id, &body.season_id, |_| ())?;
        let outcome = self.claim_boss(&key).await?;
        Ok(Response::new(pb::ClaimBossResponse {
            claim: Some(proto::claim(&outcome.claim)),
            replayed: outcome.replayed,
        }))
    }

    async fn list_user_badges(
        &self,
        request: Request<pb::ListUserBadgesRequest>,
    ) -> Result<Response<pb::ListUserBadgesResponse>, Status> {
        let mut violations = Violations::new();
        let user_id = violations.uuid("user_id", &request.get_ref().user_id);
        violations.finish()?;
        require_owner(&request, user_id)?;
        let badges = self.user_badges(user_id).await?;
        Ok(Response::new(pb::ListUserBadgesResponse {
            badges: badges.iter().map(proto::earned_badge).collect(),
        }))
    }

    async fn grant_effect(
        &self,
        request: Request<pb::GrantEffectRequest>,
    ) -> Result<Response<pb::GrantEffectResponse>, Status> {
        require_admin(&request)?;
        let body = request.get_ref();
        let (key, effect_id) = board_call(&request, &body.user_id, &body.season_id, |v| {
            v.uuid("effect_id", &body.effect_id)
        })?;
        let (shown, effect) = self.grant_effect(&key, effect_id).await?;
        Ok(Response::new(pb::GrantEffectResponse {
            effect: Some(proto::effect(&effect, &shown.catalog)),
        }))
    }

    async fn close_days(
        &self,
        request: Request<pb::CloseDaysRequest>,
    ) -> Result<Response<pb::CloseDaysResponse>, Status> {
        let body = request.get_ref();
        let (key, ()) = board_call(&request, &body.user_id, &body.season_id, |_| ())?;
        let (shown, closed) = self.close_days(&key).await?;
        Ok(Response::new(pb::CloseDaysResponse {
            closed: closed
                .iter()
                .filter_map(|day| {
                    let run = shown.board.run(day.run_id)?;
                    let closed = run.days.iter().find(|d| d.date == day.date)?;
                    Some(proto::closed_day(run.run_id, closed))
                })
                .collect(),
        }))
    }

    async fn close_due_days(
        &self,
        request: Request<pb::CloseDueDaysRequest>,
    ) -> Result<Response<pb::CloseDueDaysResponse>, Status> {
        require_admin(&request)?;
        let size = i64::from(request.get_ref().batch_size);
        let mut violations = Violations::new();
        violations.check(
            (0..=MAX_CLOSE_BATCH).contains(&size),
            "batch_size",
            "INVALID_BATCH_SIZE",
            "must be between 0 (default 500) and 5,000",
        );
        violations.finish()?;
        let batch = if size == 0 { DEFAULT_CLOSE_BATCH } else { size };
        let tally = self.close_due(batch).await?;
        Ok(Response::new(pb::CloseDueDaysResponse {
            boards: tally.boards,
            days: tally.days,
            petals_lost: tally.petals_lost,
            protected_days: tally.protected_days,
            runs_failed: tally.runs_failed,
        }))
    }
}
