-- When a running import batch last took a call, so a batch whose client stopped (killed, lost
-- its connection) is failed as stale after a while instead of staying RUNNING for ever. NULL
-- for batches from before: their start stands in.
ALTER TABLE import_batches ADD COLUMN last_call_at timestamptz;
CREATE INDEX import_batches_running ON import_batches ((coalesce(last_call_at, started_at)))
    WHERE status = 'RUNNING';
