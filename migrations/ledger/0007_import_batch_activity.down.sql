DROP INDEX import_batches_running;
ALTER TABLE import_batches DROP COLUMN last_call_at;
