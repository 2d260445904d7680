-- The goals schema itself is created by the migrator; this records who owns it.
COMMENT ON SCHEMA goals IS 'Owned by the Phoenix goals service. No other service reads or writes it.';
