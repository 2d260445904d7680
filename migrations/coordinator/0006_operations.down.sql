DROP TABLE vip_plans;
DROP TABLE request_keys;
