-- Fields of a legacy store's board or slot that the format does not define (legacyFlags,
-- slots[].legacyColor, ...): kept as they were, so an import loses nothing and an export writes
-- them back. The board document rebuilt from the rows carries them again: the view of 0004
-- becomes the known fields, and missions_v2_board_documents adds the kept ones around it.

ALTER TABLE missions_v2_boards
    ADD COLUMN legacy_fields jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(legacy_fields) = 'object');
ALTER TABLE missions_v2_slots
    ADD COLUMN legacy_fields jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(legacy_fields) = 'object');

ALTER VIEW missions_v2_board_documents RENAME TO missions_v2_board_known_documents;

-- A known field always wins over a kept one of the same name (the Rust type never keeps one).
CREATE VIEW missions_v2_board_documents AS
SELECT k.user_id, k.season_id, k.board_id,
       jsonb_set(b.legacy_fields || k.document, '{slots}', coalesce((
           SELECT jsonb_agg(coalesce(s.legacy_fields, '{}') || e.slot ORDER BY e.n)
           FROM jsonb_array_elements(k.document -> 'slots') WITH ORDINALITY AS e(slot, n)
           LEFT JOIN missions_v2_slots s ON s.slot_id = (e.slot ->> 'slotId')::uuid
       ), '[]')) AS document
FROM missions_v2_board_known_documents k
JOIN missions_v2_boards b ON b.board_id = k.board_id;
