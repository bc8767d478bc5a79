-- Updates of a user become HOT (heap-only tuple) updates on PostgreSQL. An update that changes
-- any indexed column writes a new entry into every index of the table; `updated_at` changes on
-- every write and was indexed (for `meta.lastModified` filters), so every update of a user
-- added entries to all seven indexes of `users`, at 10^6 users mostly on pages that had to be
-- read from disk first. Measured at 10^6 users with most pages on disk (bench/README.md):
-- 22-23 kB of WAL and 4.3 index blocks read per update before, 7-10 kB and 0.85 after.
--
-- The time of each user's last change is kept beside the table instead, in `user_modified`,
-- by triggers in the same transaction as the write; `meta.lastModified` filters select from it
-- (db::query). `users.updated_at` stays the value a resource shows. The pages of `users` keep
-- 15 % free, so that the new version of an updated row fits on its own page.
CREATE TABLE user_modified (
    pk BIGINT PRIMARY KEY REFERENCES users (pk) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO user_modified (pk, tenant_id, updated_at) SELECT pk, tenant_id, updated_at FROM users;
CREATE INDEX user_modified_tenant_updated ON user_modified (tenant_id, updated_at);

CREATE FUNCTION roster_user_modified() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_modified (pk, tenant_id, updated_at) VALUES (NEW.pk, NEW.tenant_id, NEW.updated_at);
    ELSE
        UPDATE user_modified SET tenant_id = NEW.tenant_id, updated_at = NEW.updated_at WHERE pk = NEW.pk;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_modified_insert AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION roster_user_modified();
CREATE TRIGGER users_modified_update AFTER UPDATE OF updated_at, tenant_id ON users
    FOR EACH ROW WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION roster_user_modified();

DROP INDEX users_tenant_updated;
-- New pages only: an existing database gets the free space when `users` is rewritten
-- (VACUUM FULL users), and HOT updates as rows move to pages with room.
ALTER TABLE users SET (fillfactor = 85);
