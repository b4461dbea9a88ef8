-- Projects, environments, secrets, versioned sealed values, and the keyring.
-- Every write in a project raises projects.revision by one under the project row lock; rows carry
-- the revisions that created and (for history) deleted or replaced them.

CREATE TABLE keyring (
    term        integer PRIMARY KEY CHECK (term > 0),
    wrapped     bytea NOT NULL,             -- data key wrapped by the root key
    active      boolean NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX keyring_one_active ON keyring (active) WHERE active;

CREATE TABLE projects (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL,
    revision    bigint NOT NULL,            -- current revision, gapless
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE environments (
    id          bigserial PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL,
    revision    bigint NOT NULL,            -- last change, overrides included
    created_rev bigint NOT NULL,
    deleted_rev bigint,                     -- NULL while it exists
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX environments_current_name ON environments (project_id, name)
    WHERE deleted_rev IS NULL;

CREATE TABLE secrets (
    id          bigserial PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    visibility  smallint NOT NULL CHECK (visibility IN (1, 2)),
    description text NOT NULL,
    revision    bigint NOT NULL,            -- last change
    created_rev bigint NOT NULL,
    deleted_rev bigint,                     -- NULL while it exists
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX secrets_current_name ON secrets (project_id, name) WHERE deleted_rev IS NULL;
CREATE INDEX secrets_project_history ON secrets (project_id, created_rev);

-- A value is valid from the revision that wrote it until the one that replaced or removed it.
CREATE TABLE secret_values (
    id             bigserial PRIMARY KEY,
    secret_id      bigint NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    environment_id bigint REFERENCES environments (id) ON DELETE CASCADE, -- NULL: project default
    version        smallint NOT NULL CHECK (version IN (0, 1, 2)),        -- 0 default, 1 draft, 2 live
    valid_from     bigint NOT NULL,
    valid_to       bigint,                                               -- NULL: current
    term           integer NOT NULL,                                      -- keyring term sealed under
    sealed         bytea NOT NULL,                                        -- crypt.h blob
    update_time    timestamptz NOT NULL DEFAULT now(),
    CHECK ((environment_id IS NULL) = (version = 0)),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX secret_values_current
    ON secret_values (secret_id, coalesce(environment_id, 0), version) WHERE valid_to IS NULL;
CREATE INDEX secret_values_by_env ON secret_values (environment_id, version) WHERE environment_id IS NOT NULL;
CREATE INDEX secret_values_by_term ON secret_values (term);
