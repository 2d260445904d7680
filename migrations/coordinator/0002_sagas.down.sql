DROP TABLE event_sequencer;
DROP TABLE event_positions;
DROP TABLE events;
DROP TABLE saga_log;
DROP FUNCTION saga_log_append_only();
DROP TABLE sagas;
