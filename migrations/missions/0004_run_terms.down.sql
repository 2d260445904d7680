-- The view as 0002 made it, before the columns it reads go.
CREATE OR REPLACE VIEW missions_v2_board_documents AS
SELECT b.user_id, b.season_id, b.board_id, jsonb_build_object(
    'boardId', b.board_id,
    'userId', b.user_id,
    'seasonId', b.season_id,
    'timeZone', b.time_zone,
    'generatedAt', missions_v2_json_time(b.generated_at),
    'updatedAt', missions_v2_json_time(b.updated_at),
    'slots', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'slotId', s.slot_id,
                   'slotKey', s.slot_key,
                   'state', s.state,
                   'missionId', s.mission_id,
                   'runId', s.run_id,
                   'petalsTotal', s.petals_total,
                   'petalsRemaining', s.petals_remaining,
                   'cooldownUntil', missions_v2_json_time(s.cooldown_until),
                   'rerollRemaining', s.reroll_remaining,
                   'rerollUsedAt', missions_v2_json_time(s.reroll_used_at),
                   'rerollResetAt', missions_v2_json_time(s.reroll_reset_at),
                   'offers', s.offers)
                 ORDER BY array_position(ARRAY['main', 'hunt', 'skill'], s.slot_key))
        FROM missions_v2_slots s WHERE s.board_id = b.board_id), '[]'),
    'runs', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'runId', r.run_id,
                   'slotKey', r.slot_key,
                   'missionId', r.mission_id,
                   'status', r.status,
                   'selectedAt', missions_v2_json_time(r.selected_at),
                   'updatedAt', missions_v2_json_time(r.updated_at),
                   'expiresAt', missions_v2_json_time(r.expires_at),
                   'cooldownUntil', missions_v2_json_time(r.cooldown_until),
                   'completionAt', missions_v2_json_time(r.completion_at),
                   'failureAt', missions_v2_json_time(r.failure_at),
                   'claimId', r.claim_id,
                   'progress', (
                       SELECT jsonb_build_object(
                                  'current', p.current,
                                  'target', p.target,
                                  'unit', p.unit,
                                  'updatedAt', missions_v2_json_time(p.updated_at))
                       FROM missions_v2_mission_progress p WHERE p.run_id = r.run_id),
                   'heartbeats', coalesce((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'heartbeatId', h.heartbeat_id,
                                  'date', h.heartbeat_date,
                                  'petalsBefore', h.petals_before,
                                  'petalsAfter', h.petals_after,
                                  'createdAt', missions_v2_json_time(h.created_at))
                                ORDER BY h.position)
                       FROM missions_v2_heartbeat_log h WHERE h.run_id = r.run_id), '[]'),
                   'days', coalesce((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'date', d.local_date,
                                  'outcome', d.outcome,
                                  'effectInstanceId', d.effect_instance_id,
                                  'petalsAfter', d.petals_after,
                                  'closedAt', missions_v2_json_time(d.closed_at))
                                ORDER BY d.local_date)
                       FROM missions_v2_day_closes d WHERE d.run_id = r.run_id), '[]'))
                 ORDER BY r.position)
        FROM missions_v2_slot_runs r WHERE r.board_id = b.board_id), '[]'),
    'boss', (
        SELECT jsonb_build_object(
                   'bossRunId', x.boss_run_id,
                   'bossId', x.boss_id,
                   'phase', x.phase,
                   'shieldCurrent', x.shield_current,
                   'shieldMax', x.shield_max,
                   'linkedTaskId', x.linked_task_id,
                   'linkedAt', missions_v2_json_time(x.linked_at),
                   'phase2Ready', x.phase2_ready,
                   'phase2Proof', x.phase2_proof,
                   'phase2SubmittedAt', missions_v2_json_time(x.phase2_submitted_at),
                   'completedAt', missions_v2_json_time(x.completed_at),
                   'claimId', x.claim_id)
        FROM missions_v2_boss_runs x WHERE x.board_id = b.board_id),
    'effects', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'effectInstanceId', e.effect_instance_id,
                   'effectId', e.effect_id,
                   'activeFrom', missions_v2_json_time(e.active_from),
                   'activeUntil', missions_v2_json_time(e.active_until),
                   'consumedAt', missions_v2_json_time(e.consumed_at),
                   'protectsDay', e.protects_day,
                   'payloadOverride', e.payload_override)
                 ORDER BY e.position)
        FROM missions_v2_effects e WHERE e.board_id = b.board_id), '[]'),
    'claims', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'claimId', c.claim_id,
                   'runId', c.run_id,
                   'source', c.source,
                   'claimedAt', missions_v2_json_time(c.claimed_at),
                   'reward', jsonb_build_object(
                       'xp', c.reward_xp,
                       'currency', c.reward_currency,
                       'items', c.reward_items,
                       'badgeId', c.reward_badge_id,
                       'auraId', c.reward_aura_id))
                 ORDER BY c.position)
        FROM missions_v2_claims c WHERE c.board_id = b.board_id), '[]'),
    'communications', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'communicationId', m.communication_id,
                   'kind', m.type,
                   'message', m.message,
                   'createdAt', missions_v2_json_time(m.created_at))
                 ORDER BY m.position)
        FROM missions_v2_communications m WHERE m.board_id = b.board_id), '[]'),
    'lastWeeklySummary', b.last_weekly_summary
) AS document
FROM missions_v2_boards b;

-- The snapshots lose the two keys too, so they still match the relational rows (the audit).
UPDATE missions_v2_state
SET state = jsonb_set(state, '{runs}', (
        SELECT coalesce(jsonb_agg(run - 'startDate' - 'reward' ORDER BY position), '[]')
        FROM jsonb_array_elements(state -> 'runs') WITH ORDINALITY AS r (run, position)))
WHERE state @? '$.runs[*] ? (exists(@.startDate) || exists(@.reward))';

ALTER TABLE missions_v2_slot_runs
    DROP CONSTRAINT missions_v2_slot_runs_reward_whole,
    DROP COLUMN start_date,
    DROP COLUMN reward_xp,
    DROP COLUMN reward_currency,
    DROP COLUMN reward_items,
    DROP COLUMN reward_badge_id,
    DROP COLUMN reward_aura_id;
