DROP TABLE holdings;
DROP TABLE reservations;
DROP TABLE inventory_items;
