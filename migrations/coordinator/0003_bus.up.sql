-- The event bus (services/coordinator/README.md, "The event bus").

-- One row per followed stream: where its relay is, and which coordinator holds it (a lease,
-- so one relay per source runs at a time across replicas).
CREATE TABLE bus_sources (
    source      text        PRIMARY KEY CHECK (source <> ''),
    position    bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    lease_owner uuid,
    lease_until timestamptz,
    relayed     bigint      NOT NULL DEFAULT 0 CHECK (relayed >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every event the bus holds, in the order it became visible: ingesting transactions take an
-- advisory lock in turn, so bus_seq order is commit order and a group that has read up to
-- bus_seq n never finds a later-committed event below n.
CREATE TABLE bus_events (
    bus_seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    source          text        NOT NULL CHECK (source <> ''),
    source_position bigint      NOT NULL CHECK (source_position >= 0),
    event_type      text        NOT NULL CHECK (event_type <> ''),
    catalog_type    text,
    aggregate_key   text        NOT NULL,
    priority        smallint    NOT NULL CHECK (priority BETWEEN 1 AND 4),
    occurred_at     timestamptz NOT NULL,
    envelope        bytea       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bus_events_received ON bus_events (received_at);

-- A consumer group: its patterns (as given, and as LIKE patterns) and how far its deliveries
-- have been made from bus_events.
CREATE TABLE bus_groups (
    name           text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    patterns       text[]      NOT NULL CHECK (cardinality(patterns) BETWEEN 1 AND 32),
    like_patterns  text[]      NOT NULL,
    position       bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    max_deliveries integer     NOT NULL DEFAULT 5 CHECK (max_deliveries BETWEEN 1 AND 100),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The group's outstanding deliveries: ready, leased to a member until lease_until, or dead.
-- Acknowledged ones are deleted.
CREATE TABLE bus_deliveries (
    group_name    text        NOT NULL REFERENCES bus_groups (name) ON DELETE CASCADE,
    bus_seq       bigint      NOT NULL REFERENCES bus_events (bus_seq),
    priority      smallint    NOT NULL CHECK (priority BETWEEN 1 AND 4),
    aggregate_key text        NOT NULL,
    state         text        NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'leased', 'dead')),
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    visible_at    timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz,
    delivery_id   uuid,
    member        uuid,
    last_error    text        NOT NULL DEFAULT '',
    dead_at       timestamptz,
    PRIMARY KEY (group_name, bus_seq),
    CHECK ((state = 'leased') = (delivery_id IS NOT NULL AND lease_until IS NOT NULL AND member IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_at IS NOT NULL))
);
CREATE INDEX bus_deliveries_line ON bus_deliveries (group_name, priority DESC, bus_seq)
    WHERE state <> 'dead';
CREATE INDEX bus_deliveries_leases ON bus_deliveries (group_name, lease_until)
    WHERE state = 'leased';
CREATE UNIQUE INDEX bus_deliveries_delivery ON bus_deliveries (delivery_id)
    WHERE delivery_id IS NOT NULL;
CREATE INDEX bus_deliveries_member ON bus_deliveries (member) WHERE state = 'leased';
CREATE INDEX bus_deliveries_dead ON bus_deliveries (group_name, dead_at, bus_seq)
    WHERE state = 'dead';
CREATE INDEX bus_deliveries_event ON bus_deliveries (bus_seq);
