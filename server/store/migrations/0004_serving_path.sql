-- Reads that do not grow with history or with other projects, and change notifications.

-- A value as it was at a revision: per (secret, environment, version), the last row written at or
-- before it. Resolve at a revision probes this once per secret and slot; it also serves the
-- foreign key from secret_values to secrets.
CREATE INDEX secret_values_history
    ON secret_values (secret_id, coalesce(environment_id, 0), version, valid_from);
-- The current overrides of an environment, without its history (ListOverrides, merge).
CREATE INDEX secret_values_env_current
    ON secret_values (environment_id, version) WHERE valid_to IS NULL AND environment_id IS NOT NULL;

-- Every transaction that changes a project raises its revision; every one that changes a token
-- updates or deletes its row; key rotation touches the keyring. Each publishes what it changed on
-- the channel coffer_changes, in the same transaction: a rolled-back write publishes nothing.
-- Replicas LISTEN and drop what they cached of it. Payloads:
--   p <project id> <revision>   the project is at that revision (-1: deleted)
--   t <token id>                the token changed (revoked, unbound) or is gone
--   k                           the keyring changed
CREATE FUNCTION coffer_notify_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('coffer_changes', 'p ' || OLD.id || ' -1');
        RETURN OLD;
    END IF;
    PERFORM pg_notify('coffer_changes', 'p ' || NEW.id || ' ' || NEW.revision);
    RETURN NEW;
END $$;
CREATE TRIGGER projects_notify AFTER UPDATE OF revision OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION coffer_notify_project();

CREATE FUNCTION coffer_notify_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('coffer_changes', 't ' || OLD.id);
    RETURN NULL;
END $$;
CREATE TRIGGER tokens_notify AFTER UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION coffer_notify_token();

CREATE FUNCTION coffer_notify_keyring() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('coffer_changes', 'k');
    RETURN NULL;
END $$;
CREATE TRIGGER keyring_notify AFTER INSERT OR UPDATE OR DELETE ON keyring
    FOR EACH STATEMENT EXECUTE FUNCTION coffer_notify_keyring();
