-- Users with seed 002's and seed 001's fields, VIP memberships with their append-only history,
-- channel memberships, courses, idempotency keys and the event stream
-- (shared/runtime/src/stream/mod.rs).

ALTER TABLE users
    ALTER COLUMN email DROP NOT NULL,
    ADD COLUMN username             text CHECK (username = lower(username) AND username ~ '^[a-z0-9_]{3,32}$'),
    ADD COLUMN active               boolean     NOT NULL DEFAULT true,
    ADD COLUMN superuser            boolean     NOT NULL DEFAULT false,
    ADD COLUMN metadata             jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    ADD COLUMN last_login_at        timestamptz,
    ADD COLUMN telegram_id          bigint      CHECK (telegram_id > 0),
    ADD COLUMN archetype_primary    text        CHECK (char_length(archetype_primary) BETWEEN 1 AND 50),
    ADD COLUMN archetype_secondary  text        CHECK (char_length(archetype_secondary) BETWEEN 1 AND 50),
    -- Hundredths: 0..100 is 0.00..1.00; scores 0..10000 are 0.00..100.00 (no floats stored).
    ADD COLUMN archetype_confidence smallint    CHECK (archetype_confidence BETWEEN 0 AND 100),
    ADD COLUMN archetype_updated_at timestamptz,
    ADD COLUMN conversion_score     smallint    CHECK (conversion_score BETWEEN 0 AND 10000),
    ADD COLUMN churn_risk_score     smallint    CHECK (churn_risk_score BETWEEN 0 AND 10000),
    ADD COLUMN lifetime_value_minor bigint      NOT NULL DEFAULT 0 CHECK (lifetime_value_minor >= 0),
    ADD COLUMN vip_trial_used       boolean     NOT NULL DEFAULT false,
    ADD COLUMN vip_trial_ends_at    timestamptz,
    ADD COLUMN last_engagement_at   timestamptz,
    ADD COLUMN engagement_streak    integer     NOT NULL DEFAULT 0 CHECK (engagement_streak >= 0),
    ADD COLUMN updated_at           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN deactivated_at       timestamptz,
    -- Fields of an imported legacy record this schema has no column for, kept verbatim.
    ADD COLUMN legacy_fields        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(legacy_fields) = 'object'),
    -- Version of the user's event stream (aggregate "user"): every change bumps it.
    ADD COLUMN version              bigint      NOT NULL DEFAULT 1 CHECK (version > 0),
    ADD CONSTRAINT users_reachable CHECK (email IS NOT NULL OR telegram_id IS NOT NULL),
    ADD CONSTRAINT users_deactivated CHECK (active = (deactivated_at IS NULL)),
    ADD CONSTRAINT users_trial CHECK (vip_trial_used = (vip_trial_ends_at IS NOT NULL));

CREATE UNIQUE INDEX users_username_key ON users (username);
-- Seed 001, 6.1.3: idx_users_telegram_id and idx_users_vip_status.
CREATE UNIQUE INDEX users_telegram_id_key ON users (telegram_id);
CREATE INDEX users_archetype_conversion ON users (archetype_primary, conversion_score);

-- The current membership of each user who ever had one. Its status is what the last change
-- left; whether it has expired is computed at read time from period_end and the clock.
CREATE TABLE vip_memberships (
    user_id      uuid        PRIMARY KEY REFERENCES users (id),
    status       text        NOT NULL CHECK (status IN ('trial', 'active', 'cancelled')),
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL CHECK (period_end >= period_start),
    version      bigint      NOT NULL CHECK (version > 0),
    updated_at   timestamptz NOT NULL
);
CREATE INDEX vip_memberships_period_end ON vip_memberships (period_end) WHERE status <> 'cancelled';

-- Every change of a membership, never updated or deleted.
CREATE TABLE vip_history (
    user_id         uuid        NOT NULL REFERENCES users (id),
    version         bigint      NOT NULL CHECK (version > 0),
    change          text        NOT NULL CHECK (change IN ('grant', 'extend', 'trial', 'cancel', 'revoke')),
    status          text        NOT NULL CHECK (status IN ('trial', 'active', 'cancelled')),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    changed_at      timestamptz NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE FUNCTION vip_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vip_history is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER vip_history_append_only BEFORE UPDATE OR DELETE ON vip_history
    FOR EACH ROW EXECUTE FUNCTION vip_history_append_only();

CREATE TABLE channel_memberships (
    user_id   uuid        NOT NULL REFERENCES users (id),
    channel   text        NOT NULL CHECK (channel IN ('free', 'vip')),
    joined_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, channel)
);
CREATE INDEX channel_memberships_channel ON channel_memberships (channel, user_id);

CREATE TABLE courses (
    id                  uuid        PRIMARY KEY,
    owner_id            uuid        NOT NULL REFERENCES users (id),
    title               text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description         text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    status              text        NOT NULL CHECK (status IN ('draft', 'active', 'completed', 'archived')),
    -- Hundredths of a percent: 0..10000.
    progress            integer     NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 10000),
    metadata            jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    version             bigint      NOT NULL DEFAULT 1 CHECK (version > 0),
    CONSTRAINT courses_completed CHECK ((completed_at IS NOT NULL) = (status = 'completed')
                                        OR (status = 'archived'))
);
CREATE INDEX courses_owner ON courses (owner_id, id);

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
