-- Back to delivery by transaction id: positions given after the up are lost (an event's
-- position is its insert order again).
DROP TABLE event_sequencer;
DROP TABLE event_positions;
DROP INDEX events_txid;
ALTER TABLE events RENAME COLUMN seq TO position;
CREATE INDEX events_delivery ON events (tenant_id, txid, position);
