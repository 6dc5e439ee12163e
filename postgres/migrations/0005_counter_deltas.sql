-- Count changes appended by the transactions that make them, one row per transaction, and
-- folded into `counters` by a background step ([`counters::fold`]): creates stop updating a
-- dozen hot counter rows each. A count is its counter rows plus the deltas not yet folded
-- (`counter_totals`), read in one statement, so it is exact at every moment.
CREATE TABLE counter_deltas (
    realms text[] NOT NULL,
    kinds int2[] NOT NULL,
    keys text[] NOT NULL,
    deltas int8[] NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

CREATE VIEW counter_totals AS
    SELECT realm, kind, key, count FROM counters
    UNION ALL
    SELECT u.realm, u.kind, u.key, u.delta
      FROM counter_deltas d, unnest(d.realms, d.kinds, d.keys, d.deltas) AS u(realm, kind, key, delta);
