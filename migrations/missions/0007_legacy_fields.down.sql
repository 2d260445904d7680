DROP VIEW missions_v2_board_documents;
ALTER VIEW missions_v2_board_known_documents RENAME TO missions_v2_board_documents;
ALTER TABLE missions_v2_slots DROP COLUMN legacy_fields;
ALTER TABLE missions_v2_boards DROP COLUMN legacy_fields;
