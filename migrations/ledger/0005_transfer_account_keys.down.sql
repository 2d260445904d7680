DROP TRIGGER accounts_no_truncate ON accounts;
DROP TRIGGER accounts_never_deleted ON accounts;
DROP TRIGGER transfers_name_accounts_of_their_tenant ON transfers;
DROP FUNCTION reject_transfers_of_foreign_accounts();

ALTER TABLE transfers
    ADD CONSTRAINT transfers_tenant_id_debit_account_id_fkey
        FOREIGN KEY (tenant_id, debit_account_id) REFERENCES accounts (tenant_id, id),
    ADD CONSTRAINT transfers_tenant_id_credit_account_id_fkey
        FOREIGN KEY (tenant_id, credit_account_id) REFERENCES accounts (tenant_id, id);
