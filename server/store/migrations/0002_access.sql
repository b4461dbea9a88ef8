-- Tokens, the audit log, and server keys other than data keys.

-- Keys wrapped by the root key, by purpose ('token-hash': the HMAC key of token secrets).
CREATE TABLE server_keys (
    name        text PRIMARY KEY,
    wrapped     bytea NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
    id           text PRIMARY KEY,                    -- public id, tok_...
    name         text NOT NULL,
    role         smallint NOT NULL CHECK (role BETWEEN 1 AND 4),  -- 1 admin, 2 editor, 3 viewer, 4 runtime
    project      text NOT NULL DEFAULT '',            -- '' for admin tokens
    environments text[] NOT NULL DEFAULT '{}',        -- runtime scope; empty: all
    versions     smallint[] NOT NULL DEFAULT '{}',    -- runtime scope; empty: all
    secret_hash  bytea NOT NULL UNIQUE,               -- HMAC-SHA256 of the bearer secret
    create_time  timestamptz NOT NULL DEFAULT now(),
    expire_time  timestamptz,
    revoked_time timestamptz
);
CREATE INDEX tokens_project ON tokens (project, id);

-- One row per write, reveal, resolve, token operation and refused call. Never a value.
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    time        timestamptz NOT NULL DEFAULT clock_timestamp(),
    token_id    text NOT NULL DEFAULT '',
    method      text NOT NULL,
    project     text NOT NULL DEFAULT '',
    environment text NOT NULL DEFAULT '',
    secret      text NOT NULL DEFAULT '',
    version     smallint NOT NULL DEFAULT 0,
    code        integer NOT NULL,
    peer        text NOT NULL DEFAULT '',
    revision    bigint NOT NULL DEFAULT 0
);
CREATE INDEX audit_events_project ON audit_events (project, id);
CREATE INDEX audit_events_time ON audit_events (time);
