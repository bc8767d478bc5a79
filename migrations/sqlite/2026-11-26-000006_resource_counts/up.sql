-- How many users and groups each tenant holds, kept by triggers in the transaction that adds or
-- removes the rows, so that an unfiltered list knows its totalResults without counting a
-- million rows. SQLite has one writer at a time, so one slot per tenant and type suffices
-- (PostgreSQL spreads the writes over slots). No foreign key to tenants: deleting a tenant
-- fires these triggers while its rows cascade away, and the tenant's counts are removed after
-- that (db::tenants::delete).
CREATE TABLE resource_counts (
    tenant_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    slot INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, slot)
);

CREATE TRIGGER users_counted_in AFTER INSERT ON users BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (NEW.tenant_id, 'User', 0, 1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER users_counted_out AFTER DELETE ON users BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (OLD.tenant_id, 'User', 0, -1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n - 1;
END;
CREATE TRIGGER scim_groups_counted_in AFTER INSERT ON scim_groups BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (NEW.tenant_id, 'Group', 0, 1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scim_groups_counted_out AFTER DELETE ON scim_groups BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (OLD.tenant_id, 'Group', 0, -1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n - 1;
END;

INSERT INTO resource_counts (tenant_id, resource_type, slot, n)
    SELECT tenant_id, 'User', 0, count(*) FROM users GROUP BY tenant_id;
INSERT INTO resource_counts (tenant_id, resource_type, slot, n)
    SELECT tenant_id, 'Group', 0, count(*) FROM scim_groups GROUP BY tenant_id;
