-- Shared Signals streams (`sessions::StreamRecord` as JSON), one per receiver's API key. Few
-- rows, read by every session ending (the streams that cover its realm get a `session-revoked`
-- delivery in the same transaction) and by each server's stream cache.
CREATE TABLE signal_streams (
    id     text PRIMARY KEY,
    record jsonb NOT NULL
);
-- One stream per receiver key, also when two servers create one at once.
CREATE UNIQUE INDEX signal_streams_key ON signal_streams ((record->>'key_name'));
