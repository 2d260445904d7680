-- The coordinator schema itself is created by the migrator; this records who owns it.
COMMENT ON SCHEMA coordinator IS 'Owned by the Phoenix coordinator service. No other service reads or writes it.';
