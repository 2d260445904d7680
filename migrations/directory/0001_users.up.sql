-- Users that every other context references by id (never by foreign key).
CREATE SCHEMA IF NOT EXISTS directory;
COMMENT ON SCHEMA directory IS 'Owned by the Phoenix directory service. No other service reads or writes it.';

CREATE TABLE users (
    id           uuid PRIMARY KEY,
    email        text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 200),
    time_zone    text NOT NULL DEFAULT 'UTC',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (email);
