-- Shared Signals streams (`sessions::StreamRecord` as JSON), one per receiver's API key. Few
-- rows, read by every session ending (the streams that cover its realm get a `session-revoked`
-- delivery in the same transaction) and by each server's stream cache.
CREATE TABLE signal_streams (
    id     text PRIMARY KEY,
    record jsonb NOT NULL
);
