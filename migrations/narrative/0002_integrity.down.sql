ALTER TABLE experience_progress
    DROP CONSTRAINT experience_progress_has_components,
    DROP CONSTRAINT experience_progress_started,
    DROP CONSTRAINT experience_progress_sequences;
ALTER TABLE user_decisions DROP CONSTRAINT user_decisions_of_fragment;
ALTER TABLE decisions DROP CONSTRAINT decisions_of_fragment;
DROP TRIGGER decisions_acyclic ON decisions;
DROP FUNCTION decisions_acyclic();
