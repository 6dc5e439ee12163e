-- Activity counters of each realm (sessions::stats): sign-ins, sessions ended by reason and
-- back-channel delivery attempts by outcome, per hour and per day. Written in the transaction of
-- the event itself; spread over stripes like `counters`, so concurrent writers of one realm do
-- not queue on one row lock; a bucket's count is the sum of its stripes. The reaper deletes
-- buckets older than those kept (48 hours, 35 days).
CREATE TABLE stats (
    realm  text NOT NULL,
    span   smallint NOT NULL,        -- 1 hour, 2 day (Span::code)
    bucket timestamptz NOT NULL,     -- where the bucket starts
    metric text COLLATE "C" NOT NULL, -- Metric::name: a closed set, never free text
    stripe smallint NOT NULL,
    count  bigint NOT NULL,
    PRIMARY KEY (realm, span, bucket, metric, stripe)
);

-- Pruning looks for old buckets across realms.
CREATE INDEX stats_by_age ON stats (span, bucket);
