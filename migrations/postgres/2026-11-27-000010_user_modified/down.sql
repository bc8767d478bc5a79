ALTER TABLE users RESET (fillfactor);
CREATE INDEX users_tenant_updated ON users (tenant_id, updated_at);
DROP TRIGGER users_modified_update ON users;
DROP TRIGGER users_modified_insert ON users;
DROP FUNCTION roster_user_modified();
DROP TABLE user_modified;
