-- Durable sagas (services/coordinator/src/saga): one row per saga with its cached state and its
-- lease, an append-only log of what happened to it, and the coordinator's own event stream
-- (phoenix_runtime::stream) that the sagas' on-commit events are appended to.

CREATE TABLE sagas (
    saga_id            uuid        PRIMARY KEY,
    saga_type          text        NOT NULL CHECK (saga_type <> ''),
    definition_version integer     NOT NULL CHECK (definition_version > 0),
    -- The caller's idempotency key, scoped by user ('' when the saga has none), and the
    -- SHA-256 fingerprint of the request it was first sent with.
    key_scope          text        NOT NULL,
    idempotency_key    text        NOT NULL CHECK (idempotency_key <> ''),
    fingerprint        bytea       NOT NULL CHECK (length(fingerprint) = 32),
    user_id            text        NOT NULL,
    input              jsonb       NOT NULL,
    -- W3C trace context of the call that started it: every step continues this trace.
    traceparent        text        NOT NULL DEFAULT '',
    tracestate         text        NOT NULL DEFAULT '',
    -- Cached from the log (the log wins): what listing filters on.
    state              text        NOT NULL
        CHECK (state IN ('RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'STUCK')),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    deadline_at        timestamptz NOT NULL,
    finished_at        timestamptz,
    -- The lease: who drives the saga, until when, and its generation. Every log append checks
    -- the writer's generation, so a stale owner's writes are refused.
    owner_id           uuid        NOT NULL,
    lease_generation   bigint      NOT NULL CHECK (lease_generation > 0),
    lease_expires_at   timestamptz NOT NULL,
    -- Set by CancelSaga; the owner compensates when it sees it.
    cancel_requested   boolean     NOT NULL DEFAULT false,
    CONSTRAINT sagas_caller_key UNIQUE (key_scope, idempotency_key),
    CONSTRAINT sagas_finished CHECK ((finished_at IS NOT NULL) = (state IN ('COMPLETED', 'COMPENSATED')))
)
-- Every step transition renews the lease: room on the page, and no index on the lease or
-- update columns, keep those updates HOT (no index entry written).
WITH (fillfactor = 70);
-- Recovery looks for expired leases among the active sagas (the sagas in flight: few).
CREATE INDEX sagas_active ON sagas (saga_id) WHERE state IN ('RUNNING', 'COMPENSATING');
CREATE INDEX sagas_state_created ON sagas (state, created_at DESC, saga_id DESC);
CREATE INDEX sagas_type_created ON sagas (saga_type, created_at DESC, saga_id DESC);
CREATE INDEX sagas_user_created ON sagas (user_id, created_at DESC, saga_id DESC);
CREATE INDEX sagas_created ON sagas (created_at DESC, saga_id DESC);

CREATE TABLE saga_log (
    saga_id     uuid        NOT NULL REFERENCES sagas (saga_id),
    seq         bigint      NOT NULL CHECK (seq > 0),
    generation  bigint      NOT NULL CHECK (generation > 0),
    kind        text        NOT NULL CHECK (kind IN (
        'started', 'step_succeeded', 'step_attempt_failed', 'step_refused', 'step_unknown',
        'cancelled', 'undo_succeeded', 'undo_attempt_failed', 'stuck', 'retry_requested',
        'adopted', 'completed', 'compensated')),
    step_index  integer     CHECK (step_index >= 0),
    step_name   text        NOT NULL DEFAULT '',
    attempt     integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    output      jsonb,
    -- {code, reason, message, retry_after_ms}
    failure     jsonb,
    direction   text        CHECK (direction IN ('forward', 'backward')),
    started_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (saga_id, seq)
);

-- The log is append-only: what happened cannot be rewritten.
CREATE FUNCTION saga_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'saga_log is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER saga_log_append_only BEFORE UPDATE OR DELETE ON saga_log
    FOR EACH ROW EXECUTE FUNCTION saga_log_append_only();
CREATE TRIGGER saga_log_no_truncate BEFORE TRUNCATE ON saga_log
    FOR EACH STATEMENT EXECUTE FUNCTION saga_log_append_only();

-- The coordinator's event stream, the layout of every context (phoenix_runtime::stream).
CREATE TABLE events (
    seq               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    event_id          uuid        NOT NULL UNIQUE,
    aggregate_type    text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL CHECK (aggregate_version > 0),
    event_type        text        NOT NULL,
    payload           bytea       NOT NULL,
    occurred_at       timestamptz NOT NULL,
    priority          smallint    NOT NULL DEFAULT 2,
    traceparent       text        NOT NULL DEFAULT '',
    tracestate        text        NOT NULL DEFAULT '',
    correlation_id    text        NOT NULL DEFAULT '',
    txid              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_version
        UNIQUE (tenant_id, aggregate_type, aggregate_id, aggregate_version)
);
CREATE INDEX events_txid ON events (txid);
CREATE TABLE event_positions (
    position  bigint PRIMARY KEY,
    seq       bigint NOT NULL UNIQUE,
    tenant_id uuid   NOT NULL
);
CREATE INDEX event_positions_tenant ON event_positions (tenant_id, position);
CREATE TABLE event_sequencer (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_position bigint  NOT NULL,
    from_txid     xid8    NOT NULL,
    open_txids    xid8[]  NOT NULL DEFAULT '{}'
);
INSERT INTO event_sequencer VALUES (true, 1, '1', '{}');
