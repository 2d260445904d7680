-- The ledger context (seed 003, RFC-PHOENIX-01): tenants (iam), assets, accounts, transfers and
-- entries (finanzas), policies (gobernanza), idempotency keys (sys) and the event store (events),
-- in one schema owned by the ledger service. Every row belongs to a tenant, and every reference
-- between rows carries the tenant in its key, so a row of one tenant can never point at a row of
-- another: tenant isolation is enforced by the keys themselves, not only by the queries.

-- Rejects UPDATE, DELETE and TRUNCATE on the append-only tables.
CREATE FUNCTION reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Corrections are new rows (a reversing transfer, a new event), never edits.';
END
$$;

CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL
);

-- An asset's scale is fixed once its first account exists: 1 USD = 100 minor units at scale 2.
CREATE TABLE assets (
    tenant_id uuid     NOT NULL REFERENCES tenants (id),
    code      text     NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{0,15}$'),
    scale     smallint NOT NULL CHECK (scale BETWEEN 0 AND 18),
    PRIMARY KEY (tenant_id, code)
);

-- Balances in minor units, TigerBeetle-style: four monotonic sums per account. The balance limit
-- is checked by the service before it writes and by the CHECKs below whatever writes.
CREATE TABLE accounts (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    asset_code      text        NOT NULL,
    owner_ref       text        NOT NULL CHECK (char_length(owner_ref) BETWEEN 1 AND 200),
    kind            text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    balance_limit   text        NOT NULL CHECK (balance_limit IN
                        ('NONE', 'DEBITS_MUST_NOT_EXCEED_CREDITS', 'CREDITS_MUST_NOT_EXCEED_DEBITS')),
    metadata        jsonb       NOT NULL DEFAULT '{}',
    debits_posted   bigint      NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  bigint      NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  bigint      NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint      NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    -- Number of entries: the version of the last one.
    entry_version   bigint      NOT NULL DEFAULT 0 CHECK (entry_version >= 0),
    -- Version of the account's event stream.
    event_version   bigint      NOT NULL DEFAULT 0 CHECK (event_version >= 0),
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, owner_ref, asset_code, kind),
    FOREIGN KEY (tenant_id, asset_code) REFERENCES assets (tenant_id, code),
    CHECK (balance_limit <> 'DEBITS_MUST_NOT_EXCEED_CREDITS'
           OR debits_posted + debits_pending <= credits_posted),
    CHECK (balance_limit <> 'CREDITS_MUST_NOT_EXCEED_DEBITS'
           OR credits_posted + credits_pending <= debits_posted)
);
CREATE INDEX accounts_by_owner ON accounts (tenant_id, owner_ref);

-- Every movement, append-only. POSTED moves funds at once; PENDING reserves them until a
-- POST_PENDING, VOID_PENDING or EXPIRE_PENDING (at most one, by the unique index) resolves it.
CREATE TABLE transfers (
    tenant_id         uuid        NOT NULL,
    id                uuid        NOT NULL,
    -- The request that created it: one id per RPC call, shared by a batch.
    batch_id          uuid        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN
                          ('POSTED', 'PENDING', 'POST_PENDING', 'VOID_PENDING', 'EXPIRE_PENDING')),
    debit_account_id  uuid        NOT NULL,
    credit_account_id uuid        NOT NULL CHECK (credit_account_id <> debit_account_id),
    asset_code        text        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    pending_id        uuid,
    reversal_of       uuid,
    expires_at        timestamptz,
    code              text        NOT NULL DEFAULT '',
    metadata          jsonb       NOT NULL DEFAULT '{}',
    idempotency_key   text,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, debit_account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, credit_account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, pending_id) REFERENCES transfers (tenant_id, id),
    FOREIGN KEY (tenant_id, reversal_of) REFERENCES transfers (tenant_id, id),
    CHECK ((kind IN ('POST_PENDING', 'VOID_PENDING', 'EXPIRE_PENDING')) = (pending_id IS NOT NULL)),
    CHECK (kind = 'PENDING' OR expires_at IS NULL),
    CHECK (kind = 'POSTED' OR reversal_of IS NULL)
);
CREATE UNIQUE INDEX transfers_one_resolution ON transfers (tenant_id, pending_id)
    WHERE pending_id IS NOT NULL;
-- Daily debit limits sum an account's debits of the day.
CREATE INDEX transfers_by_debit_account ON transfers (tenant_id, debit_account_id, created_at);
CREATE INDEX transfers_by_reversal ON transfers (tenant_id, reversal_of) WHERE reversal_of IS NOT NULL;
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();

-- Posted movements, one per side of a transfer: amount > 0 credits, < 0 debits. balance is the
-- account's posted balance (credits - debits) after the entry; versions count 1, 2, 3… per account.
-- Entries are written only with their transfer, whose keys already tie both accounts to the
-- tenant, so they carry no foreign keys of their own: a batch of 8,000 transfers would otherwise
-- pay 32,000 more key checks. The auditor reconciles entries with accounts and transfers.
CREATE TABLE entries (
    tenant_id   uuid        NOT NULL,
    account_id  uuid        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    transfer_id uuid        NOT NULL,
    asset_code  text        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount <> 0),
    balance     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, account_id, version)
);
CREATE INDEX entries_by_time ON entries (tenant_id, account_id, created_at);
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();

-- Pending transfers not yet resolved; the row goes when the pending is posted, voided or expired.
CREATE TABLE open_pendings (
    tenant_id         uuid        NOT NULL,
    transfer_id       uuid        NOT NULL,
    debit_account_id  uuid        NOT NULL,
    credit_account_id uuid        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    expires_at        timestamptz,
    PRIMARY KEY (tenant_id, transfer_id),
    FOREIGN KEY (tenant_id, transfer_id) REFERENCES transfers (tenant_id, id)
);
CREATE INDEX open_pendings_expiry ON open_pendings (expires_at) WHERE expires_at IS NOT NULL;

-- Policies as data (seed: gobernanza.policies), versioned: a change closes the active row and
-- opens a new one, so the auditor knows which limit held when each transfer was made.
CREATE TABLE policies (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    id             uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN
                       ('MAX_TRANSFER_AMOUNT', 'MAX_DAILY_DEBITS', 'KILL_SWITCH')),
    -- '' applies to every asset.
    asset_code     text        NOT NULL DEFAULT '',
    limit_amount   bigint      CHECK (limit_amount > 0),
    effective_from timestamptz NOT NULL,
    effective_to   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK ((kind = 'KILL_SWITCH') = (limit_amount IS NULL)),
    CHECK (effective_to IS NULL OR effective_to >= effective_from)
);
CREATE UNIQUE INDEX policies_one_active ON policies (tenant_id, kind, asset_code)
    WHERE effective_to IS NULL;

-- Idempotency keys (seed: sys.request_keys); see phoenix_runtime::idempotency.
CREATE TABLE request_keys (
    scope           text        NOT NULL,
    idempotency_key text        NOT NULL,
    method          text        NOT NULL,
    fingerprint     bytea       NOT NULL,
    outcome         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX request_keys_expires_at ON request_keys (expires_at);

-- The event store (seed: events.event_store): one immutable stream per aggregate, with the
-- stream version unique so two writers of the same version cannot both commit. txid orders
-- delivery to subscribers: an event is delivered only once every older transaction has ended,
-- so a subscriber never skips an event that commits late.
CREATE TABLE events (
    position          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    event_id          uuid        NOT NULL UNIQUE,
    aggregate_type    text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL CHECK (aggregate_version > 0),
    event_type        text        NOT NULL,
    payload           bytea       NOT NULL,
    occurred_at       timestamptz NOT NULL,
    priority          smallint    NOT NULL DEFAULT 2,
    traceparent       text        NOT NULL DEFAULT '',
    tracestate        text        NOT NULL DEFAULT '',
    correlation_id    text        NOT NULL DEFAULT '',
    txid              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_version UNIQUE (tenant_id, aggregate_type, aggregate_id, aggregate_version)
);
CREATE INDEX events_delivery ON events (tenant_id, txid, position);
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();

-- Snapshots of an aggregate's state at a version (seed: events.snapshots); the last 3 are kept.
CREATE TABLE snapshots (
    tenant_id         uuid        NOT NULL REFERENCES tenants (id),
    aggregate_type    text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL CHECK (aggregate_version > 0),
    state             jsonb       NOT NULL,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, aggregate_type, aggregate_id, aggregate_version)
);
