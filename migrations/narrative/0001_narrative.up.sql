-- The narrative context (seed 001): fragments, their decisions, experiences and reaction
-- rewards (the catalog), each user's progress through them, idempotency keys and the event
-- stream (shared/runtime/src/stream/mod.rs). User, item, achievement and mission ids belong to
-- other contexts: they are kept as plain values, never as foreign keys.
COMMENT ON SCHEMA narrative IS 'Owned by the Phoenix narrative service. No other service reads or writes it.';

CREATE TABLE experiences (
    id          uuid        PRIMARY KEY,
    title       text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    -- Rewards of completing it (the domain's Rewards as JSON).
    rewards     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rewards) = 'object'),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE fragments (
    id                  uuid        PRIMARY KEY,
    title               text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    content             text        NOT NULL DEFAULT '' CHECK (char_length(content) <= 65536),
    preview             text        NOT NULL DEFAULT '' CHECK (char_length(preview) <= 1000),
    vip_exclusive       boolean     NOT NULL DEFAULT false,
    experience_id       uuid        REFERENCES experiences (id),
    experience_sequence integer     CHECK (experience_sequence > 0),
    requirements        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(requirements) = 'object'),
    rewards             jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rewards) = 'object'),
    completes_level     integer     NOT NULL DEFAULT 0 CHECK (completes_level >= 0),
    -- Engagement metrics, kept by visits and decisions.
    view_count          bigint      NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    visitor_count       bigint      NOT NULL DEFAULT 0 CHECK (visitor_count >= 0),
    completion_count    bigint      NOT NULL DEFAULT 0 CHECK (completion_count >= 0),
    time_spent_ms       bigint      NOT NULL DEFAULT 0 CHECK (time_spent_ms >= 0),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT fragments_experience CHECK ((experience_id IS NULL) = (experience_sequence IS NULL))
);
-- Seed 001, 6.1.3: idx_fragments_experience and idx_fragments_vip.
CREATE INDEX fragments_experience ON fragments (experience_id, experience_sequence)
    WHERE experience_id IS NOT NULL;
CREATE INDEX fragments_vip ON fragments (vip_exclusive) WHERE vip_exclusive;

CREATE TABLE decisions (
    id               uuid    PRIMARY KEY,
    fragment_id      uuid    NOT NULL REFERENCES fragments (id),
    label            text    NOT NULL CHECK (char_length(label) BETWEEN 1 AND 200),
    next_fragment_id uuid    REFERENCES fragments (id),
    rewards          jsonb   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rewards) = 'object'),
    position         integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    CONSTRAINT decisions_not_to_itself CHECK (next_fragment_id IS DISTINCT FROM fragment_id)
);
CREATE INDEX decisions_fragment ON decisions (fragment_id, position);
CREATE INDEX decisions_next ON decisions (next_fragment_id) WHERE next_fragment_id IS NOT NULL;

CREATE TABLE experience_components (
    experience_id uuid    NOT NULL REFERENCES experiences (id) ON DELETE CASCADE,
    sequence      integer NOT NULL CHECK (sequence > 0),
    fragment_id   uuid    REFERENCES fragments (id),
    mission_id    text    CHECK (char_length(mission_id) BETWEEN 1 AND 64),
    -- Seed 001, 6.1.3: idx_experience_components_composite.
    PRIMARY KEY (experience_id, sequence),
    CONSTRAINT experience_components_one_target CHECK ((fragment_id IS NULL) <> (mission_id IS NULL)),
    CONSTRAINT experience_components_fragment_once UNIQUE (experience_id, fragment_id),
    CONSTRAINT experience_components_mission_once UNIQUE (experience_id, mission_id)
);

-- One row per user who did anything here: the version of the user's event stream (aggregate
-- "narrative_user") and the last activity. Every change of a user's progress locks this row.
CREATE TABLE user_states (
    user_id          uuid        PRIMARY KEY,
    version          bigint      NOT NULL CHECK (version >= 0),
    last_activity_at timestamptz NOT NULL
);

-- A user's progress on a fragment. Its status is derived, never written: 'completed' (a
-- decision taken), else 'visited', else 'unlocked', else 'locked' (locked again).
CREATE TABLE fragment_progress (
    user_id          uuid        NOT NULL,
    fragment_id      uuid        NOT NULL REFERENCES fragments (id),
    completed        boolean     NOT NULL DEFAULT false,
    status           text        GENERATED ALWAYS AS (CASE WHEN completed THEN 'completed'
                                     WHEN visit_count > 0 THEN 'visited'
                                     WHEN unlocked_at IS NOT NULL THEN 'unlocked'
                                     ELSE 'locked' END) STORED,
    unlocked_at      timestamptz,
    visit_count      bigint      NOT NULL DEFAULT 0 CHECK (visit_count >= 0),
    time_spent_ms    bigint      NOT NULL DEFAULT 0 CHECK (time_spent_ms >= 0),
    first_visit_at   timestamptz,
    last_visit_at    timestamptz,
    last_activity_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, fragment_id),
    CONSTRAINT fragment_progress_visits CHECK ((visit_count = 0) = (first_visit_at IS NULL))
);
-- Seed 001, 6.1.3: idx_user_progress_composite.
CREATE INDEX fragment_progress_user_status ON fragment_progress (user_id, status, last_activity_at);

-- The decision a user took on a fragment: at most one per user and fragment.
CREATE TABLE user_decisions (
    user_id     uuid        NOT NULL,
    fragment_id uuid        NOT NULL REFERENCES fragments (id),
    decision_id uuid        NOT NULL REFERENCES decisions (id),
    -- The rewards answered when it was taken (a revert answers these).
    rewards     jsonb       NOT NULL CHECK (jsonb_typeof(rewards) = 'object'),
    level       integer     NOT NULL DEFAULT 0 CHECK (level >= 0),
    taken_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, fragment_id)
);

CREATE TABLE experience_progress (
    user_id             uuid        NOT NULL,
    experience_id       uuid        NOT NULL REFERENCES experiences (id),
    status              text        NOT NULL CHECK (status IN ('not_started', 'started', 'completed', 'abandoned')),
    unlocked_at         timestamptz,
    completed_sequences integer[]   NOT NULL DEFAULT '{}',
    started_at          timestamptz,
    completed_at        timestamptz,
    abandoned_at        timestamptz,
    last_activity_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, experience_id),
    CONSTRAINT experience_progress_completed CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CONSTRAINT experience_progress_abandoned CHECK ((status = 'abandoned') = (abandoned_at IS NOT NULL))
);
-- Seed 001, 6.1.3: idx_user_experience_status.
CREATE INDEX experience_progress_user_status ON experience_progress (user_id, status, last_activity_at);

CREATE TABLE reaction_rewards (
    content_kind text    NOT NULL CHECK (content_kind IN ('fragment', 'experience', 'channel_post')),
    content_id   text    NOT NULL CHECK (char_length(content_id) BETWEEN 1 AND 128),
    reaction     text    NOT NULL CHECK (char_length(reaction) BETWEEN 1 AND 32),
    besitos      bigint  NOT NULL CHECK (besitos > 0),
    active       boolean NOT NULL,
    PRIMARY KEY (content_kind, content_id, reaction)
);

-- One reaction per user, content and reaction.
CREATE TABLE reactions (
    user_id      uuid        NOT NULL,
    content_kind text        NOT NULL CHECK (content_kind IN ('fragment', 'experience', 'channel_post')),
    content_id   text        NOT NULL CHECK (char_length(content_id) BETWEEN 1 AND 128),
    reaction     text        NOT NULL CHECK (char_length(reaction) BETWEEN 1 AND 32),
    besitos      bigint      NOT NULL DEFAULT 0 CHECK (besitos >= 0),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, content_kind, content_id, reaction)
);

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
