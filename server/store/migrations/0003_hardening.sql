-- Tokens are bound to their project's identity, merges remember where a value came from, and one
-- audit row may stand for many refused calls.

-- A token of a project belongs to that project row, not to its name: deleting the project
-- revokes its tokens, and a new project with the same name is out of their reach.
ALTER TABLE tokens ADD COLUMN project_id bigint REFERENCES projects (id) ON DELETE SET NULL;
UPDATE tokens t SET project_id = p.id FROM projects p WHERE t.project <> '' AND p.name = t.project;
UPDATE tokens SET revoked_time = now()
    WHERE project <> '' AND project_id IS NULL AND revoked_time IS NULL;
CREATE INDEX tokens_project_id ON tokens (project_id);

-- The value row a merge copied this one from (NULL: written directly). A merge compares
-- restricted values by where they came from, never by what they say.
ALTER TABLE secret_values ADD COLUMN origin_id bigint;

-- How many calls an audit row stands for (refused calls without a valid token are counted).
ALTER TABLE audit_events ADD COLUMN count bigint NOT NULL DEFAULT 1;
