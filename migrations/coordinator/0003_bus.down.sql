DROP TABLE bus_deliveries;
DROP TABLE bus_groups;
DROP TABLE bus_events;
DROP TABLE bus_sources;
