DROP TABLE shop_items;
ALTER TABLE accounts DROP CONSTRAINT accounts_id_asset;
