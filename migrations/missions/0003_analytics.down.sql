DROP MATERIALIZED VIEW mv_missions_v2_rewards;
DROP MATERIALIZED VIEW mv_missions_v2_adherence;
