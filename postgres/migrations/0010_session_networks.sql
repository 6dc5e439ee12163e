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

-- Smaller history indexes (bytes per row at 21,000 rows in `postgres/examples/bench.rs`):
-- the newest-first index ascending, walked backward, so each new entry lands at its right end,
-- where pages fill before they split (declared descending, entries landed at the left end and
-- every split left two half-empty pages: 87 → 51 B); the subject index on the subject alone,
-- whose entries PostgreSQL deduplicates into one key and a list of row pointers (90 B → a few),
-- a subject's entries sorted when listed (a subject's history is bounded by the retention).
DROP INDEX ended_sessions_newest;
DROP INDEX ended_sessions_by_subject;
CREATE INDEX ended_sessions_newest ON ended_sessions (realm, ended_at, sid);
CREATE INDEX ended_sessions_by_subject ON ended_sessions (realm, subject_id);
