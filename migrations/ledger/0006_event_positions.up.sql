-- The event store moves onto the shared stream (phoenix_runtime::stream): an event's insert
-- order is its `seq`, and its delivery position is given after commit by the sequencer, in the
-- order events became visible, consecutive for the whole service. Subscribers used to be fed by
-- transaction id; positions now increase in commit order, so a subscriber resuming after
-- position p misses nothing and gets nothing twice.
ALTER TABLE events RENAME COLUMN position TO seq;
DROP INDEX events_delivery;
-- The sequencer looks for unpositioned events of recent transactions only.
CREATE INDEX events_txid ON events (txid);

-- A position, once given, never changes: like the events, the table is append-only.
CREATE TABLE event_positions (
    position  bigint PRIMARY KEY,
    seq       bigint NOT NULL UNIQUE,
    tenant_id uuid   NOT NULL
);
CREATE INDEX event_positions_tenant ON event_positions (tenant_id, position);
CREATE TRIGGER event_positions_append_only BEFORE UPDATE OR DELETE ON event_positions
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER event_positions_no_truncate BEFORE TRUNCATE ON event_positions
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();

-- One row: the next position to give, and where events without one may still appear: in
-- transactions from `from_txid` on, and in `open_txids`, those running at the last pass.
CREATE TABLE event_sequencer (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_position bigint  NOT NULL CHECK (next_position > 0),
    from_txid     xid8    NOT NULL,
    open_txids    xid8[]  NOT NULL DEFAULT '{}'
);

-- The events already delivered keep the positions subscribers know them by (their old
-- position, now their seq). What the sequencer is to look at next is taken first, from a
-- snapshot no later than the copy's: any event the copy cannot see yet belongs to a
-- transaction running then, or to a later one.
INSERT INTO event_sequencer (singleton, next_position, from_txid, open_txids)
VALUES (true, 1, pg_snapshot_xmax(pg_current_snapshot()),
        ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot())));
INSERT INTO event_positions (position, seq, tenant_id)
SELECT seq, seq, tenant_id FROM events ORDER BY seq;
UPDATE event_sequencer SET next_position = (SELECT coalesce(max(position), 0) + 1 FROM event_positions);
