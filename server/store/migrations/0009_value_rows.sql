-- Value rows are written in sets (a merge writes 10,000 in one statement), and each row paid for
-- two foreign-key checks (a query each) and six index insertions.
--
-- The owners of a value row are checked by the transaction that writes it, under its project's
-- lock; what the keys did besides, deleting a project's values with it, stays in the database as
-- a statement trigger: every value row belongs to a secret, and secrets (like environments) are
-- only ever deleted with their project, whose deletion cascades to them.
ALTER TABLE secret_values DROP CONSTRAINT secret_values_secret_id_fkey,
    DROP CONSTRAINT secret_values_environment_id_fkey;

CREATE FUNCTION coffer_values_of_deleted_secrets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM secret_values v USING gone g WHERE v.secret_id = g.id;
    RETURN NULL;
END $$;
CREATE TRIGGER secrets_values_gone AFTER DELETE ON secrets REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION coffer_values_of_deleted_secrets();

-- Read by nothing: an environment's current values come through secret_values_env_current, its
-- history through secret_values_history; re-encryption walks the rows by id.
DROP INDEX secret_values_by_env;
DROP INDEX secret_values_by_term;
