-- Next-fragment links stay acyclic in the database too, not only in the service: a loop of
-- next fragments would walk (and unlock, and pay) forever. The trigger takes the catalog's
-- advisory lock (the one the service's upserts take), so two writers that each close half of
-- a loop run one after the other and the second one sees the first one's link; then it looks
-- for a path from the new next fragment back to the decision's own fragment.
CREATE FUNCTION decisions_acyclic() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    loops boolean;
BEGIN
    IF NEW.next_fragment_id IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('narrative.catalog'));
    WITH RECURSIVE reached(fragment_id) AS (
        SELECT NEW.next_fragment_id
        UNION
        SELECT d.next_fragment_id FROM decisions d JOIN reached r ON d.fragment_id = r.fragment_id
        WHERE d.next_fragment_id IS NOT NULL AND d.id <> NEW.id)
    SELECT EXISTS (SELECT 1 FROM reached WHERE fragment_id = NEW.fragment_id) INTO loops;
    IF loops THEN
        RAISE EXCEPTION 'decision % closes a loop of next fragments through %', NEW.id, NEW.fragment_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'decisions_acyclic';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER decisions_acyclic BEFORE INSERT OR UPDATE OF fragment_id, next_fragment_id
    ON decisions FOR EACH ROW EXECUTE FUNCTION decisions_acyclic();
