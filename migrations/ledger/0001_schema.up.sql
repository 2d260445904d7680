-- The ledger schema itself is created by the migrator; this records who owns it.
COMMENT ON SCHEMA ledger IS 'Owned by the Phoenix ledger service. No other service reads or writes it.';
