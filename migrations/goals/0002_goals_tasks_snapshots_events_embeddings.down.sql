-- The extension stays: it belongs to the database, not to this schema.
DROP TABLE embeddings;
DROP FUNCTION embeddings_dimension_matches();
DROP TABLE embedding_models;
DROP TABLE event_exports;
DROP TABLE event_sequencer;
DROP TABLE event_positions;
DROP TABLE events;
DROP FUNCTION events_are_append_only();
DROP TABLE request_keys;
DROP TABLE code_snapshots;
DROP TABLE tasks;
DROP TABLE goals;
