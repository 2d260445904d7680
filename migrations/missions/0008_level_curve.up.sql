-- The level curve (seed 001's `min_level` requirements): the XP each level starts at. XP itself
-- lives in the ledger (each user's XP account); the coordinator reads the balance there and asks
-- missions which level it reaches. Level 1 starts at 0 XP and every next level needs strictly
-- more, without gaps in the numbering: SetLevelCurve validates that, and the CHECKs and the
-- deferred trigger below keep it true whatever writes the table.
CREATE TABLE missions_v2_levels (
    level  integer PRIMARY KEY CHECK (level BETWEEN 1 AND 100),
    min_xp bigint  NOT NULL CHECK (min_xp >= 0),
    name   text    NOT NULL DEFAULT '' CHECK (char_length(name) <= 200),
    CONSTRAINT missions_v2_levels_first_at_zero CHECK (level <> 1 OR min_xp = 0),
    CONSTRAINT missions_v2_levels_xp_unique UNIQUE (min_xp)
);

-- Checked at commit, so a curve is replaced whole inside one transaction.
CREATE FUNCTION missions_v2_levels_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM missions_v2_levels) AND (
        NOT EXISTS (SELECT 1 FROM missions_v2_levels WHERE level = 1)
        OR (SELECT max(level) FROM missions_v2_levels) <> (SELECT count(*) FROM missions_v2_levels)
        OR EXISTS (
            SELECT 1 FROM (
                SELECT min_xp, lag(min_xp) OVER (ORDER BY level) AS previous
                FROM missions_v2_levels
            ) s WHERE s.previous IS NOT NULL AND s.min_xp <= s.previous))
    THEN
        RAISE EXCEPTION 'the level curve must number levels 1..n with increasing min_xp'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER missions_v2_levels_curve
    AFTER INSERT OR UPDATE OR DELETE ON missions_v2_levels
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION missions_v2_levels_check();

INSERT INTO missions_v2_levels (level, min_xp, name) VALUES
    (1, 0, 'Newcomer'),
    (2, 100, 'Curious'),
    (3, 300, 'Regular'),
    (4, 600, 'Devoted'),
    (5, 1000, 'Confidant'),
    (6, 1500, 'Insider'),
    (7, 2100, 'Favourite'),
    (8, 2800, 'Muse'),
    (9, 3600, 'Legend'),
    (10, 4500, 'Diván');
