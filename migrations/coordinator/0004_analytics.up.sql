-- Analytics events (seed 001 sections 4.3 and 6.1.3), written by the analytics writer from the
-- bus, one row per event id, in monthly partitions the writer creates ahead and detaches after
-- the retention (services/coordinator/README.md, "Analytics").
CREATE TABLE analytics_events (
    event_id     uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_type   text        NOT NULL,
    catalog_type text,
    user_id      uuid,
    source       text        NOT NULL,
    payload_type text        NOT NULL,
    payload      bytea       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    -- occurred_at never changes for an event id, so this key de-duplicates it.
    PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX analytics_events_user_time ON analytics_events (user_id, occurred_at DESC);
CREATE INDEX analytics_events_type_time ON analytics_events (event_type, occurred_at DESC);
CREATE INDEX analytics_events_catalog_time ON analytics_events (catalog_type, occurred_at DESC);

-- The partitions made, and when each was detached (it then stays as a table of its own, for
-- an operator to archive and drop).
CREATE TABLE analytics_partitions (
    month       date        PRIMARY KEY CHECK (extract(day FROM month) = 1),
    table_name  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    detached_at timestamptz
);

-- The daily rollup, kept in the transaction that records the events.
CREATE TABLE analytics_daily_metrics (
    day        date   NOT NULL,
    event_type text   NOT NULL,
    events     bigint NOT NULL CHECK (events >= 0),
    users      bigint NOT NULL CHECK (users >= 0 AND users <= events),
    PRIMARY KEY (day, event_type)
);
-- Who was counted in a day's users, so each is counted once.
CREATE TABLE analytics_daily_users (
    day        date NOT NULL,
    event_type text NOT NULL,
    user_id    uuid NOT NULL,
    PRIMARY KEY (day, event_type, user_id)
);
