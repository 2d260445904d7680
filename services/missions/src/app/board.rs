//! The board use cases: every mutating one is a `Missions::change` of one board under its
//! lock (the rules tick first, so days that ended are closed before the call is judged); reads
//! show the board as of now without writing it.

use chrono_tz::Tz;
use phoenix_directory_client::Outage;
use phoenix_runtime::{Error, Refusal};
use uuid::Uuid;

use super::{Missions, Shown, ids};
use crate::domain::board::{BoardKey, DayOutcome, EffectInstance, SlotKey};
use crate::domain::rules::{self, ClaimOutcome, ClosedDay, HeartbeatOutcome};
use crate::error::{board_not_found, user_has_no_board};
use crate::metrics;
use crate::store::Saved;

/// What day closes did, for the metrics and CloseDueDays.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CloseTally {
    /// Boards saved (CloseDueDays).
    pub boards: i64,
    pub days: i64,
    pub petals_lost: i64,
    pub protected_days: i64,
    pub runs_failed: i64,
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

    /// Counts `closed` in the metrics.
    fn record(closed: &[ClosedDay]) -> Self {
        let mut tally = Self::default();
        tally.add(closed);
        tally.count();
        tally
    }

    fn count(&self) {
        metrics::days_closed(
            u64::try_from(self.petals_lost).unwrap_or(0),
            u64::try_from(self.protected_days).unwrap_or(0),
        );
    }
}

/// How stale a user CreateBoard accepts while the directory is down: a board opened for a user
/// the directory knew minutes ago harms no one, and opening boards survives a short outage.
const BOARD_USER_STALENESS: Outage = Outage::StaleUpTo(std::time::Duration::from_secs(600));

impl Missions {
    /// The zone a new board gets: the one asked for, else the user's in the directory. With
    /// the directory configured the user must exist there (FAILED_PRECONDITION
    /// `USER_NOT_FOUND`); without it a zone is required.
    async fn board_zone(&self, key: &BoardKey, asked: Option<Tz>) -> Result<Tz, Error> {
        let Some(directory) = &self.directory else {
            return asked.ok_or_else(|| {
                Refusal::invalid(
                    "time_zone",
                    "REQUIRED",
                    "is required: an IANA time zone such as Europe/Madrid",
                )
                .into()
            });
        };
        let user = directory
            .existing_user(key.user_id, BOARD_USER_STALENESS)
            .await?;
        // The directory only stores zones it validated; a zone this build does not know falls
        // back to UTC rather than refusing a board the user cannot fix.
        Ok(asked.unwrap_or_else(|| user.time_zone.parse().unwrap_or(Tz::UTC)))
    }

    /// Opens the user's board for the season, or answers the existing one (`false`) when it is
    /// in the same zone; another zone is ALREADY_EXISTS (only SetTimeZone moves a board).
    /// `time_zone: None` takes the user's zone from the directory for a new board, and answers
    /// an existing board whatever its zone (a retry after SetTimeZone). The directory is asked
    /// only when the board does not exist yet, so a replay needs no directory.
    pub async fn create_board(
        &self,
        key: &BoardKey,
        time_zone: Option<Tz>,
    ) -> Result<(Shown, bool), Error> {
        let replay = |board: &crate::domain::board::Board| match time_zone {
            Some(asked) => rules::replay_new_board(board, asked),
            None => Ok(()),
        };
        if let Some(board) = self.repo.load(key).await? {
            replay(&board)?;
            let catalog = self.catalog.get().await?;
            let now = self.clock.now();
            return Ok((
                Shown {
                    board,
                    catalog,
                    now,
                },
                false,
            ));
        }
        let zone = self.board_zone(key, time_zone).await?;
        let catalog = self.catalog.get().await?;
        let now = self.clock.now();
        let settings = self.rules.clone();
        let (board, created) = self
            .repo
            .update(key, |current| {
                Ok(match current {
                    // Opened by a concurrent request since the look above.
                    Some(board) => {
                        replay(&board)?;
                        Saved::Keep((board, false))
                    }
                    None => {
                        let board =
                            rules::new_board(key, zone, &catalog, &settings, &mut ids(), now)?;
                        Saved::Write(board.clone(), (board, true))
                    }
                })
            })
            .await?;
        Ok((
            Shown {
                board,
                catalog,
                now,
            },
            created,
        ))
    }

    /// The board as of now (days that ended closed, cooldowns over, budgets back) without
    /// writing it: a read never takes the board's lock; the next write or day close saves it.
    pub async fn board(&self, key: &BoardKey) -> Result<Shown, Error> {
        let mut board = self
            .repo
            .load(key)
            .await?
            .ok_or_else(|| board_not_found(key))?;
        let now = self.clock.now();
        let catalog = self.catalog.get().await?;
        rules::tick(&mut board, &catalog, &self.rules, &mut ids(), now);
        Ok(Shown {
            board,
            catalog,
            now,
        })
    }

    /// Moves every board of the user to `time_zone`; answers how many. Each board changes on
    /// its own (a retry finishes the rest); days that ended under the old zone are closed
    /// first, so the change never reopens or skips a closed date.
    pub async fn set_time_zone(&self, user_id: Uuid, time_zone: Tz) -> Result<usize, Error> {
        let keys = self.repo.keys_of_user(user_id).await?;
        if keys.is_empty() {
            return Err(user_has_no_board(user_id).into());
        }
        for key in &keys {
            self.change(key, |board, catalog, settings, now| {
                let closed = rules::tick(board, catalog, settings, &mut ids(), now);
                CloseTally::record(&closed);
                rules::set_time_zone(board, time_zone, now);
                Ok(())
            })
            .await?;
        }
        Ok(keys.len())
    }

    /// Starts a run of the slot's offered mission.
    pub async fn activate(&self, key: &BoardKey, slot: SlotKey) -> Result<Shown, Error> {
        let (shown, _) = self
            .change(key, |board, catalog, settings, now| {
                rules::activate(board, slot, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(shown)
    }

    /// Today's heartbeat of a run (a second one today answers the first).
    pub async fn heartbeat(&self, key: &BoardKey, run_id: Uuid) -> Result<HeartbeatOutcome, Error> {
        let (_, outcome) = self
            .change(key, |board, catalog, settings, now| {
                rules::heartbeat(board, run_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        metrics::heartbeat(outcome.replayed);
        Ok(outcome)
    }

    /// A run's progress; answers whether the run succeeded with it.
    pub async fn record_progress(
        &self,
        key: &BoardKey,
        run_id: Uuid,
        current: i32,
    ) -> Result<(Shown, bool), Error> {
        self.change(key, |board, catalog, settings, now| {
            rules::record_progress(board, run_id, current, catalog, settings, &mut ids(), now)
        })
        .await
    }

    /// Replaces an idle slot's offer.
    pub async fn reroll(&self, key: &BoardKey, slot: SlotKey) -> Result<Shown, Error> {
        let (shown, _) = self
            .change(key, |board, catalog, settings, now| {
                rules::reroll(board, slot, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(shown)
    }

    /// Claims a succeeded run's reward (a second claim answers the first).
    pub async fn claim(&self, key: &BoardKey, run_id: Uuid) -> Result<ClaimOutcome, Error> {
        let (_, outcome) = self
            .change(key, |board, catalog, settings, now| {
                rules::claim(board, run_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        if outcome.replayed {
            metrics::duplicate_claim();
        }
        Ok(outcome)
    }

    /// Links the boss run to a goal task.
    pub async fn link_boss_task(&self, key: &BoardKey, task_id: Uuid) -> Result<Shown, Error> {
        let (shown, ()) = self
            .change(key, |board, catalog, settings, now| {
                rules::link_boss_task(board, task_id, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(shown)
    }

    /// Progress on the boss's linked task takes its shield down.
    pub async fn damage_boss(
        &self,
        key: &BoardKey,
        task_id: Uuid,
        amount: i32,
    ) -> Result<Shown, Error> {
        let (shown, ()) = self
            .change(key, |board, catalog, settings, now| {
                rules::damage_boss(board, task_id, amount, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(shown)
    }

    /// The phase 2 proof that completes the boss.
    pub async fn submit_boss_proof(&self, key: &BoardKey, proof: &str) -> Result<Shown, Error> {
        let (shown, ()) = self
            .change(key, |board, catalog, settings, now| {
                rules::submit_boss_proof(board, proof, catalog, settings, &mut ids(), now)
            })
            .await?;
        Ok(shown)
    }

    /// Claims the defeated boss's reward (a second claim answers the first).
    pub async fn claim_boss(&self, key: &BoardKey) -> Result<ClaimOutcome, Error> {
        let (_, outcome) = self
            .change(key, |board, catalog, settings, now| {
                rules::claim_boss(board, catalog, settings, &mut ids(), now)
            })
            .await?;
        if outcome.replayed {
            metrics::duplicate_claim();
        }
        Ok(outcome)
    }

    /// Grants the catalog's effect to the board.
    pub async fn grant_effect(
        &self,
        key: &BoardKey,
        effect_id: Uuid,
    ) -> Result<(Shown, EffectInstance), Error> {
        self.change(key, |board, catalog, settings, now| {
            rules::grant_effect(board, effect_id, catalog, settings, &mut ids(), now)
        })
        .await
    }

    /// Closes the board's ended days now; answers the board and the days it closed.
    pub async fn close_days(&self, key: &BoardKey) -> Result<(Shown, Vec<ClosedDay>), Error> {
        let (shown, closed) = self
            .change(key, |board, catalog, settings, now| {
                Ok(rules::tick(board, catalog, settings, &mut ids(), now))
            })
            .await?;
        CloseTally::record(&closed);
        Ok((shown, closed))
    }

    /// Closes the ended days of every due board, `batch` boards per transaction, until none is
    /// due. Shared by CloseDueDays and the scheduled job.
    pub async fn close_due(&self, batch: i64) -> Result<CloseTally, Error> {
        let catalog = self.catalog.get().await?;
        let now = self.clock.now();
        let mut tally = CloseTally::default();
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
            tally.boards += i64::try_from(due.saved.len()).unwrap_or(i64::MAX);
            if due.saved.is_empty() && due.refused.is_empty() {
                break;
            }
            refused.extend(due.refused);
            if !stuck.is_empty() {
                tracing::error!(boards = ?stuck, "boards stay due after their day close");
                break;
            }
        }
        tally.count();
        Ok(tally)
    }
}
