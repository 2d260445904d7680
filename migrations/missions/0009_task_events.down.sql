DROP TABLE missions_v2_task_events;
