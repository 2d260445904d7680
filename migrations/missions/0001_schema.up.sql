-- The missions schema itself is created by the migrator; this records who owns it.
COMMENT ON SCHEMA missions IS 'Owned by the Phoenix missions service. No other service reads or writes it.';
