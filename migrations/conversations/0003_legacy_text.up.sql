-- Each legacy record's text exactly as its file held it (key order, number spelling, spacing)
-- and its place among the file's records, so the export writes an unchanged record back
-- byte for byte and in the file's order (ops/legacy.rs). NULL for contacts imported before
-- this migration or created through the API: those are rendered from the JSON columns.
ALTER TABLE contacts
    ADD COLUMN legacy_thread_text text,
    ADD COLUMN legacy_guest_text  text,
    ADD COLUMN threads_position   integer,
    ADD COLUMN guests_position    integer;
