-- Goals' TaskCompleted events missions consumed through the coordinator's bus (at least once):
-- one row per event id, so a redelivered event changes nothing. `boards` is how many boards
-- the event moved (0: no boss of the user links the task).
CREATE TABLE missions_v2_task_events (
    event_id     uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    task_id      uuid        NOT NULL,
    boards       integer     NOT NULL CHECK (boards >= 0),
    processed_at timestamptz NOT NULL DEFAULT now()
);
