-- Conversations (seed 004): contacts and threads, caches with TTL, user states, debounced
-- message buffers under leases, processing leases, pending images, typing stamps, and the
-- event stream (layout in shared/runtime/src/stream/mod.rs).

CREATE TABLE contacts (
    phone             text        PRIMARY KEY CHECK (phone ~ '^[0-9]{8,15}$'),
    name              text        CHECK (char_length(name) <= 255),
    chat_id           text        NOT NULL CHECK (char_length(chat_id) BETWEEN 1 AND 100),
    labels            jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(labels) = 'array'),
    directory_user_id uuid,
    last_activity_at  timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    version           bigint      NOT NULL DEFAULT 1 CHECK (version > 0),
    -- What the legacy files need to be written back as they were read (ops/legacy.rs): each
    -- file's spelling of the key, its fields this schema has no column for, verbatim, and
    -- whether the contact is in guest-memory.json.
    threads_key       text,
    guests_key        text,
    legacy_thread     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(legacy_thread) = 'object'),
    legacy_guest      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(legacy_guest) = 'object'),
    in_guest_memory   boolean     NOT NULL DEFAULT true
);

CREATE TABLE threads (
    thread_id       text        PRIMARY KEY CHECK (thread_id ~ '^[A-Za-z0-9_-]{1,100}$'),
    phone           text        NOT NULL REFERENCES contacts (phone),
    active          boolean     NOT NULL,
    user_name       text        CHECK (char_length(user_name) <= 255),
    created_at      timestamptz NOT NULL,
    last_message_at timestamptz NOT NULL
);
-- At most one active thread per contact.
CREATE UNIQUE INDEX threads_one_active ON threads (phone) WHERE active;
CREATE INDEX threads_phone ON threads (phone);

-- The context (kind 'context') and chat-info ('chat_info') caches. An entry past expires_at is
-- never answered; the cleanup deletes it.
CREATE TABLE cache_entries (
    phone      text        NOT NULL REFERENCES contacts (phone),
    kind       text        NOT NULL CHECK (kind IN ('context', 'chat_info')),
    value      text        NOT NULL,
    ttl        interval    NOT NULL CHECK (ttl > interval '0' AND ttl <= interval '7 days'),
    written_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > written_at),
    PRIMARY KEY (phone, kind)
);
CREATE INDEX cache_entries_expires_at ON cache_entries (expires_at);

CREATE TABLE user_states (
    phone               text        PRIMARY KEY REFERENCES contacts (phone),
    last_voice_input_at timestamptz,
    preferences         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(preferences) = 'object'),
    updated_at          timestamptz NOT NULL
);

-- A contact's buffer: the readiness rule's inputs, the sequence of its next message, and the
-- lease of the worker that took it (taken_up_to: the last sequence that lease took).
CREATE TABLE buffers (
    phone            text        PRIMARY KEY REFERENCES contacts (phone),
    next_sequence    bigint      NOT NULL DEFAULT 1 CHECK (next_sequence > 0),
    message_count    integer     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    first_message_at timestamptz,
    last_message_at  timestamptz,
    debounce         interval    NOT NULL,
    max_wait         interval    NOT NULL,
    max_messages     integer     NOT NULL CHECK (max_messages > 0),
    lease_id         uuid,
    lease_worker     text,
    lease_expires_at timestamptz,
    taken_up_to      bigint,
    redeliveries     integer     NOT NULL DEFAULT 0,
    last_acked_lease uuid,
    last_acked_up_to bigint,
    last_acked_count integer,
    CONSTRAINT buffers_lease_whole CHECK (
        (lease_id IS NULL) = (lease_worker IS NULL)
        AND (lease_id IS NULL) = (lease_expires_at IS NULL)
        AND (lease_id IS NULL) = (taken_up_to IS NULL)),
    CONSTRAINT buffers_times CHECK ((message_count = 0) = (first_message_at IS NULL))
);
CREATE INDEX buffers_waiting ON buffers (first_message_at) WHERE message_count > 0;

CREATE TABLE buffered_messages (
    phone       text        NOT NULL REFERENCES buffers (phone),
    sequence    bigint      NOT NULL CHECK (sequence > 0),
    body        text        NOT NULL CHECK (char_length(body) BETWEEN 1 AND 16384),
    message_id  text        CHECK (char_length(message_id) BETWEEN 1 AND 128),
    received_at timestamptz NOT NULL,
    PRIMARY KEY (phone, sequence)
);
CREATE UNIQUE INDEX buffered_messages_message_id ON buffered_messages (phone, message_id)
    WHERE message_id IS NOT NULL;

-- The seed's activeProcessing set, as leases that expire.
CREATE TABLE processing_leases (
    phone       text        PRIMARY KEY REFERENCES contacts (phone),
    owner       text        NOT NULL CHECK (char_length(owner) BETWEEN 1 AND 100),
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > acquired_at)
);
CREATE INDEX processing_leases_expires_at ON processing_leases (expires_at);

CREATE TABLE pending_images (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone     text        NOT NULL REFERENCES contacts (phone),
    image_ref text        NOT NULL CHECK (char_length(image_ref) BETWEEN 1 AND 2048),
    caption   text        NOT NULL DEFAULT '' CHECK (char_length(caption) <= 4096),
    added_at  timestamptz NOT NULL
);
CREATE INDEX pending_images_phone ON pending_images (phone, id);

CREATE TABLE typing_stamps (
    phone          text        PRIMARY KEY REFERENCES contacts (phone),
    last_logged_at timestamptz NOT NULL
);

-- Idempotency keys (shared/runtime/src/idempotency.rs) of AddPendingImage.
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
