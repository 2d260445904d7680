DROP TABLE missions_v2_levels;
DROP FUNCTION missions_v2_levels_check();
