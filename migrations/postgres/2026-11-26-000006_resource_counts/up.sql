-- How many users and groups each tenant holds, kept by triggers in the transaction that adds or
-- removes the rows, so that an unfiltered list knows its totalResults without counting a
-- million rows. Each connection adds to its own slot (its backend pid mod 64), so concurrent
-- creates do not queue on one hot row until they commit; the total is the sum of the slots.
-- No foreign key to tenants: deleting a tenant fires these triggers while its rows cascade
-- away, and the tenant's counts are removed after that (db::tenants::delete).
CREATE TABLE resource_counts (
    tenant_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    slot INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, slot)
);

CREATE FUNCTION roster_count_resources() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
    tenant TEXT := CASE TG_OP WHEN 'INSERT' THEN NEW.tenant_id ELSE OLD.tenant_id END;
BEGIN
    INSERT INTO resource_counts AS c (tenant_id, resource_type, slot, n)
    VALUES (tenant, TG_ARGV[0], pg_backend_pid() % 64, delta)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_counted AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION roster_count_resources('User');
CREATE TRIGGER scim_groups_counted AFTER INSERT OR DELETE ON scim_groups
    FOR EACH ROW EXECUTE FUNCTION roster_count_resources('Group');

INSERT INTO resource_counts (tenant_id, resource_type, slot, n)
    SELECT tenant_id, 'User', 0, count(*) FROM users GROUP BY tenant_id;
INSERT INTO resource_counts (tenant_id, resource_type, slot, n)
    SELECT tenant_id, 'Group', 0, count(*) FROM scim_groups GROUP BY tenant_id;
