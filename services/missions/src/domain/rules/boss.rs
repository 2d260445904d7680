//! The boss run: linked to a goal task, its shield taken down by that task's progress (phase
//! 1), completed by a proof (phase 2), its reward claimed once.

use super::*;

/// Links the boss run to a goal task; progress on that task takes the shield down.
pub fn link_boss_task(
    board: &mut Board,
    task_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, _| {
        let boss = board.boss.as_mut().ok_or_else(no_boss)?;
        if boss.linked_task_id == Some(task_id) {
            return Ok(());
        }
        // Once the shield is down the link has done its work; moving it would change nothing.
        if boss.phase != 1 {
            return Err(Refusal::precondition(
                "BOSS_NOT_IN_PHASE_1",
                "the boss's shield is already down: its task can no longer change",
            )
            .with("phase", boss.phase));
        }
        boss.linked_task_id = Some(task_id);
        boss.linked_at = Some(now);
        board.updated_at = now;
        Ok(())
    })
}

/// Progress on a task: `amount` off the shield when it is the boss's linked task and the boss is
/// in phase 1; at 0 the boss enters phase 2 (a system communication says so).
pub fn damage_boss(
    board: &mut Board,
    task_id: Uuid,
    amount: i32,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if amount <= 0 {
        return Err(Refusal::invalid(
            "amount",
            "AMOUNT_NOT_POSITIVE",
            format!("the boss takes a positive amount of damage, not {amount}"),
        ));
    }
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let boss = board.boss.as_mut().ok_or_else(no_boss)?;
        if boss.linked_task_id != Some(task_id) {
            return Err(Refusal::precondition(
                "TASK_NOT_LINKED",
                format!("task {task_id} is not the boss's linked task"),
            )
            .at("task_id")
            .with("task_id", task_id));
        }
        // Progress keeps coming after the shield is down; it simply has nothing left to hit.
        if boss.phase != 1 {
            return Ok(());
        }
        // Damage beyond the shield's range takes it all; none is negative.
        let damage = i16::try_from(amount.max(0)).unwrap_or(i16::MAX);
        boss.shield_current = boss.shield_current.saturating_sub(damage).max(0);
        if boss.shield_current == 0 {
            boss.phase = 2;
            boss.phase2_ready = true;
            communicate(
                board,
                CommunicationKind::System,
                "The boss's shield is down: phase 2 begins. Submit your proof to defeat it."
                    .to_owned(),
                ids,
                now,
            );
        }
        board.updated_at = now;
        Ok(())
    })
}

/// Phase 2's proof completes the boss (phase 1: FAILED_PRECONDITION).
pub fn submit_boss_proof(
    board: &mut Board,
    proof: &str,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if proof.trim().is_empty() {
        return Err(Refusal::invalid(
            "proof",
            "PROOF_MISSING",
            "a proof is needed to defeat the boss",
        ));
    }
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let boss = board.boss.as_mut().ok_or_else(no_boss)?;
        if boss.completed_at.is_some() {
            // The same proof again is a retry; another one would rewrite history.
            return if boss.phase2_proof.as_deref() == Some(proof) {
                Ok(())
            } else {
                Err(Refusal::precondition(
                    "BOSS_ALREADY_COMPLETED",
                    "the boss was already defeated with another proof",
                ))
            };
        }
        if boss.phase != 2 {
            return Err(Refusal::precondition(
                "BOSS_NOT_IN_PHASE_2",
                "the boss's shield is still up: a proof is accepted in phase 2 only",
            )
            .with("phase", boss.phase)
            .with("shield_current", boss.shield_current));
        }
        boss.phase2_proof = Some(proof.to_owned());
        boss.phase2_submitted_at = Some(now);
        boss.completed_at = Some(now);
        communicate(
            board,
            CommunicationKind::System,
            "Boss defeated! Claim its reward.".to_owned(),
            ids,
            now,
        );
        board.updated_at = now;
        Ok(())
    })
}

/// Claims the completed boss's reward exactly once (a second claim answers with the first).
pub fn claim_boss(
    board: &mut Board,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<ClaimOutcome, Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let boss = board.boss.as_ref().ok_or_else(no_boss)?;
        let boss_run_id = boss.boss_run_id;
        if let Some(original) = board
            .claims
            .iter()
            .find(|claim| claim.run_id == boss_run_id)
        {
            return Ok(ClaimOutcome {
                claim: original.clone(),
                replayed: true,
            });
        }
        if boss.completed_at.is_none() {
            return Err(Refusal::precondition(
                "BOSS_NOT_COMPLETED",
                "the boss is not defeated yet: nothing to claim",
            )
            .with("phase", boss.phase));
        }
        let definition = catalog.boss(boss.boss_id).ok_or_else(|| {
            Refusal::precondition(
                "BOSS_NOT_IN_CATALOG",
                format!("boss {} is not in the catalog", boss.boss_id),
            )
            .with("boss_id", boss.boss_id)
        })?;
        let claim = grant_reward(
            board,
            boss_run_id,
            ClaimSource::Boss,
            &definition.name,
            &definition.reward,
            catalog,
            ids,
            now,
        )?;
        board.boss.as_mut().ok_or_else(no_boss)?.claim_id = Some(claim.claim_id);
        Ok(ClaimOutcome {
            claim,
            replayed: false,
        })
    })
}
