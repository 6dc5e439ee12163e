-- The session store on PostgreSQL. Every table of a realm's data is keyed by the realm first, so
-- a realm's rows live together and the tables can be distributed by realm (Citus:
-- create_distributed_table(<table>, 'realm'); the server-wide tables at the end become
-- reference tables). Times are timestamptz; ids are the same as in the embedded store, so a
-- store moved with `server migrate-store` keeps every session id, token and results token.

-- A reference table when distributed: small, read by every operation, copied to every node.
CREATE TABLE realms (
    realm       text PRIMARY KEY,
    -- The realm's number in the embedded store (results tokens are bound to it), kept when a
    -- store is moved here so that tokens handed out before stay valid.
    id          integer NOT NULL UNIQUE,
    settings    jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE SEQUENCE realm_ids;

-- One row per live session. The secret token is stored only as its SHA-256.
CREATE TABLE sessions (
    realm           text NOT NULL REFERENCES realms (realm),
    sid             uuid NOT NULL,
    subject_id      text NOT NULL,
    display_name    text,
    created_at      timestamptz NOT NULL,
    last_access_at  timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    -- When the session stops being valid: the earlier of its idle and absolute expiry.
    ends_at         timestamptz GENERATED ALWAYS AS (least(idle_expires_at, expires_at)) STORED,
    client_ids      text[] NOT NULL DEFAULT '{}',
    properties      jsonb NOT NULL DEFAULT '{}',
    ip              text,
    -- The client address as 16 bytes (IPv4 in its IPv4-mapped IPv6 form; NULL when `ip` is not an
    -- IP address), so an address or CIDR filter is one interval of `sessions_by_address`.
    address         bytea,
    user_agent      text,
    token_hash      bytea NOT NULL,
    -- A token of the embedded store's first layout (32 random bytes, no sid inside), moved here
    -- with its session: found by its hash instead of by the sid it carries.
    token_lookup    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (realm, sid)
);
-- Keyset paging in each sort order, newest first, ties broken by sid.
CREATE INDEX sessions_by_created ON sessions (realm, created_at DESC, sid DESC);
CREATE INDEX sessions_by_last_access ON sessions (realm, last_access_at DESC, sid DESC);
CREATE INDEX sessions_by_ends ON sessions (realm, ends_at, sid);
CREATE INDEX sessions_by_subject ON sessions (realm, subject_id, created_at DESC, sid DESC);
CREATE INDEX sessions_by_address ON sessions (realm, address, created_at DESC, sid DESC)
    WHERE address IS NOT NULL;
CREATE UNIQUE INDEX sessions_by_token ON sessions (realm, token_hash) WHERE token_lookup;

-- The clients each session joined, in creation order per client: the client filter pages from
-- an index instead of scanning arrays. Written and deleted with their session by the key the
-- session implies (no foreign key: its cascade would need a second index on (realm, sid)).
CREATE TABLE session_clients (
    realm       text NOT NULL,
    client_id   text NOT NULL,
    created_at  timestamptz NOT NULL,
    sid         uuid NOT NULL,
    PRIMARY KEY (realm, client_id, created_at, sid)
);

-- Each case-folded word of each display name: a word-prefix search is a range of this index
-- (word >= 'smi' AND word < 'smj'), never LIKE '%x%' over the table.
CREATE TABLE session_words (
    realm       text NOT NULL,
    word        text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL,
    sid         uuid NOT NULL,
    PRIMARY KEY (realm, word, created_at, sid)
);

-- Exact counts without COUNT(*): per realm, subject, client and name prefix, kept in the same
-- transaction as the rows they count. Each count is spread over a few stripes so concurrent
-- writers of one realm do not queue on one row; a count is the sum of its stripes.
CREATE TABLE counters (
    realm   text NOT NULL,
    kind    smallint NOT NULL,   -- 0 realm, 1 subject, 2 client, 3 name prefix, 4 delivery status
    key     text COLLATE "C" NOT NULL,
    stripe  smallint NOT NULL,
    count   bigint NOT NULL,
    PRIMARY KEY (realm, kind, key, stripe)
);

-- Applications registered in a realm.
CREATE TABLE clients (
    realm        text NOT NULL REFERENCES realms (realm),
    client_id    text NOT NULL,
    registration jsonb NOT NULL,
    PRIMARY KEY (realm, client_id)
);

-- Refresh tokens, reference access tokens, authorization codes and consents.
CREATE TABLE grants (
    realm       text NOT NULL REFERENCES realms (realm),
    id          uuid NOT NULL,
    kind        smallint NOT NULL,
    subject_id  text NOT NULL,
    sid         uuid,
    client_id   text NOT NULL,
    scopes      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    token_hash  bytea,
    PRIMARY KEY (realm, id)
);
CREATE INDEX grants_by_subject ON grants (realm, subject_id);
CREATE INDEX grants_by_session ON grants (realm, sid) WHERE sid IS NOT NULL;
CREATE INDEX grants_by_expiry ON grants (realm, expires_at);
CREATE UNIQUE INDEX grants_by_token ON grants (realm, token_hash) WHERE token_hash IS NOT NULL;

-- The back-channel logout outbox. Workers on every server claim due rows with
-- FOR UPDATE SKIP LOCKED and mark them claimed (by their store, until a lease ends on the
-- database's clock), so a delivery is attempted by one of them at a time; recording the attempt
-- releases the claim, and a server that died mid-attempt loses it when the lease ends.
CREATE TABLE deliveries (
    -- Byte order ("C"), so the queues are visited in the order the workers' cursors compare.
    realm              text COLLATE "C" NOT NULL REFERENCES realms (realm),
    id                 bigint NOT NULL,
    client_id          text COLLATE "C" NOT NULL,
    uri                text NOT NULL,
    subject_id         text NOT NULL,
    sid                uuid NOT NULL,
    reason             text NOT NULL,
    status             smallint NOT NULL,   -- 0 pending, 1 delivered, 2 failed
    attempts           integer NOT NULL DEFAULT 0,
    window_attempts    integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    retry_window_start timestamptz NOT NULL,
    next_attempt_at    timestamptz,
    last_attempt_at    timestamptz,
    delivered_at       timestamptz,
    last_error         text,
    last_jti           text,
    claimed_by         uuid,
    claimed_until      timestamptz,
    PRIMARY KEY (realm, id)
);
CREATE SEQUENCE delivery_ids;
-- One queue per client: the earliest due entries of each, and the next queue after one.
CREATE INDEX deliveries_due ON deliveries (realm, client_id, next_attempt_at, id) WHERE status = 0;
CREATE INDEX deliveries_by_status ON deliveries (realm, status, id);

-- Every administrative action. Server-wide actions have the realm ''.
CREATE TABLE audit (
    realm    text NOT NULL DEFAULT '',
    id       bigserial NOT NULL,
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL,
    reason   text,
    outcome  text NOT NULL,
    PRIMARY KEY (realm, id)
);
CREATE INDEX audit_newest_first ON audit (id DESC);

-- Server-wide tables (reference tables when distributed).
-- API keys: the SHA-256 of the secret, never the secret.
CREATE TABLE api_keys (
    name        text PRIMARY KEY,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL,
    hash        bytea NOT NULL UNIQUE
);

CREATE TABLE admins (
    username       text PRIMARY KEY,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL,
    disabled       boolean NOT NULL DEFAULT false
);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    -- PKCS#8 DER of the private key.
    private_key  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    retired_at   timestamptz
);

-- Small server-wide values (the results-token key, so tokens are valid on every server).
CREATE TABLE meta (
    key    text PRIMARY KEY,
    value  bytea NOT NULL
);
