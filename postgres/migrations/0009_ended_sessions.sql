-- Ended-session history: what stays of a session once its record is deleted, written in the
-- transaction that ends it and pruned after the retention period (oldest first in each realm,
-- along `ended_sessions_newest`). `how` is the place of the way of ending in
-- `sessions::stats::EndReason::ALL`; `delivery_ids[i]` is the logout notification queued for
-- `client_ids[i]` (NULL when none was; the whole array NULL when no client was notified). No
-- foreign keys: a history entry outlives its session and, once delivered and purged, its
-- deliveries.
CREATE TABLE ended_sessions (
    realm          text NOT NULL,
    sid            uuid NOT NULL,
    subject_id     text NOT NULL,
    display_name   text,
    ip             text,
    device         integer,
    created_at     timestamptz NOT NULL,
    last_access_at timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    how            smallint NOT NULL,
    actor          text,
    reason         text,
    client_ids     text[] NOT NULL DEFAULT '{}',
    delivery_ids   int8[],
    PRIMARY KEY (realm, sid)
);
CREATE INDEX ended_sessions_newest ON ended_sessions (realm, ended_at DESC, sid DESC);
CREATE INDEX ended_sessions_by_subject ON ended_sessions (realm, subject_id, ended_at DESC, sid DESC);
