-- The operations' idempotency keys (the runtime's `request_keys` layout): TakeDecision records
-- its answer when requirements are unmet (or the saga's input when they are met), and
-- AccessVipNarrative its answer, with the events they emit, under the caller's key.
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

-- The VIP plans SubscribeVip sells and AccessVipNarrative offers: a VIP period for a price in a
-- ledger asset, paid from the user's wallet to the plan's revenue account.
CREATE TABLE vip_plans (
    plan_id              text             PRIMARY KEY
        CHECK (plan_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name                 text             NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    asset_code           text             NOT NULL CHECK (asset_code ~ '^[A-Z0-9_]{1,16}$'),
    price                bigint           NOT NULL CHECK (price > 0),
    period_seconds       bigint           NOT NULL
        CHECK (period_seconds BETWEEN 3600 AND 3660 * 86400),
    revenue_account_id   uuid             NOT NULL,
    active               boolean          NOT NULL,
    min_conversion_score double precision NOT NULL
        CHECK (min_conversion_score BETWEEN 0 AND 100),
    -- The ledger tenant of the revenue account: the plan is sold to requests naming it.
    tenant_id            uuid             NOT NULL,
    updated_at           timestamptz      NOT NULL
);
