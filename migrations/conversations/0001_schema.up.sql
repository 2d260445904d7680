-- The conversations schema itself is created by the migrator; this records who owns it.
COMMENT ON SCHEMA conversations IS 'Owned by the Phoenix conversations service. No other service reads or writes it.';
