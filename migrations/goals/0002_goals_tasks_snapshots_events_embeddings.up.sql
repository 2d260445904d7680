-- The goals context (seed 002): goals, tasks, code snapshots, the append-only event log with
-- its export records, and embeddings. Users and courses are directory ids, never foreign keys.

-- pgvector lives in public (search_path is "goals, public"), shared by the database; the
-- embedded server creates it already, this covers any other server (it needs the right to).
CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;

CREATE TABLE goals (
    id                  uuid        PRIMARY KEY,
    user_id             uuid        NOT NULL,
    course_id           uuid,
    title               text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description         text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    status              text        NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    -- 1 low, 2 medium, 3 high, 4 critical: ordered as it sorts.
    priority            smallint    NOT NULL CHECK (priority BETWEEN 1 AND 4),
    task_count          integer     NOT NULL DEFAULT 0 CHECK (task_count >= 0),
    done_task_count     integer     NOT NULL DEFAULT 0
        CHECK (done_task_count BETWEEN 0 AND task_count),
    ai_generated        boolean     NOT NULL DEFAULT false,
    validation_criteria jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(validation_criteria) = 'object'),
    metadata            jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    started_at          timestamptz,
    completed_at        timestamptz,
    due_at              timestamptz,
    version             bigint      NOT NULL DEFAULT 1 CHECK (version > 0),
    CONSTRAINT goals_completed_stamped CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX goals_user_created ON goals (user_id, created_at, id);
CREATE INDEX goals_user_priority ON goals (user_id, priority DESC, created_at, id);
CREATE INDEX goals_course ON goals (course_id) WHERE course_id IS NOT NULL;

CREATE TABLE tasks (
    id                uuid        PRIMARY KEY,
    goal_id           uuid        NOT NULL REFERENCES goals (id),
    user_id           uuid        NOT NULL,
    title             text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description       text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    task_type         text        NOT NULL
        CHECK (task_type IN ('code', 'reading', 'exercise', 'quiz', 'project')),
    status            text        NOT NULL
        CHECK (status IN ('todo', 'in_progress', 'review', 'done', 'blocked')),
    priority          integer     NOT NULL CHECK (priority BETWEEN 0 AND 10000),
    -- Hundredths of an hour.
    estimated_hours   integer     CHECK (estimated_hours BETWEEN 0 AND 1000000),
    actual_hours      integer     CHECK (actual_hours BETWEEN 0 AND 1000000),
    validation_result jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(validation_result) = 'object'),
    ai_feedback       text        NOT NULL DEFAULT '' CHECK (char_length(ai_feedback) <= 10000),
    metadata          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz,
    version           bigint      NOT NULL DEFAULT 1 CHECK (version > 0),
    CONSTRAINT tasks_done_stamped CHECK ((status = 'done') = (completed_at IS NOT NULL))
);
CREATE INDEX tasks_goal ON tasks (goal_id, priority, created_at, id);
CREATE INDEX tasks_user_status ON tasks (user_id, status, created_at);

CREATE TABLE code_snapshots (
    id                  uuid        PRIMARY KEY,
    task_id             uuid        NOT NULL REFERENCES tasks (id),
    user_id             uuid        NOT NULL,
    file_path           text        NOT NULL CHECK (char_length(file_path) BETWEEN 1 AND 1000),
    language            text        NOT NULL CHECK (language ~ '^[a-z0-9+#._-]{1,50}$'),
    content             text        NOT NULL CHECK (octet_length(content) <= 262144),
    content_sha256      text        NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    validation_passed   boolean,
    -- Hundredths of a point, 0.00 to 100.00.
    validation_score    integer     CHECK (validation_score BETWEEN 0 AND 10000),
    validation_feedback text        NOT NULL DEFAULT '' CHECK (char_length(validation_feedback) <= 10000),
    issues_found        jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(issues_found) = 'array'),
    metadata            jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at          timestamptz NOT NULL
);
CREATE INDEX code_snapshots_task ON code_snapshots (task_id, created_at DESC, id DESC);
CREATE INDEX code_snapshots_task_file ON code_snapshots (task_id, file_path, created_at DESC, id DESC);
CREATE INDEX code_snapshots_user_language ON code_snapshots (user_id, language, created_at);

-- The event log (shared/runtime/src/stream/mod.rs has the layout): every change to goals,
-- tasks and snapshots, appended in the change's transaction. It is append-only: the triggers
-- below refuse UPDATE, DELETE and TRUNCATE, so what the export records lives in event_exports.
CREATE TABLE request_keys (
    scope           text        NOT NULL,
    idempotency_key text        NOT NULL,
    method          text        NOT NULL,
    fingerprint     bytea       NOT NULL,
    outcome         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX request_keys_expires_at ON request_keys (expires_at);

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
CREATE INDEX events_aggregate ON events (aggregate_type, aggregate_id, aggregate_version);
CREATE INDEX events_occurred_at ON events (occurred_at);
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

CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the goals event log is append-only: % of events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation', HINT = 'export state lives in event_exports';
END
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Which file each event was exported to (the seed's processed_at / parquet_path), kept apart
-- so the log itself never changes. One row per event: an event is exported once.
CREATE TABLE event_exports (
    position     bigint      PRIMARY KEY REFERENCES event_positions (position),
    parquet_path text        NOT NULL CHECK (parquet_path <> ''),
    exported_at  timestamptz NOT NULL
);
CREATE INDEX event_exports_path ON event_exports (parquet_path);

-- Embedding models, each with its dimension; registering one creates its HNSW index on
-- embeddings, an expression index on embedding::vector(dimensions) limited to its rows.
CREATE TABLE embedding_models (
    id         integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'),
    dimensions integer     NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL
);

CREATE TABLE embeddings (
    id          uuid        PRIMARY KEY,
    model_id    integer     NOT NULL REFERENCES embedding_models (id),
    entity_type text        NOT NULL CHECK (entity_type ~ '^[a-z0-9_]{1,50}$'),
    entity_id   text        NOT NULL CHECK (char_length(entity_id) BETWEEN 1 AND 100),
    chunk       integer     NOT NULL DEFAULT 0 CHECK (chunk BETWEEN 0 AND 100000),
    user_id     uuid        NOT NULL,
    content     text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 100000),
    -- Untyped, so models of several dimensions share the table; the model's dimension is
    -- checked by the service and by embeddings_dimension_matches below.
    embedding   vector      NOT NULL,
    metadata    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT embeddings_entity UNIQUE (model_id, entity_type, entity_id, chunk)
);
CREATE INDEX embeddings_user ON embeddings (model_id, user_id);
CREATE INDEX embeddings_entity_any_model ON embeddings (entity_type, entity_id);

CREATE FUNCTION embeddings_dimension_matches() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    expected integer;
BEGIN
    SELECT dimensions INTO expected FROM embedding_models WHERE id = NEW.model_id;
    IF vector_dims(NEW.embedding) <> expected THEN
        RAISE EXCEPTION 'embedding of % dimensions for a model of %',
            vector_dims(NEW.embedding), expected USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER embeddings_dimension BEFORE INSERT OR UPDATE OF embedding, model_id ON embeddings
    FOR EACH ROW EXECUTE FUNCTION embeddings_dimension_matches();
