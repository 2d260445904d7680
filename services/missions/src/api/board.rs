//! MissionsService: the board and its rules.

use chrono::{DateTime, Utc};
use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::missions_service_server::MissionsService;
use phoenix_runtime::{Error, Violations, auth};
use tonic::{Request, Response, Status};

use super::{ADMIN_ROLE, Missions, board_key, free_text, ids, time_zone};
use crate::domain::board::{Board, DayOutcome, SlotKey};
use crate::domain::rules::{self, ClosedDay};
use crate::error::{board_not_found, user_has_no_board};
use crate::metrics;
use crate::proto;
use crate::store::Saved;

/// Boards per transaction of CloseDueDays unless the request says otherwise.
const DEFAULT_CLOSE_BATCH: i64 = 500;
const MAX_CLOSE_BATCH: i64 = 5_000;
const MAX_PROOF_CHARS: usize = 2_000;

fn slot_field(violations: &mut Violations, value: i32) -> SlotKey {
    violations
        .enumeration::<pb::SlotKey>(
            "slot_key",
            value,
            "SLOT_KEY_REQUIRED",
            "SLOT_KEY_MAIN, SLOT_KEY_HUNT or SLOT_KEY_SKILL",
        )
        .and_then(|key| proto::slot_key_from(key.into()))
        .unwrap_or(SlotKey::Main)
}

/// Counts what day closes did, for the metrics and CloseDueDays.
#[derive(Debug, Default)]
pub(crate) struct CloseTally {
    days: i64,
    petals_lost: i64,
    protected_days: i64,
    runs_failed: i64,
}

impl CloseTally {
    fn add(&mut self, closed: &[ClosedDay]) {
        for day in closed {
            self.days += 1;
            match day.outcome {
                DayOutcome::PetalLost => self.petals_lost += 1,
                DayOutcome::Protected => self.protected_days += 1,
                DayOutcome::Kept => {}
            }
            if day.run_failed {
                self.runs_failed += 1;
            }
        }
    }

    fn record(&self) {
        metrics::days_closed(self.petals_lost as u64, self.protected_days as u64);
    }
}

#[tonic::async_trait]
impl MissionsService for Missions {
    async fn create_board(
        &self,
        request: Request<pb::CreateBoardRequest>,
    ) -> Result<Response<pb::CreateBoardResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let time_zone = time_zone(&mut violations, &request.time_zone);
        violations.finish()?;
        let catalog = self.catalog.get().await?;
        let now = self.clock.now();
        let settings = self.rules.clone();
        let (board, created) = self
            .repo
            .update(&key, |current| {
                Ok(match current {
                    Some(board) => {
                        rules::replay_new_board(&board, time_zone)?;
                        Saved::Keep((board, false))
                    }
                    None => {
                        let board = rules::new_board(
                            &key,
                            time_zone,
                            &catalog,
                            &settings,
                            &mut ids(),
                            now,
                        )?;
                        Saved::Write(board.clone(), (board, true))
                    }
                })
            })
            .await?;
        Ok(Response::new(pb::CreateBoardResponse {
            board: Some(proto::board(&board, &catalog, &self.rules, now)),
            created,
        }))
    }

    async fn get_board(
        &self,
        request: Request<pb::GetBoardRequest>,
    ) -> Result<Response<pb::GetBoardResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        violations.finish()?;
        let mut board = self
            .repo
            .load(&key)
            .await?
            .ok_or_else(|| board_not_found(&key))?;
        let now = self.clock.now();
        let catalog = self.catalog.get().await?;
        // Shown as of now (days that ended closed, cooldowns over, budgets back) without
        // writing: a read never takes the board's lock; the next write or day close saves it.
        rules::tick(&mut board, &catalog, &self.rules, &mut ids(), now);
        Ok(Response::new(pb::GetBoardResponse {
            board: Some(proto::board(&board, &catalog, &self.rules, now)),
        }))
    }

    async fn set_time_zone(
        &self,
        request: Request<pb::SetTimeZoneRequest>,
    ) -> Result<Response<pb::SetTimeZoneResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let user_id = violations.uuid("user_id", &request.user_id);
        let time_zone = time_zone(&mut violations, &request.time_zone);
        violations.finish()?;
        let keys = self.repo.keys_of_user(user_id).await?;
        if keys.is_empty() {
            return Err(user_has_no_board(user_id).into());
        }
        // Each board changes on its own (a retry finishes the rest); days that ended under the
        // old zone are closed first, so the change never reopens or skips a closed date.
        for key in &keys {
            self.change(key, |board, catalog, settings, now| {
                let closed = rules::tick(board, catalog, settings, &mut ids(), now);
                let mut tally = CloseTally::default();
                tally.add(&closed);
                tally.record();
                rules::set_time_zone(board, time_zone, now);
                Ok(())
            })
            .await?;
        }
        Ok(Response::new(pb::SetTimeZoneResponse {
            boards: i32::try_from(keys.len()).unwrap_or(i32::MAX),
        }))
    }

    async fn activate_slot(
        &self,
        request: Request<pb::ActivateSlotRequest>,
    ) -> Result<Response<pb::ActivateSlotResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let slot = slot_field(&mut violations, request.slot_key);
        violations.finish()?;
        let (board, _, now) = self
            .change(&key, |board, catalog, settings, now| {
                rules::activate(board, slot, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(Response::new(pb::ActivateSlotResponse {
            slot: Some(self.slot_of(&board, slot, now).await?),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let run_id = violations.uuid("run_id", &request.run_id);
        violations.finish()?;
        let (_, outcome, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::heartbeat(board, run_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        metrics::heartbeat(outcome.replayed);
        Ok(Response::new(pb::HeartbeatResponse {
            heartbeat: Some(proto::heartbeat(&outcome.heartbeat)),
            replayed: outcome.replayed,
        }))
    }

    async fn record_progress(
        &self,
        request: Request<pb::RecordProgressRequest>,
    ) -> Result<Response<pb::RecordProgressResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let run_id = violations.uuid("run_id", &request.run_id);
        violations.check(
            request.current >= 0,
            "current",
            "NEGATIVE_PROGRESS",
            "must not be negative",
        );
        violations.finish()?;
        let (board, succeeded, now) = self
            .change(&key, |board, catalog, settings, now| {
                rules::record_progress(
                    board,
                    run_id,
                    request.current,
                    catalog,
                    settings,
                    &mut ids(),
                    now,
                )
            })
            .await?;
        let run = board
            .run(run_id)
            .map(|run| proto::run(run, rules::local_date(board.time_zone, now)));
        Ok(Response::new(pb::RecordProgressResponse { run, succeeded }))
    }

    async fn reroll(
        &self,
        request: Request<pb::RerollRequest>,
    ) -> Result<Response<pb::RerollResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let slot = slot_field(&mut violations, request.slot_key);
        violations.finish()?;
        let (board, _, now) = self
            .change(&key, |board, catalog, settings, now| {
                rules::reroll(board, slot, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(Response::new(pb::RerollResponse {
            slot: Some(self.slot_of(&board, slot, now).await?),
        }))
    }

    async fn claim_run(
        &self,
        request: Request<pb::ClaimRunRequest>,
    ) -> Result<Response<pb::ClaimRunResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let run_id = violations.uuid("run_id", &request.run_id);
        violations.finish()?;
        let (_, outcome, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::claim(board, run_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        if outcome.replayed {
            metrics::duplicate_claim();
        }
        Ok(Response::new(pb::ClaimRunResponse {
            claim: Some(proto::claim(&outcome.claim)),
            replayed: outcome.replayed,
        }))
    }

    async fn link_boss_task(
        &self,
        request: Request<pb::LinkBossTaskRequest>,
    ) -> Result<Response<pb::LinkBossTaskResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let task_id = violations.uuid("task_id", &request.task_id);
        violations.finish()?;
        let (board, _, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::link_boss_task(board, task_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(Response::new(pb::LinkBossTaskResponse {
            boss: self.boss_of(&board).await?,
        }))
    }

    async fn record_task_progress(
        &self,
        request: Request<pb::RecordTaskProgressRequest>,
    ) -> Result<Response<pb::RecordTaskProgressResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let task_id = violations.uuid("task_id", &request.task_id);
        violations.check(
            request.amount > 0,
            "amount",
            "INVALID_AMOUNT",
            "must be positive",
        );
        violations.finish()?;
        let (board, _, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::damage_boss(
                    board,
                    task_id,
                    request.amount,
                    catalog,
                    settings,
                    &mut ids(),
                    now,
                )
            })
            .await?;
        Ok(Response::new(pb::RecordTaskProgressResponse {
            boss: self.boss_of(&board).await?,
        }))
    }

    async fn submit_boss_proof(
        &self,
        request: Request<pb::SubmitBossProofRequest>,
    ) -> Result<Response<pb::SubmitBossProofResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let proof = free_text(
            &mut violations,
            "proof",
            &request.proof,
            MAX_PROOF_CHARS,
            true,
        );
        violations.finish()?;
        let (board, _, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::submit_boss_proof(board, &proof, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(Response::new(pb::SubmitBossProofResponse {
            boss: self.boss_of(&board).await?,
        }))
    }

    async fn claim_boss(
        &self,
        request: Request<pb::ClaimBossRequest>,
    ) -> Result<Response<pb::ClaimBossResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        violations.finish()?;
        let (_, outcome, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::claim_boss(board, catalog, settings, &mut ids(), now)
            })
            .await?;
        if outcome.replayed {
            metrics::duplicate_claim();
        }
        Ok(Response::new(pb::ClaimBossResponse {
            claim: Some(proto::claim(&outcome.claim)),
            replayed: outcome.replayed,
        }))
    }

    async fn grant_effect(
        &self,
        request: Request<pb::GrantEffectRequest>,
    ) -> Result<Response<pb::GrantEffectResponse>, Status> {
        auth::require_role(&request, ADMIN_ROLE)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        let effect_id = violations.uuid("effect_id", &request.effect_id);
        violations.finish()?;
        let (_, effect, _) = self
            .change(&key, |board, catalog, settings, now| {
                rules::grant_effect(board, effect_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(Response::new(pb::GrantEffectResponse {
            effect: Some(proto::effect(&effect, &*self.catalog.get().await?)),
        }))
    }

    async fn close_days(
        &self,
        request: Request<pb::CloseDaysRequest>,
    ) -> Result<Response<pb::CloseDaysResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = board_key(&mut violations, &request.user_id, &request.season_id);
        violations.finish()?;
        let (board, closed, _) = self
            .change(&key, |board, catalog, settings, now| {
                Ok(rules::tick(board, catalog, settings, &mut ids(), now))
            })
            .await?;
        let mut tally = CloseTally::default();
        tally.add(&closed);
        tally.record();
        Ok(Response::new(pb::CloseDaysResponse {
            closed: closed
                .iter()
                .filter_map(|day| {
                    let run = board.run(day.run_id)?;
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
        auth::require_role(&request, ADMIN_ROLE)?;
        let request = request.into_inner();
        let size = i64::from(request.batch_size);
        let mut violations = Violations::new();
        violations.check(
            (0..=MAX_CLOSE_BATCH).contains(&size),
            "batch_size",
            "INVALID_BATCH_SIZE",
            "must be between 0 (default 500) and 5,000",
        );
        violations.finish()?;
        let batch = if size == 0 { DEFAULT_CLOSE_BATCH } else { size };
        let (boards, tally) = self.close_due(batch).await?;
        Ok(Response::new(pb::CloseDueDaysResponse {
            boards,
            days: tally.days,
            petals_lost: tally.petals_lost,
            protected_days: tally.protected_days,
            runs_failed: tally.runs_failed,
        }))
    }
}

impl Missions {
    /// One slot of `board` as its user sees it at `now`.
    async fn slot_of(
        &self,
        board: &Board,
        slot: SlotKey,
        now: DateTime<Utc>,
    ) -> Result<pb::Slot, Error> {
        let today = rules::local_date(board.time_zone, now);
        Ok(proto::slot(
            board,
            board.slot(slot),
            &*self.catalog.get().await?,
            today,
        ))
    }

    async fn boss_of(&self, board: &Board) -> Result<Option<pb::BossRun>, Error> {
        let catalog = self.catalog.get().await?;
        Ok(board.boss.as_ref().map(|b| proto::boss_run(b, &catalog)))
    }

    /// Closes the ended days of every due board, `batch` boards per transaction, until none is
    /// due. Shared by CloseDueDays and the scheduled job.
    pub(crate) async fn close_due(&self, batch: i64) -> Result<(i64, CloseTally), Error> {
        let catalog = self.catalog.get().await?;
        let now = self.clock.now();
        let mut tally = CloseTally::default();
        let mut boards = 0;
        let mut stuck = Vec::new();
        // Boards the database refused to save: still due, so not picked again in this pass.
        let mut refused = Vec::new();
        loop {
            let due = self
                .repo
                .update_due(now, batch, &refused, |board| {
                    let closed = rules::tick(board, &catalog, &self.rules, &mut ids(), now);
                    // After a tick every ended day is closed, every cooldown over and every
                    // summary written, so the board is due later than `now`; one that is not
                    // would be picked again and again: stop after this pass and say so.
                    if rules::next_due(board) <= now {
                        stuck.push(board.key());
                    }
                    // Saved even when nothing changed, which recomputes its due time.
                    Some(closed)
                })
                .await?;
            // Only days that were saved count.
            for closed in &due.saved {
                tally.add(closed);
            }
            boards += due.saved.len() as i64;
            if due.saved.is_empty() && due.refused.is_empty() {
                break;
            }
            refused.extend(due.refused);
            if !stuck.is_empty() {
                tracing::error!(boards = ?stuck, "boards stay due after their day close");
                break;
            }
        }
        tally.record();
        Ok((boards, tally))
    }
}
