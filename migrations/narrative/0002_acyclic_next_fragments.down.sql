DROP TRIGGER decisions_acyclic ON decisions;
DROP FUNCTION decisions_acyclic();
