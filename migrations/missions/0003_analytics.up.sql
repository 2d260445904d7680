-- Missions v2 analytics (seed 000, §2.5): weekly adherence and rewards per user, refreshed
-- CONCURRENTLY (the unique indexes make that possible) so readers never wait for a refresh.
-- Weeks start on Monday. Adherence weeks are the user's local weeks, as the user lived them
-- (heartbeat and close dates are local dates already; completions are read in the board's time
-- zone); reward weeks are UTC weeks, as accounting counts them.

-- heartbeat_days: local dates with at least one heartbeat (on any run); protected_days and
-- petals_lost: day closes by outcome (one per run and date); runs_succeeded: runs that reached
-- their target that week, claimed or not.
CREATE MATERIALIZED VIEW mv_missions_v2_adherence AS
SELECT user_id, week,
       sum(heartbeat_days)::bigint AS heartbeat_days,
       sum(protected_days)::bigint AS protected_days,
       sum(petals_lost)::bigint    AS petals_lost,
       sum(runs_succeeded)::bigint AS runs_succeeded
FROM (
    SELECT b.user_id, date_trunc('week', h.heartbeat_date::timestamp)::date AS week,
           count(DISTINCT h.heartbeat_date) AS heartbeat_days,
           0 AS protected_days, 0 AS petals_lost, 0 AS runs_succeeded
    FROM missions_v2_heartbeat_log h
    JOIN missions_v2_slot_runs r ON r.run_id = h.run_id
    JOIN missions_v2_boards b ON b.board_id = r.board_id
    GROUP BY 1, 2
    UNION ALL
    SELECT b.user_id, date_trunc('week', d.local_date::timestamp)::date,
           0,
           count(*) FILTER (WHERE d.outcome = 'protected'),
           count(*) FILTER (WHERE d.outcome = 'petal_lost'),
           0
    FROM missions_v2_day_closes d
    JOIN missions_v2_slot_runs r ON r.run_id = d.run_id
    JOIN missions_v2_boards b ON b.board_id = r.board_id
    GROUP BY 1, 2
    UNION ALL
    SELECT b.user_id, date_trunc('week', r.completion_at AT TIME ZONE b.time_zone)::date,
           0, 0, 0, count(*)
    FROM missions_v2_slot_runs r
    JOIN missions_v2_boards b ON b.board_id = r.board_id
    WHERE r.status IN ('succeeded', 'claimed') AND r.completion_at IS NOT NULL
    GROUP BY 1, 2
) weeks
GROUP BY user_id, week;
CREATE UNIQUE INDEX mv_missions_v2_adherence_key ON mv_missions_v2_adherence (user_id, week);
CREATE INDEX mv_missions_v2_adherence_by_week ON mv_missions_v2_adherence (week, user_id);

-- What claims granted (mission and boss claims alike), per user and UTC week of the claim.
CREATE MATERIALIZED VIEW mv_missions_v2_rewards AS
SELECT user_id,
       date_trunc('week', claimed_at AT TIME ZONE 'UTC')::date AS week,
       sum(reward_xp)::bigint       AS xp_total,
       sum(reward_currency)::bigint AS currency_total,
       count(*)                     AS claims
FROM missions_v2_claims
GROUP BY 1, 2;
CREATE UNIQUE INDEX mv_missions_v2_rewards_key ON mv_missions_v2_rewards (user_id, week);
CREATE INDEX mv_missions_v2_rewards_by_week ON mv_missions_v2_rewards (week, user_id);
