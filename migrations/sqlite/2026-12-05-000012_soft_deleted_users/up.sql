-- An account DELETEd under the `deactivate-only` policy keeps its row for the product (its
-- content stays, it is deactivated), but SCIM treats it as deleted (RFC 7644 §3.6): reads,
-- filters, counts and writes skip rows with `deleted_at`, and it no longer counts in its
-- tenant's `resource_counts` (it left them when it was hidden, not again when it goes).
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMP;

DROP TRIGGER users_counted_out;
CREATE TRIGGER users_counted_out AFTER DELETE ON users WHEN OLD.deleted_at IS NULL BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (OLD.tenant_id, 'User', 0, -1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n - 1;
END;
CREATE TRIGGER users_counted_hidden AFTER UPDATE OF deleted_at ON users
WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (OLD.tenant_id, 'User', 0, -1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n - 1;
END;
