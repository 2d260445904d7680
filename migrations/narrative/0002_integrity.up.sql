-- Rules the service keeps, held by the database too.
--
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

-- A user's decision is one of the fragment's own decisions (and a decision that users took
-- cannot move to another fragment).
ALTER TABLE decisions ADD CONSTRAINT decisions_of_fragment UNIQUE (id, fragment_id);
ALTER TABLE user_decisions ADD CONSTRAINT user_decisions_of_fragment
    FOREIGN KEY (decision_id, fragment_id) REFERENCES decisions (id, fragment_id);

-- Experience progress as the domain keeps it: completed sequences are positive (at most 50
-- of them); an experience is started exactly when it has a start time, and a started or
-- completed one has completed components.
ALTER TABLE experience_progress
    ADD CONSTRAINT experience_progress_sequences CHECK (
        array_position(completed_sequences, NULL) IS NULL
        AND 0 < ALL (completed_sequences)
        AND cardinality(completed_sequences) <= 50),
    ADD CONSTRAINT experience_progress_started CHECK ((status = 'not_started') = (started_at IS NULL)),
    ADD CONSTRAINT experience_progress_has_components CHECK (
        status NOT IN ('started', 'completed') OR cardinality(completed_sequences) > 0);
