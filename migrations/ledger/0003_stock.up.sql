-- Stock and holdings (seed 003's stock.inventory_items with its reserve/release functions, and
-- seed 001's user inventory of game items). Every key starts with the tenant, and reservations
-- reference their item by (tenant_id, sku), so a reservation can never hold another tenant's
-- units. The service locks an item's row before it changes it; the CHECKs below hold whatever
-- writes.

-- One sku of a tenant's stock. on_hand counts every unit in stock, reserved the units held by
-- open reservations, so available = on_hand - reserved is never negative: stock is never
-- oversold. version counts the changes and equals the version of the item's event stream
-- (aggregate_type 'inventory_item', aggregate_id = sku); callers pass it for optimistic locking.
CREATE TABLE inventory_items (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    sku        text        NOT NULL CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    on_hand    bigint      NOT NULL CHECK (on_hand >= 0),
    reserved   bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    version    bigint      NOT NULL CHECK (version > 0),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sku),
    CONSTRAINT inventory_items_reserved_within_on_hand CHECK (reserved <= on_hand)
);
COMMENT ON TABLE inventory_items IS
    'Stock per sku (seed 003 stock.inventory_items): 0 <= reserved <= on_hand; version = event stream version.';

-- Units of an item held for a while (seed 003's reserve/release). An OPEN reservation counts in
-- its item's reserved; COMMITTED took its units out of on_hand; RELEASED (on request) and
-- EXPIRED (by the sweeper, after expires_at) gave them back. Only OPEN ones change state.
CREATE TABLE reservations (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    sku         text        NOT NULL,
    quantity    bigint      NOT NULL CHECK (quantity > 0),
    state       text        NOT NULL CHECK (state IN ('OPEN', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    reference   text        NOT NULL DEFAULT '' CHECK (char_length(reference) <= 200),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, sku) REFERENCES inventory_items (tenant_id, sku),
    CHECK (expires_at > created_at),
    CHECK ((state = 'OPEN') = (resolved_at IS NULL))
);
COMMENT ON TABLE reservations IS
    'Units held from an item (seed 003 reserve/release): OPEN until COMMITTED, RELEASED or EXPIRED.';
-- The expiry sweep reads the open reservations that are due, oldest first.
CREATE INDEX reservations_open_expiry ON reservations (expires_at) WHERE state = 'OPEN';

-- What each user owns (seed 001's inventory of game items): quantity per owner and item code.
-- A holding that reaches zero keeps its row, so its version, which equals the version of its
-- event stream (aggregate_type 'holding', aggregate_id = owner_ref/item_code), never restarts.
-- version 0 is a row created and filled in by the same transaction, never seen after commit.
CREATE TABLE holdings (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    owner_ref  text        NOT NULL CHECK (char_length(owner_ref) BETWEEN 1 AND 200),
    item_code  text        NOT NULL CHECK (item_code ~ '^[A-Za-z0-9._-]{1,64}$'),
    quantity   bigint      NOT NULL CHECK (quantity >= 0),
    version    bigint      NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, owner_ref, item_code)
);
COMMENT ON TABLE holdings IS
    'Units of an item a user owns (seed 001 user inventory): quantity >= 0; version = event stream version.';
