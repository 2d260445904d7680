-- The bus on NATS JetStream (services/coordinator/README.md, "The bus on NATS JetStream").
-- The events live in the JetStream stream; these tables hold what JetStream does not: the
-- outstanding deliveries (so any coordinator can acknowledge a delivery id handed out by
-- another), the events each group has processed (de-duplication past the stream's duplicate
-- window) and the dead letters. Groups are the bus's own (bus_groups).

-- A delivery handed to a subscriber and not acknowledged yet; `reply` is the JetStream message's
-- acknowledgement subject. One per group and event: a redelivery replaces the previous one.
CREATE TABLE bus_nats_deliveries (
    delivery_id uuid        PRIMARY KEY,
    group_name  text        NOT NULL REFERENCES bus_groups (name) ON DELETE CASCADE,
    event_id    uuid        NOT NULL,
    stream_seq  bigint      NOT NULL CHECK (stream_seq > 0),
    priority    smallint    NOT NULL CHECK (priority BETWEEN 1 AND 4),
    partition   smallint    NOT NULL CHECK (partition >= 0),
    attempt     integer     NOT NULL CHECK (attempt > 0),
    reply       text        NOT NULL CHECK (reply <> ''),
    member      uuid        NOT NULL,
    lease_until timestamptz NOT NULL,
    UNIQUE (group_name, event_id)
);
CREATE INDEX bus_nats_deliveries_member ON bus_nats_deliveries (member, lease_until);
CREATE INDEX bus_nats_deliveries_group ON bus_nats_deliveries (group_name, lease_until);
CREATE INDEX bus_nats_deliveries_lease ON bus_nats_deliveries (lease_until);

-- The events a group has acknowledged: a copy that reaches the stream again after the duplicate
-- window (a relay replaying old positions) is acknowledged on sight, not delivered.
CREATE TABLE bus_nats_processed (
    group_name   text        NOT NULL REFERENCES bus_groups (name) ON DELETE CASCADE,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, event_id)
);
CREATE INDEX bus_nats_processed_at ON bus_nats_processed (processed_at);

-- A group's dead letters: what it failed (or did not acknowledge) max_deliveries times; the
-- JetStream message is terminated, the envelope kept here until it is replayed.
CREATE TABLE bus_nats_dead (
    group_name   text        NOT NULL REFERENCES bus_groups (name) ON DELETE CASCADE,
    event_id     uuid        NOT NULL,
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    priority     smallint    NOT NULL CHECK (priority BETWEEN 1 AND 4),
    partition    smallint    NOT NULL CHECK (partition >= 0),
    envelope     bytea       NOT NULL,
    catalog_type text,
    event_type   text        NOT NULL,
    source       text        NOT NULL,
    source_position bigint   NOT NULL,
    attempts     integer     NOT NULL CHECK (attempts > 0),
    last_error   text        NOT NULL,
    dead_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, event_id)
);
CREATE INDEX bus_nats_dead_page ON bus_nats_dead (group_name, dead_at, seq);
