-- Where a session's addresses are (`sessions::Network` as JSON: country, city, asn, asn_org),
-- from the server's GeoIP databases: `network` for the sign-in's `ip`; `last_ip` and
-- `last_network` once a refresh came from another address (both NULL until then). Country and
-- autonomous system filters test them in the row.
ALTER TABLE sessions
    ADD COLUMN network jsonb,
    ADD COLUMN last_ip text,
    ADD COLUMN last_network jsonb;

-- The history keeps them too (`last_ip` and `last_network` NULL when the session never moved).
ALTER TABLE ended_sessions
    ADD COLUMN network jsonb,
    ADD COLUMN last_ip text,
    ADD COLUMN last_network jsonb;
-- (The new-device filter finds a subject's ended sessions by `ended_sessions_by_subject`: a
-- subject's history is bounded by the retention period, and one more index would cost every
-- ended session its bytes.)
