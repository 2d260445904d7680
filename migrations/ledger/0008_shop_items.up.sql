-- The shop (seed 001's shop_items): what a tenant sells. Each item sells units of one inventory
-- item (sku) for a price per unit in one asset, credited to a revenue account that holds that
-- asset: the composite key below makes the database refuse a revenue account of another asset
-- (or another tenant) whatever writes. Unlocks are narrative ids kept as given (another
-- context's ids, no foreign keys). version equals the version of the item's event stream
-- (aggregate_type 'shop_item', aggregate_id = shop_item_id).
ALTER TABLE accounts ADD CONSTRAINT accounts_id_asset UNIQUE (tenant_id, id, asset_code);

CREATE TABLE shop_items (
    tenant_id             uuid        NOT NULL REFERENCES tenants (id),
    shop_item_id          text        NOT NULL CHECK (shop_item_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name                  text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price_asset_code      text        NOT NULL,
    price_amount          bigint      NOT NULL CHECK (price_amount > 0),
    sku                   text        NOT NULL,
    revenue_account_id    uuid        NOT NULL,
    unlock_fragment_ids   uuid[]      NOT NULL DEFAULT '{}'
                              CHECK (cardinality(unlock_fragment_ids) <= 100),
    unlock_experience_ids uuid[]      NOT NULL DEFAULT '{}'
                              CHECK (cardinality(unlock_experience_ids) <= 20),
    available             boolean     NOT NULL,
    version               bigint      NOT NULL CHECK (version > 0),
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, shop_item_id),
    FOREIGN KEY (tenant_id, sku) REFERENCES inventory_items (tenant_id, sku),
    FOREIGN KEY (tenant_id, revenue_account_id, price_asset_code)
        REFERENCES accounts (tenant_id, id, asset_code)
);
COMMENT ON TABLE shop_items IS
    'What a tenant sells (seed 001 shop_items): price per unit in the revenue account''s asset; version = event stream version.';
