-- A row of a board belongs to that board for good. The writes upsert slots, runs, effects and
-- boss runs by their own id, so an imported board that reused another board's ids would take
-- those rows over (the other board left without its slots). These triggers refuse any update
-- that moves a row to another board, or a board to another user or season, whatever writes it.

CREATE FUNCTION missions_v2_refuse_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% row % belongs to another board; a row never moves between boards',
            TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'integrity_constraint_violation',
              CONSTRAINT = TG_TABLE_NAME || '_of_one_board',
              TABLE = TG_TABLE_NAME;
END
$$;

CREATE TRIGGER missions_v2_boards_of_one_board
    BEFORE UPDATE OF user_id, season_id ON missions_v2_boards
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id
                       OR OLD.season_id IS DISTINCT FROM NEW.season_id)
    EXECUTE FUNCTION missions_v2_refuse_move('board_id');

CREATE TRIGGER missions_v2_slots_of_one_board
    BEFORE UPDATE OF board_id ON missions_v2_slots
    FOR EACH ROW WHEN (OLD.board_id IS DISTINCT FROM NEW.board_id)
    EXECUTE FUNCTION missions_v2_refuse_move('slot_id');

CREATE TRIGGER missions_v2_slot_runs_of_one_board
    BEFORE UPDATE OF board_id ON missions_v2_slot_runs
    FOR EACH ROW WHEN (OLD.board_id IS DISTINCT FROM NEW.board_id)
    EXECUTE FUNCTION missions_v2_refuse_move('run_id');

CREATE TRIGGER missions_v2_effects_of_one_board
    BEFORE UPDATE OF board_id ON missions_v2_effects
    FOR EACH ROW WHEN (OLD.board_id IS DISTINCT FROM NEW.board_id)
    EXECUTE FUNCTION missions_v2_refuse_move('effect_instance_id');

CREATE TRIGGER missions_v2_boss_runs_of_one_board
    BEFORE UPDATE OF board_id ON missions_v2_boss_runs
    FOR EACH ROW WHEN (OLD.board_id IS DISTINCT FROM NEW.board_id)
    EXECUTE FUNCTION missions_v2_refuse_move('boss_run_id');
