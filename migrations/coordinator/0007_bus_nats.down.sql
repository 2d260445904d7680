DROP TABLE bus_nats_dead;
DROP TABLE bus_nats_processed;
DROP TABLE bus_nats_deliveries;
