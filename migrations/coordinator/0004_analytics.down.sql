DO $$
DECLARE
    partition record;
BEGIN
    FOR partition IN SELECT table_name FROM analytics_partitions WHERE detached_at IS NOT NULL LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', partition.table_name);
    END LOOP;
END $$;
DROP TABLE analytics_daily_users;
DROP TABLE analytics_daily_metrics;
DROP TABLE analytics_partitions;
DROP TABLE analytics_events;
