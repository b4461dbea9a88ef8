-- The web console's sessions (docs/console.md): a person's token exchanged for a secret the
-- console keeps in an HttpOnly cookie. Only the secret's HMAC is stored, as for tokens. A session
-- ends when it goes unused for the idle time, at its absolute end, on sign-out, and with its token
-- (revoked or expired: the join in store_session_use refuses it; deleted: the cascade).
CREATE TABLE console_sessions (
    secret_hash bytea PRIMARY KEY,
    token_id    text NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    create_time timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expire_time timestamptz NOT NULL
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expire ON console_sessions (expire_time);
