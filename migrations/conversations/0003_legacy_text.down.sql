ALTER TABLE contacts
    DROP COLUMN legacy_thread_text,
    DROP COLUMN legacy_guest_text,
    DROP COLUMN threads_position,
    DROP COLUMN guests_position;
