//! Claims and effects: a succeeded run's reward granted once, an aura reward or a granted effect
//! started on the board.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    pub claim: Claim,
    /// The run was claimed before; this is the original claim and nothing was granted again.
    pub replayed: bool,
}

/// Claims a succeeded run's reward exactly once: run → claimed, slot → claimed (cooldown
/// starts), an aura reward is granted as an effect. A claimed run answers with its claim. The
/// reward is the one the run started with (the catalog's, for a run from before runs kept it).
pub fn claim(
    board: &mut Board,
    run_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<ClaimOutcome, Refusal> {
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        let run = board.run(run_id).ok_or_else(|| run_not_found(run_id))?;
        if let Some(original) = board.claims.iter().find(|claim| claim.run_id == run_id) {
            return Ok(ClaimOutcome {
                claim: original.clone(),
                replayed: true,
            });
        }
        if run.status != RunStatus::Succeeded {
            return Err(Refusal::precondition(
                "RUN_NOT_SUCCEEDED",
                format!(
                    "run {run_id} is {}: only a succeeded run can be claimed",
                    run.status.as_str()
                ),
            )
            .with("run_id", run_id)
            .with("status", run.status.as_str()));
        }
        let mission = catalog
            .mission(run.mission_id)
            .ok_or_else(|| mission_not_in_catalog(run.mission_id))?;
        let reward = run.reward.clone().unwrap_or_else(|| mission.reward.clone());
        let claim = grant_reward(
            board,
            run_id,
            ClaimSource::Mission,
            &mission.name,
            &reward,
            catalog,
            ids,
            now,
        )?;
        let cooldown_until = now + settings.cooldown;
        let run = board.run_mut(run_id).ok_or_else(|| run_not_found(run_id))?;
        run.status = RunStatus::Claimed;
        run.claim_id = Some(claim.claim_id);
        run.cooldown_until = Some(cooldown_until);
        run.updated_at = now;
        let slot_key = run.slot_key;
        let slot = board.slot_mut(slot_key);
        if slot.run_id == Some(run_id) {
            slot.state = SlotState::Claimed;
            slot.cooldown_until = Some(cooldown_until);
        }
        Ok(ClaimOutcome {
            claim,
            replayed: false,
        })
    })
}

/// Records the claim of `reward` for `run_id` (a mission run or the boss run), grants its aura
/// as an effect and tells the user. Refused, with nothing changed, when the aura is not in the
/// catalog: a reward is granted whole or not at all.
#[allow(clippy::too_many_arguments)]
pub(super) fn grant_reward(
    board: &mut Board,
    run_id: Uuid,
    source: ClaimSource,
    title: &str,
    reward: &Reward,
    catalog: &Catalog,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<Claim, Refusal> {
    let aura = reward
        .aura_id
        .map(|aura_id| {
            catalog.effect(aura_id).ok_or_else(|| {
                Refusal::precondition(
                    "EFFECT_NOT_IN_CATALOG",
                    format!("the reward's aura {aura_id} is not in the effect catalog"),
                )
                .with("effect_id", aura_id)
            })
        })
        .transpose()?;
    let claim = Claim {
        claim_id: ids.next_id(),
        run_id,
        source,
        claimed_at: now,
        reward: reward.clone(),
    };
    board.claims.push(claim.clone());
    if let Some(aura) = aura {
        start_effect(board, aura, ids, now);
    }
    communicate(
        board,
        CommunicationKind::System,
        format!(
            "Reward claimed for {title}: {} XP, {} coins.",
            reward.xp, reward.currency
        ),
        ids,
        now,
    );
    board.updated_at = now;
    Ok(claim)
}

/// Grants the catalog's effect `effect_id` to the board, active from `now` for its duration
/// (NOT_FOUND when the catalog has no such effect).
pub fn grant_effect(
    board: &mut Board,
    effect_id: Uuid,
    catalog: &Catalog,
    settings: &RuleSettings,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> Result<EffectInstance, Refusal> {
    let effect = catalog.effect(effect_id).ok_or_else(|| {
        Refusal::not_found(
            "EFFECT_NOT_FOUND",
            format!("the catalog has no effect {effect_id}"),
        )
        .at("effect_id")
        .with("effect_id", effect_id)
    })?;
    after_tick(board, catalog, settings, ids, now, |board, ids| {
        Ok(start_effect(board, effect, ids, now))
    })
}

/// A new instance of `effect` on the board, active from `now` for the effect's duration.
pub(super) fn start_effect(
    board: &mut Board,
    effect: &EffectDefinition,
    ids: &mut dyn Ids,
    now: DateTime<Utc>,
) -> EffectInstance {
    let instance = EffectInstance {
        effect_instance_id: ids.next_id(),
        effect_id: effect.effect_id,
        active_from: now,
        active_until: effect
            .duration_days
            .map(|days| now + chrono::Duration::days(i64::from(days))),
        consumed_at: None,
        protects_day: effect.protects_day(),
        payload_override: serde_json::Value::Object(serde_json::Map::new()),
    };
    board.effects.push(instance.clone());
    board.updated_at = now;
    instance
}
