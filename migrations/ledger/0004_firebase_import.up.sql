-- The Firebase import (seed 003: `migration.*` and "Fase B: Backfill"): Firestore exports of raw
-- signals, campaigns and audit logs, moved into typed tables. Each imported document is keyed by
-- (tenant_id, firebase_id), so a re-run inserts nothing twice (INSERT ... ON CONFLICT DO NOTHING);
-- the original document is kept as jsonb next to the typed columns. The import never edits what
-- it imported: the three tables are append-only. A record that cannot be imported is kept in
-- import_quarantine with its file, line and reason, never dropped.

-- A Firestore document id: non-empty, at most 1,500 bytes, no '/', not '.' or '..', not
-- '__...__' (Firestore's own rules), and no control characters (ids are joined with '\n' for
-- the checksums). Mirrors domain::import::FirebaseId.
CREATE FUNCTION is_firebase_id(id text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN id <> '' AND octet_length(id) <= 1500 AND id !~ '[/[:cntrl:]]'
           AND id NOT IN ('.', '..') AND id !~ '^__.*__$';

-- One run of an import. records_read = inserted + duplicates + quarantined at all times.
CREATE TABLE import_batches (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id),
    id            uuid        NOT NULL,
    source_name   text        NOT NULL CHECK (char_length(source_name) BETWEEN 1 AND 200),
    status        text        NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
    records_read  bigint      NOT NULL DEFAULT 0 CHECK (records_read >= 0),
    inserted      bigint      NOT NULL DEFAULT 0 CHECK (inserted >= 0),
    duplicates    bigint      NOT NULL DEFAULT 0 CHECK (duplicates >= 0),
    quarantined   bigint      NOT NULL DEFAULT 0 CHECK (quarantined >= 0),
    -- Version of the batch's event stream.
    event_version bigint      NOT NULL DEFAULT 0 CHECK (event_version >= 0),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    error         text,
    PRIMARY KEY (tenant_id, id),
    CHECK (records_read = inserted + duplicates + quarantined),
    CHECK ((status = 'RUNNING') = (finished_at IS NULL)),
    CHECK ((status = 'FAILED') = (error IS NOT NULL)),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX import_batches_by_start ON import_batches (tenant_id, started_at);

-- A finished batch is final, and a running batch's counts only grow.
CREATE FUNCTION import_batch_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'RUNNING' THEN
        RAISE EXCEPTION 'import batch % is %: a finished batch does not change', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.records_read < OLD.records_read OR NEW.inserted < OLD.inserted
       OR NEW.duplicates < OLD.duplicates OR NEW.quarantined < OLD.quarantined THEN
        RAISE EXCEPTION 'import batch %: counts only grow', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER import_batches_guard BEFORE UPDATE ON import_batches
    FOR EACH ROW EXECUTE FUNCTION import_batch_guard();

-- Events of the product (page views, clicks, sign-ups...) as the apps sent them to Firebase.
CREATE TABLE raw_signals (
    tenant_id   uuid             NOT NULL REFERENCES tenants (id),
    firebase_id text COLLATE "C" NOT NULL CHECK (is_firebase_id(firebase_id)),
    source      text             NOT NULL CHECK (char_length(source) BETWEEN 1 AND 200),
    signal_type text             NOT NULL CHECK (char_length(signal_type) BETWEEN 1 AND 200),
    -- Firebase Auth uid; NULL for an anonymous signal.
    user_id     text             CHECK (char_length(user_id) BETWEEN 1 AND 200),
    occurred_at timestamptz      NOT NULL,
    payload     jsonb            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    document    jsonb            NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    -- The batch that inserted it.
    batch_id    uuid             NOT NULL,
    imported_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, firebase_id),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES import_batches (tenant_id, id)
);
CREATE INDEX raw_signals_by_time ON raw_signals (tenant_id, occurred_at);
CREATE INDEX raw_signals_by_user ON raw_signals (tenant_id, user_id) WHERE user_id IS NOT NULL;

-- Marketing campaigns. The budget is an exact integer in the currency's minor units.
CREATE TABLE campaigns (
    tenant_id    uuid             NOT NULL REFERENCES tenants (id),
    firebase_id  text COLLATE "C" NOT NULL CHECK (is_firebase_id(firebase_id)),
    name         text             NOT NULL CHECK (char_length(name) BETWEEN 1 AND 500),
    status       text             NOT NULL CHECK (status IN ('DRAFT', 'ACTIVE', 'PAUSED', 'ENDED', 'ARCHIVED')),
    budget_minor bigint           NOT NULL CHECK (budget_minor >= 0),
    currency     text             NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    starts_at    timestamptz,
    ends_at      timestamptz,
    document     jsonb            NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    batch_id     uuid             NOT NULL,
    imported_at  timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, firebase_id),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES import_batches (tenant_id, id),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at >= starts_at)
);

-- Who did what to what, and when.
CREATE TABLE audit_logs (
    tenant_id   uuid             NOT NULL REFERENCES tenants (id),
    firebase_id text COLLATE "C" NOT NULL CHECK (is_firebase_id(firebase_id)),
    actor       text             NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    action      text             NOT NULL CHECK (char_length(action) BETWEEN 1 AND 200),
    -- What the action was done to; NULL when nothing in particular (e.g. a sign-in).
    target      text             CHECK (char_length(target) BETWEEN 1 AND 500),
    at          timestamptz      NOT NULL,
    document    jsonb            NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    batch_id    uuid             NOT NULL,
    imported_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, firebase_id),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES import_batches (tenant_id, id)
);
CREATE INDEX audit_logs_by_time ON audit_logs (tenant_id, at);

-- The documents each batch read and found in its table, inserted or already there: the
-- database side of the batch's validation report.
CREATE TABLE import_batch_documents (
    tenant_id   uuid             NOT NULL,
    batch_id    uuid             NOT NULL,
    collection  text COLLATE "C" NOT NULL CHECK (collection IN ('raw_signals', 'campaigns', 'audit_logs')),
    firebase_id text COLLATE "C" NOT NULL CHECK (is_firebase_id(firebase_id)),
    outcome     text             NOT NULL CHECK (outcome IN ('INSERTED', 'ALREADY_PRESENT')),
    PRIMARY KEY (tenant_id, batch_id, collection, firebase_id),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES import_batches (tenant_id, id)
);

-- What the client read, declared when the batch is finished: per collection, the number of
-- distinct document ids and their checksum (see domain::import::checksum).
CREATE TABLE import_batch_sources (
    tenant_id      uuid             NOT NULL,
    batch_id       uuid             NOT NULL,
    collection     text COLLATE "C" NOT NULL CHECK (char_length(collection) BETWEEN 1 AND 200),
    document_count bigint           NOT NULL CHECK (document_count >= 0),
    checksum       text             NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (tenant_id, batch_id, collection),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES import_batches (tenant_id, id)
);

-- Records that could not be imported, with where they were read and why. collection and
-- firebase_id are as given (an invalid id may be the reason); '' and NULL when unknown.
CREATE TABLE import_quarantine (
    tenant_id      uuid             NOT NULL,
    batch_id       uuid             NOT NULL,
    -- Order of arrival within the batch.
    id             bigint GENERATED ALWAYS AS IDENTITY,
    collection     text COLLATE "C" NOT NULL DEFAULT '',
    firebase_id    text COLLATE "C" CHECK (firebase_id <> ''),
    source_file    text             NOT NULL DEFAULT '',
    line_number    bigint           NOT NULL CHECK (line_number >= 0),
    reason         text             NOT NULL CHECK (reason ~ '^[A-Z][A-Z_]*$'),
    message        text             NOT NULL,
    raw_text       text             NOT NULL,
    quarantined_at timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, batch_id, id),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES import_batches (tenant_id, id)
);

CREATE TRIGGER raw_signals_append_only BEFORE UPDATE OR DELETE ON raw_signals
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER raw_signals_no_truncate BEFORE TRUNCATE ON raw_signals
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER campaigns_append_only BEFORE UPDATE OR DELETE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER campaigns_no_truncate BEFORE TRUNCATE ON campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER import_quarantine_append_only BEFORE UPDATE OR DELETE ON import_quarantine
    FOR EACH ROW EXECUTE FUNCTION reject_change();
