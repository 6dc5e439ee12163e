-- Count changes appended by the transactions that make them, one row per transaction, and
-- folded into `counters` and `stats` by a background step (`counters::fold`): creates stop
-- updating a dozen hot counter rows each. A count is its rows plus the deltas not yet folded
-- (`counter_totals`, `stats_totals`), read in one statement, so it is exact at every moment.
-- The table is vacuumed often and never truncated (truncation would lock out the appends).
CREATE TABLE counter_deltas (
    realms text[] NOT NULL,
    kinds int2[] NOT NULL,
    keys text[] NOT NULL,
    deltas int8[] NOT NULL,
    stat_realms text[] NOT NULL,
    stat_spans int2[] NOT NULL,
    stat_buckets timestamptz[] NOT NULL,
    stat_metrics text[] NOT NULL,
    stat_deltas int8[] NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        vacuum_truncate = false);

CREATE VIEW counter_totals AS
    SELECT realm, kind, key, count FROM counters
    UNION ALL
    SELECT u.realm, u.kind, u.key, u.delta
      FROM counter_deltas d, unnest(d.realms, d.kinds, d.keys, d.deltas) AS u(realm, kind, key, delta);

CREATE VIEW stats_totals AS
    SELECT realm, span, bucket, metric, count FROM stats
    UNION ALL
    SELECT u.realm, u.span, u.bucket, u.metric, u.delta
      FROM counter_deltas d,
           unnest(d.stat_realms, d.stat_spans, d.stat_buckets, d.stat_metrics, d.stat_deltas)
           AS u(realm, span, bucket, metric, delta);
