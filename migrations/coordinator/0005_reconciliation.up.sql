-- The reconciliation (services/coordinator/src/reconcile): each run compares the finished sagas
-- with the participants' state over gRPC; what it found is kept for operators, one row per run
-- and one per inconsistency. A run that could not finish (a participant unreachable) says why.

CREATE TABLE reconciliation_runs (
    run_id          uuid        PRIMARY KEY,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL CHECK (finished_at >= started_at),
    -- Sagas finished (or stuck) since this time were checked; NULL: every one.
    checked_since   timestamptz,
    sagas_checked   bigint      NOT NULL CHECK (sagas_checked >= 0),
    inconsistencies integer     NOT NULL CHECK (inconsistencies >= 0),
    stuck           integer     NOT NULL CHECK (stuck >= 0),
    error           text
);
CREATE INDEX reconciliation_runs_started ON reconciliation_runs (started_at DESC);

CREATE TABLE reconciliation_findings (
    run_id     uuid    NOT NULL REFERENCES reconciliation_runs (run_id),
    seq        integer NOT NULL CHECK (seq > 0),
    -- The saga it is about; NULL for a finding about many (a user's holdings).
    saga_id    uuid,
    saga_type  text    NOT NULL,
    check_name text    NOT NULL CHECK (check_name <> ''),
    detail     text    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
