-- rules::next_due counts every time-driven change of a board now, not only the day closes of its
-- active runs: a slot's cooldown end, a reroll budget's return and the next weekly summary too.
-- So every board has a due time. Boards saved without one (nothing was running) are due at once:
-- the next batch day close ticks them and saves their real due time.
UPDATE missions_v2_state SET due_at = now() WHERE due_at IS NULL;

COMMENT ON COLUMN missions_v2_state.due_at IS
    'rules::next_due: when the board next needs a tick (a day to close, a cooldown end, a reroll budget back, a weekly summary).';
