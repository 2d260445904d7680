-- Before 0005 only a board with an active run had a due time.
UPDATE missions_v2_state SET due_at = NULL
WHERE NOT state->'runs' @> '[{"status": "active"}]';

COMMENT ON COLUMN missions_v2_state.due_at IS NULL;
